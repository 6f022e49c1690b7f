#!/usr/bin/python3
"""PyTorch peer for WideThenNarrow's numerical cross-checks (run with /usr/bin/python3: torch + torchvision).

  peer.py check  MODEL WEIGHTS IO   load WEIGHTS (saved by wtn) strictly into the PyTorch model, run IO's inputs
                                    in eval mode, print the max |difference| to IO's 'output'; exit 1 above 1e-5
  peer.py grad MODEL WEIGHTS IO    load WEIGHTS strictly, compute the masked-LM loss on IO's input and 'labels' (train
                                    mode, no dropout), backward; compare the loss and every parameter's gradient to IO's
                                    'loss' and 'grad.NAME'; exit 1 above 1e-5 (loss) or 1e-3 of the largest entry
                                    (grads; of 1e-4 where every entry is smaller)
  peer.py manifest MANIFEST IO      rebuild a network exported by `wtn export` with python/wtn_models.py from its
                                    manifest (weights checked against its SHA-256, loaded strictly), run IO's input,
                                    print the max |difference| to IO's 'output'; exit 1 above 1e-5
  peer.py evaluate MANIFEST IMAGES LABELS N   top-1 of an exported image classifier on the first N images of each
                                    class of an IDX pair (gzipped), from raw pixels through wtn_models.preprocess
  peer.py export MODEL WEIGHTS IO   build the PyTorch model at random (BatchNorm statistics moved by two train-mode
                                    passes), save its state_dict to WEIGHTS and inputs + eval-mode 'output' to IO
  peer.py hf-folder FOLDER FORMAT WORDS   a small random BertForMaskedLM in HuggingFace's save_pretrained layout:
                                    config.json, vocab.txt (Google's layout: [PAD], [unused*], [UNK] [CLS] [SEP] [MASK],
                                    then WORDS, comma-separated, and single letters), tokenizer_config.json, and
                                    model.safetensors (FORMAT safetensors: written by hand, tied tensors left out as
                                    save_pretrained does), pytorch_model.bin (FORMAT bin: torch.save of the whole
                                    state_dict with the position_ids buffer of older transformers) or a BertModel
                                    checkpoint (FORMAT bertmodel: no prefix, LayerNorm gamma/beta, a pooler, no MLM
                                    head); plus io.safetensors: input_ids, attention_mask, token_type_ids and the
                                    eval-mode 'logits' and last 'hidden' states

MODEL: resnet18:CLASSES, bert-cls:VOCAB:MAXPOS:CLASSES or bert-mlm:VOCAB:MAXPOS (bert-tiny sizes: 2 layers,
hidden 128, 2 heads, feed-forward 512). The BERT is python/wtn_models.py's, written in plain torch with
HuggingFace's parameter names (BertForSequenceClassification / BertForMaskedLM), since `transformers` is not
installed.
"""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import wtn_models  # noqa: E402  (the repository's python/, whose BERT is written with HuggingFace's names)

TOLERANCE = 1e-5


def init_as_huggingface(model):
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
    return model


def build(spec):
    kind, *args = spec.split(":")
    args = [int(a) for a in args]
    if kind == "resnet18":
        import torchvision
        return torchvision.models.resnet18(num_classes=args[0])
    if kind == "bert-cls":
        return init_as_huggingface(wtn_models.BertForSequenceClassification(args[0], args[1], args[2]))
    if kind == "bert-mlm":
        return init_as_huggingface(wtn_models.BertForMaskedLM(args[0], args[1]))
    raise SystemExit(f"unknown model spec {spec}")


def run(model, io):
    if "attention_mask" in io:
        return model(io["input"], io["attention_mask"], io["token_type_ids"])
    return model(io["input"])


def check_manifest(manifest_path, io_path):
    """Rebuild an exported network with python/wtn_models.py from its manifest alone and compare its outputs."""
    model, _ = wtn_models.load(manifest_path)
    io = torch.load(io_path)
    with torch.no_grad():
        diff = (run(model, io) - io["output"]).abs().max().item()
    print(f"max_abs_diff {diff:.3g}")
    sys.exit(0 if diff <= TOLERANCE else 1)


def read_idx(path):
    """An IDX file (gzipped) as a uint8 tensor: Fashion-MNIST's images (N, 28, 28) or labels (N)."""
    import gzip
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return torch.frombuffer(bytearray(data[4 + 4 * dims:]), dtype=torch.uint8).reshape(shape)


def evaluate(manifest_path, images_path, labels_path, per_class):
    """Top-1 of an exported image classifier on the first PER_CLASS test images of each class, in file order,
    through wtn_models.preprocess: the user's route from raw pixels to a prediction."""
    model, manifest = wtn_models.load(manifest_path)
    images, labels = read_idx(images_path), read_idx(labels_path).long()
    keep, seen = [], {}
    for i, y in enumerate(labels.tolist()):
        if seen.get(y, 0) < per_class:
            seen[y] = seen.get(y, 0) + 1
            keep.append(i)
    idx = torch.tensor(keep)
    with torch.no_grad():
        pred = model(wtn_models.preprocess(images[idx], manifest)).argmax(1)
    correct = int((pred == labels[idx]).sum())
    print(f"top1 {correct} of {len(keep)}")
    sys.exit(0)


