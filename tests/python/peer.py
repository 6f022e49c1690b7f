#!/usr/bin/python3
"""PyTorch peer for WideThenNarrow's numerical cross-checks (run with /usr/bin/python3: torch + torchvision).

  peer.py check  MODEL WEIGHTS IO   load WEIGHTS (saved by wtn) strictly into the PyTorch model, run IO's inputs
                                    in eval mode, print the max |difference| to IO's 'output'; exit 1 above 1e-5
  peer.py manifest MANIFEST IO      rebuild a network exported by `wtn export` with python/wtn_models.py from its
                                    manifest (weights checked against its SHA-256, loaded strictly), run IO's input,
                                    print the max |difference| to IO's 'output'; exit 1 above 1e-5
  peer.py export MODEL WEIGHTS IO   build the PyTorch model at random (BatchNorm statistics moved by two train-mode
                                    passes), save its state_dict to WEIGHTS and inputs + eval-mode 'output' to IO

MODEL: resnet18:CLASSES, bert-cls:VOCAB:MAXPOS:CLASSES or bert-mlm:VOCAB:MAXPOS (bert-tiny sizes: 2 layers,
hidden 128, 2 heads, feed-forward 512). The BERT here is written in plain torch with HuggingFace's
parameter names (BertForSequenceClassification / BertForMaskedLM), since `transformers` is not installed.
"""
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

TOLERANCE = 1e-5


class Embeddings(nn.Module):
    def __init__(self, vocab, hidden, max_pos, type_vocab):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(max_pos, hidden)
        self.token_type_embeddings = nn.Embedding(type_vocab, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, ids, types):
        pos = torch.arange(ids.shape[1]).unsqueeze(0)
        return self.LayerNorm(self.word_embeddings(ids) + self.position_embeddings(pos) + self.token_type_embeddings(types))


class SelfAttention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.heads, self.size = heads, hidden // heads
        self.query, self.key, self.value = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)

    def forward(self, x, mask):
        n, t, _ = x.shape
        split = lambda y: y.view(n, t, self.heads, self.size).transpose(1, 2)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.size)
        scores = scores + (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        return (scores.softmax(-1) @ v).transpose(1, 2).reshape(n, t, -1)


class DenseNorm(nn.Module):
    def __init__(self, inf, outf):
        super().__init__()
        self.dense, self.LayerNorm = nn.Linear(inf, outf), nn.LayerNorm(outf, eps=1e-12)

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class Attention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.self, self.output = SelfAttention(hidden, heads), DenseNorm(hidden, hidden)

    def forward(self, x, mask):
        return self.output(self.self(x, mask), x)


class Intermediate(nn.Module):
    def __init__(self, hidden, ff):
        super().__init__()
        self.dense = nn.Linear(hidden, ff)


class Layer(nn.Module):
    def __init__(self, hidden, heads, ff):
        super().__init__()
        self.attention, self.intermediate, self.output = Attention(hidden, heads), Intermediate(hidden, ff), DenseNorm(ff, hidden)

    def forward(self, x, mask):
        a = self.attention(x, mask)
        return self.output(F.gelu(self.intermediate.dense(a)), a)


class Encoder(nn.Module):
    def __init__(self, layers, hidden, heads, ff):
        super().__init__()
        self.layer = nn.ModuleList([Layer(hidden, heads, ff) for _ in range(layers)])


class Pooler(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)


class BertModel(nn.Module):
    def __init__(self, vocab, max_pos, pooler, layers=2, hidden=128, heads=2, ff=512, type_vocab=2):
        super().__init__()
        self.embeddings = Embeddings(vocab, hidden, max_pos, type_vocab)
        self.encoder = Encoder(layers, hidden, heads, ff)
        if pooler:
            self.pooler = Pooler(hidden)

    def forward(self, ids, mask, types):
        h = self.embeddings(ids, types)
        for layer in self.encoder.layer:
            h = layer(h, mask)
        return h


class BertForSequenceClassification(nn.Module):
    def __init__(self, vocab, max_pos, classes):
        super().__init__()
        self.bert = BertModel(vocab, max_pos, pooler=True)
        self.dropout = nn.Dropout(0.1)
        self.classifier = nn.Linear(128, classes)

    def forward(self, ids, mask, types):
        h = self.bert(ids, mask, types)
        return self.classifier(self.dropout(torch.tanh(self.bert.pooler.dense(h[:, 0]))))


class Transform(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.dense, self.LayerNorm = nn.Linear(hidden, hidden), nn.LayerNorm(hidden, eps=1e-12)


class Predictions(nn.Module):
    def __init__(self, hidden, vocab):
        super().__init__()
        self.transform = Transform(hidden)
        self.decoder = nn.Linear(hidden, vocab, bias=False)
        self.bias = nn.Parameter(torch.zeros(vocab))
        self.decoder.bias = self.bias


class MlmHead(nn.Module):
    def __init__(self, hidden, vocab):
        super().__init__()
        self.predictions = Predictions(hidden, vocab)


class BertForMaskedLM(nn.Module):
    def __init__(self, vocab, max_pos):
        super().__init__()
        self.bert = BertModel(vocab, max_pos, pooler=False)
        self.cls = MlmHead(128, vocab)
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def forward(self, ids, mask, types):
        p = self.cls.predictions
        t = p.transform
        return p.decoder(t.LayerNorm(F.gelu(t.dense(self.bert(ids, mask, types)))))


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
        return init_as_huggingface(BertForSequenceClassification(args[0], args[1], args[2]))
    if kind == "bert-mlm":
        return init_as_huggingface(BertForMaskedLM(args[0], args[1]))
    raise SystemExit(f"unknown model spec {spec}")


def run(model, io):
    if "attention_mask" in io:
        return model(io["input"], io["attention_mask"], io["token_type_ids"])
    return model(io["input"])


def check_manifest(manifest_path, io_path):
    """Rebuild an exported network with python/wtn_models.py from its manifest alone and compare its outputs."""
    import os
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
    import wtn_models
    model, _ = wtn_models.load(manifest_path)
    io = torch.load(io_path)
    with torch.no_grad():
        diff = (model(io["input"]) - io["output"]).abs().max().item()
    print(f"max_abs_diff {diff:.3g}")
    sys.exit(0 if diff <= TOLERANCE else 1)


def main():
    torch.set_num_threads(1)
    if sys.argv[1] == "manifest":
        check_manifest(sys.argv[2], sys.argv[3])
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