def write_safetensors(path, tensors):
    """The safetensors format by hand (transformers/safetensors are not installed): 8-byte little-endian header
    length, the JSON header (dtype, shape, data_offsets), then the raw little-endian bytes."""
    import json
    import struct
    names = {torch.float32: "F32", torch.float16: "F16", torch.int64: "I64"}
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for key, t in tensors.items():
        data = t.detach().contiguous().cpu().numpy().tobytes()
        header[key] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def hf_folder(folder, fmt, words):
    """A random BertForMaskedLM saved as HuggingFace does, and its reference logits."""
    import json
    os.makedirs(folder, exist_ok=True)
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(5)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = [w for w in words.split(",") if w] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    pieces += ["##" + chr(c) for c in range(ord("a"), ord("z") + 1)] + [".", ",", "\"", "'"]
    vocab += list(dict.fromkeys(pieces))  # each token once
    config = {"architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2,
              "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 64, "type_vocab_size": 2,
              "vocab_size": len(vocab), "layer_norm_eps": 1e-12, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
              "attention_probs_dropout_prob": 0.1, "pad_token_id": 0, "position_embedding_type": "absolute"}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(folder, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": True, "model_max_length": 64}, f)
    torch.manual_seed(3)
    model = init_as_huggingface(wtn_models.BertForMaskedLM(len(vocab), 64, layers=2, hidden=32, heads=4, head_size=8, ff=64))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)  # no parameter left at its initial 0 or 1: the check sees every one
    model.eval()
    state = model.state_dict()
    if fmt == "safetensors":
        write_safetensors(os.path.join(folder, "model.safetensors"),
                          {k: v for k, v in state.items() if k not in ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")})
    elif fmt == "bertmodel":
        # A BertModel checkpoint of the TF-converted era: no "bert." prefix, LayerNorm gamma/beta, a pooler, no MLM head.
        renamed = {}
        for k, v in state.items():
            if not k.startswith("bert."):
                continue
            k = k[len("bert."):]
            if "LayerNorm." in k:
                k = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
            renamed[k] = v
        renamed["pooler.dense.weight"] = torch.randn(32, 32) * 0.02
        renamed["pooler.dense.bias"] = torch.zeros(32)
        write_safetensors(os.path.join(folder, "model.safetensors"), renamed)
    else:
        state = dict(state)
        state["bert.embeddings.position_ids"] = torch.arange(64).unsqueeze(0)
        torch.save(state, os.path.join(folder, "pytorch_model.bin"))
    ids = torch.randint(9, len(vocab), (2, 11))
    ids[:, 0] = 7
    mask = torch.ones(2, 11, dtype=torch.int64)
    mask[1, 8:] = 0
    types = torch.cat([torch.zeros(2, 5), torch.ones(2, 6)], 1).long()
    with torch.no_grad():
        logits = model(ids, mask, types)
        hidden = model.bert(ids, mask, types)
    write_safetensors(os.path.join(folder, "io.safetensors"),
                      {"input_ids": ids, "attention_mask": mask, "token_type_ids": types, "logits": logits, "hidden": hidden})
    print(f"hf-folder {folder} {fmt} vocab {len(vocab)}")


def main():
    torch.set_num_threads(1)
    if sys.argv[1] == "hf-folder":
        hf_folder(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else "")
        return
    if sys.argv[1] == "manifest":
        check_manifest(sys.argv[2], sys.argv[3])
    if sys.argv[1] == "evaluate":
        evaluate(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    mode, spec, weights, io_path = sys.argv[1:5]
    torch.manual_seed(11)
    model = build(spec)
    if mode == "check":
        model.load_state_dict(torch.load(weights), strict=True)
        model.eval()
        io = torch.load(io_path)
        with torch.no_grad():
            diff = (run(model, io) - io["output"]).abs().max().item()
        print(f"max_abs_diff {diff:.3g}")
        sys.exit(0 if diff <= TOLERANCE else 1)
    if mode == "grad":
        # Masked-LM loss (mean cross-entropy over labels != -100) in train mode, no dropout: every parameter's gradient.
        model.load_state_dict(torch.load(weights), strict=True)
        model.train()
        io = torch.load(io_path)
        logits = run(model, io)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), io["labels"].reshape(-1), ignore_index=-100)
        loss.backward()
        worst, where = 0.0, ""
        for name, p in model.named_parameters():
            mine = io["grad." + name]
            # A key bias's gradient is zero up to rounding (softmax ignores a shift shared by all keys): absolute there.
            scale = max(mine.abs().max().item(), 1e-4)
            rel = (p.grad - mine).abs().max().item() / scale
            if rel > worst:
                worst, where = rel, name
        diff = abs(loss.item() - io["loss"].item())
        print(f"loss_diff {diff:.3g} max_rel_grad_diff {worst:.3g} at {where}")
        sys.exit(0 if diff <= TOLERANCE and worst <= 1e-3 else 1)
    if mode == "export":
        if spec.startswith("resnet"):
            io = {"input": torch.randn(2, 3, 40, 40)}
            model.train()
            with torch.no_grad():
                for _ in range(2):
                    model(torch.randn(4, 3, 40, 40) * 2 + 0.5)
        else:
            vocab, max_pos = (int(a) for a in spec.split(":")[1:3])
            mask = torch.ones(2, 9, dtype=torch.int64)
            mask[0, 6:] = 0
            io = {"input": torch.randint(0, vocab, (2, 9)), "attention_mask": mask,
                  "token_type_ids": torch.cat([torch.zeros(2, 4), torch.ones(2, 5)], 1).long()}
        model.eval()
        with torch.no_grad():
            io["output"] = run(model, io)
        torch.save(model.state_dict(), weights)
        torch.save(io, io_path)
        print("exported")
        return
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
