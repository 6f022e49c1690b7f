"""Load networks exported by `wtn export` into plain PyTorch (torch only, no other dependency).

    import wtn_models
    model, manifest = wtn_models.load("thin.json")      # rebuilds the network, checks the SHA-256, loads strictly
    x = wtn_models.preprocess(images, manifest)          # uint8 (N, C, H, W) or (N, H, W) pixels -> normalised float
    logits = model(x)

`wtn export EXPERIMENT.yaml --stage finetune -o thin.safetensors` writes the weights (a state_dict with torchvision's
names; .safetensors or torch.save .pth) and the manifest thin.json beside them: the architecture, the input it was
trained on (per-channel mean/std of pixels in [0, 1]) and where it came from. This file defines the ResNets (CIFAR
layout: 3x3 stem, stages w/2w/4w for base width w (default 16), option-A shortcuts unless projection_shortcuts; ImageNet layout: torchvision's
resnet18..152), MLPs and BERTs exactly as wtn builds them, including inner and full widening. A BERT takes
(ids, attention_mask, token_type_ids) of WordPiece ids from NAME.vocab.txt, saved beside the weights; its names are
HuggingFace's, so a BERT without inner widening also loads into transformers' BertForSequenceClassification /
BertForMaskedLM built from the manifest's hidden_size, num_hidden_layers, num_attention_heads, intermediate_size,
vocab_size, max_position_embeddings and type_vocab_size.
"""
import hashlib
import json
import math
import os
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

FORMAT = "wtn-export/1"


def _widening(text):
    """'none', 'inner=K' or 'full=K' -> (inner, full)."""
    if text == "none":
        return 1, 1
    m = re.fullmatch(r"(inner|full)=(\d+)", text)
    if not m:
        raise ValueError(f"unknown widening {text!r}")
    k = int(m.group(2))
    return (k, 1) if m.group(1) == "inner" else (1, k)


class BasicBlock(nn.Module):
    def __init__(self, inplanes, mid, planes, stride, projection):
        super().__init__()
        self.inplanes, self.planes, self.stride = inplanes, planes, stride
        self.conv1 = nn.Conv2d(inplanes, mid, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if projection and (stride != 1 or inplanes != planes):
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def shortcut(self, x):
        if self.downsample is not None:
            return self.downsample(x)
        if self.stride == 1 and self.inplanes == self.planes:
            return x
        # Option A: subsample by the stride, zero-pad the new channels half before, half after.
        extra = self.planes - self.inplanes
        front = extra // 2
        if self.stride != 1:
            x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, front, extra - front))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class Bottleneck(nn.Module):
    def __init__(self, inplanes, width, outplanes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, outplanes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(outplanes)
        self.downsample = None
        if stride != 1 or inplanes != outplanes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, outplanes, 1, stride, bias=False), nn.BatchNorm2d(outplanes))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


IMAGENET = {
    "resnet18": (False, [2, 2, 2, 2]), "resnet34": (False, [3, 4, 6, 3]), "resnet50": (True, [3, 4, 6, 3]),
    "resnet101": (True, [3, 4, 23, 3]), "resnet152": (True, [3, 8, 36, 3]),
}


class ResNet(nn.Module):
    """wtn's ResNet: name cifar-resnetD (D = 6n+2, stages base_width x 1/2/4) or resnet18..152, widen none / inner=K / full=K."""

    def __init__(self, name, classes, input_channels=3, widen="none", projection_shortcuts=False, base_width=16):
        super().__init__()
        inner, full = _widening(widen)
        self.imagenet = name in IMAGENET
        if self.imagenet:
            bottleneck, blocks = IMAGENET[name]
            planes_per_stage = [64, 128, 256, 512]
            projection = True
        else:
            m = re.fullmatch(r"cifar-resnet(\d+)", name)
            if not m or int(m.group(1)) < 8 or (int(m.group(1)) - 2) % 6:
                raise ValueError(f"unknown ResNet {name!r}")
            n = (int(m.group(1)) - 2) // 6
            bottleneck, blocks, planes_per_stage = False, [n, n, n], [base_width, 2 * base_width, 4 * base_width]
            projection = projection_shortcuts
        stem = planes_per_stage[0] * full
        if self.imagenet:
            self.conv1 = nn.Conv2d(input_channels, stem, 7, 2, 3, bias=False)
        else:
            self.conv1 = nn.Conv2d(input_channels, stem, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        inplanes = stem
        for s, (p, count) in enumerate(zip(planes_per_stage, blocks)):
            planes = p * full
            stage = []
            for b in range(count):
                stride = 2 if s > 0 and b == 0 else 1
                if bottleneck:
                    block = Bottleneck(inplanes, planes * inner, planes * 4, stride)
                    inplanes = planes * 4
                else:
                    block = BasicBlock(inplanes, planes * inner, planes, stride, projection)
                    inplanes = planes
                stage.append(block)
            setattr(self, f"layer{s + 1}", nn.Sequential(*stage))
        self.stages = len(blocks)
        self.fc = nn.Linear(inplanes, classes)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        if self.imagenet:
            h = F.max_pool2d(h, 3, 2, 1)
        for s in range(self.stages):
            h = getattr(self, f"layer{s + 1}")(h)
        return self.fc(h.mean((2, 3)))


class _PlainBlock(nn.Module):
    def __init__(self, inf, outf):
        super().__init__()
        self.fc = nn.Linear(inf, outf)

    def forward(self, x):
        return F.relu(self.fc(x))


class _ResidualBlock(nn.Module):
    def __init__(self, w, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(w, hidden), nn.Linear(hidden, w)

    def forward(self, x):
        return x + self.fc2(F.relu(self.fc1(x)))


class Mlp(nn.Module):
    """wtn's MLP: block 0 = ReLU(Linear(D, W)), then depth - 1 hidden blocks, head Linear(W, classes); input flattened."""

    def __init__(self, classes, input_dim, width, depth, residual, widen="none"):
        super().__init__()
        inner, full = _widening(widen)
        w = width * full
        blocks = [_PlainBlock(input_dim, w)]
        blocks += [_ResidualBlock(w, w * inner) if residual else _PlainBlock(w, w) for _ in range(1, depth)]
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(w, classes)

    def forward(self, x):
        h = x.flatten(1)
        for b in self.blocks:
            h = b(h)
        return self.fc(h)


class _Embeddings(nn.Module):
    def __init__(self, vocab, hidden, max_pos, type_vocab):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(max_pos, hidden)
        self.token_type_embeddings = nn.Embedding(type_vocab, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, ids, types):
        pos = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
        return self.LayerNorm(self.word_embeddings(ids) + self.position_embeddings(pos) + self.token_type_embeddings(types))


class _SelfAttention(nn.Module):
    def __init__(self, hidden, heads, head_size):
        super().__init__()
        self.heads, self.size = heads, head_size
        inner = heads * head_size  # differs from hidden after inner widening (wider heads, or more heads of the same size)
        self.query, self.key, self.value = nn.Linear(hidden, inner), nn.Linear(hidden, inner), nn.Linear(hidden, inner)

    def forward(self, x, mask):
        n, t, _ = x.shape
        split = lambda y: y.view(n, t, self.heads, self.size).transpose(1, 2)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.size)
        if mask is not None:
            scores = scores + (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        return (scores.softmax(-1) @ v).transpose(1, 2).reshape(n, t, -1)


class _DenseNorm(nn.Module):
    def __init__(self, inf, outf):
        super().__init__()
        self.dense, self.LayerNorm = nn.Linear(inf, outf), nn.LayerNorm(outf, eps=1e-12)

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class _Attention(nn.Module):
    def __init__(self, hidden, heads, head_size):
        super().__init__()
        self.self, self.output = _SelfAttention(hidden, heads, head_size), _DenseNorm(heads * head_size, hidden)

    def forward(self, x, mask):
        return self.output(self.self(x, mask), x)


class _Intermediate(nn.Module):
    def __init__(self, hidden, ff):
        super().__init__()
        self.dense = nn.Linear(hidden, ff)


class _Layer(nn.Module):
    def __init__(self, hidden, heads, head_size, ff):
        super().__init__()
        self.attention = _Attention(hidden, heads, head_size)
        self.intermediate, self.output = _Intermediate(hidden, ff), _DenseNorm(ff, hidden)

    def forward(self, x, mask):
        a = self.attention(x, mask)
        return self.output(F.gelu(self.intermediate.dense(a)), a)


class _Encoder(nn.Module):
    def __init__(self, layers, hidden, heads, head_size, ff):
        super().__init__()
        self.layer = nn.ModuleList([_Layer(hidden, heads, head_size, ff) for _ in range(layers)])


class _Pooler(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)


class BertModel(nn.Module):
    """HuggingFace's BertModel names (embeddings, encoder.layer.L..., pooler), post-LayerNorm, GELU, eval only."""

    def __init__(self, vocab, max_pos, pooler, layers, hidden, heads, head_size, ff, type_vocab=2):
        super().__init__()
        self.embeddings = _Embeddings(vocab, hidden, max_pos, type_vocab)
        self.encoder = _Encoder(layers, hidden, heads, head_size, ff)
        if pooler:
            self.pooler = _Pooler(hidden)

    def forward(self, ids, mask=None, types=None):
        h = self.embeddings(ids, torch.zeros_like(ids) if types is None else types)
        for layer in self.encoder.layer:
            h = layer(h, mask)
        return h


class BertForSequenceClassification(nn.Module):
    """bert + pooler (dense, tanh on [CLS]) + dropout + classifier: logits (N, classes)."""

    def __init__(self, vocab, max_pos, classes, layers=2, hidden=128, heads=2, head_size=64, ff=512, type_vocab=2):
        super().__init__()
        self.bert = BertModel(vocab, max_pos, True, layers, hidden, heads, head_size, ff, type_vocab)
        self.dropout = nn.Dropout(0.1)
        self.classifier = nn.Linear(hidden, classes)

    def forward(self, ids, mask=None, types=None):
        h = self.bert(ids, mask, types)
        return self.classifier(self.dropout(torch.tanh(self.bert.pooler.dense(h[:, 0]))))


class _Transform(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.dense, self.LayerNorm = nn.Linear(hidden, hidden), nn.LayerNorm(hidden, eps=1e-12)


class _Predictions(nn.Module):
    def __init__(self, hidden, vocab):
        super().__init__()
        self.transform = _Transform(hidden)
        self.decoder = nn.Linear(hidden, vocab, bias=False)
        self.bias = nn.Parameter(torch.zeros(vocab))
        self.decoder.bias = self.bias


class _MlmHead(nn.Module):
    def __init__(self, hidden, vocab):
        super().__init__()
        self.predictions = _Predictions(hidden, vocab)


class BertForMaskedLM(nn.Module):
    """bert + cls.predictions (dense, GELU, LayerNorm, decoder tied to the word embeddings): logits (N, T, vocab)."""

    def __init__(self, vocab, max_pos, layers=2, hidden=128, heads=2, head_size=64, ff=512, type_vocab=2):
        super().__init__()
        self.bert = BertModel(vocab, max_pos, False, layers, hidden, heads, head_size, ff, type_vocab)
        self.cls = _MlmHead(hidden, vocab)
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def forward(self, ids, mask=None, types=None):
        p = self.cls.predictions
        t = p.transform
        return p.decoder(t.LayerNorm(F.gelu(t.dense(self.bert(ids, mask, types)))))


def build(manifest):
    """The network a manifest (dict) describes, with fresh weights."""
    family, m = manifest["family"], manifest["model"]
    if family == "resnet":
        return ResNet(m["name"], m["classes"], m["input_channels"], m["widen"], m["projection_shortcuts"], m.get("base_width", 16))
    if family == "mlp":
        return Mlp(m["classes"], m["input_dim"], m["width"], m["depth"], m["residual"], m["widen"])
    if family == "bert":
        sizes = dict(layers=m["num_hidden_layers"], hidden=m["hidden_size"], heads=m["num_attention_heads"],
                     head_size=m["attention_head_size"], ff=m["intermediate_size"], type_vocab=m["type_vocab_size"])
        if m["head"] == "mlm":
            return BertForMaskedLM(m["vocab_size"], m["max_position_embeddings"], **sizes)
        return BertForSequenceClassification(m["vocab_size"], m["max_position_embeddings"], m["classes"], **sizes)
    raise ValueError(f"unknown family {family!r}")


_SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}


def _read_safetensors(path):
    """A .safetensors file as a state_dict, read directly (8-byte header length, JSON header, little-endian data)."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    start = 8 + n
    state = {}
    for key, e in header.items():
        if key == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        dtype = _SAFETENSORS_DTYPES[e["dtype"]]
        t = torch.frombuffer(bytearray(data[start + begin:start + end]), dtype=dtype) if end > begin else torch.empty(0, dtype=dtype)
        state[key] = t.reshape(e["shape"])
    return state


def read_state_dict(path):
    """A state_dict from .safetensors (no extra package needed) or a torch.save file (.pth/.pt/.bin)."""
    if path.endswith(".safetensors"):
        return _read_safetensors(path)
    return torch.load(path, map_location="cpu", weights_only=True)


def load(manifest_path, check_sha256=True):
    """(model in eval mode, manifest dict) from a manifest written by `wtn export`; the state_dict is loaded strictly."""
    with open(manifest_path) as f:
        manifest = json.load(f)
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{manifest_path}: format {manifest.get('format')!r}, expected {FORMAT}")
    weights = os.path.join(os.path.dirname(os.path.abspath(manifest_path)), manifest["weights"])
    if check_sha256:
        with open(weights, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        if digest != manifest["sha256"]:
            raise ValueError(f"{weights}: SHA-256 {digest} differs from the manifest's {manifest['sha256']}: the file is damaged")
    model = build(manifest)
    model.load_state_dict(read_state_dict(weights), strict=True)
    return model.eval(), manifest


def preprocess(pixels, manifest):
    """uint8 pixels (N, C, H, W), or (N, H, W) for one channel, -> float input normalised as in training."""
    inp = manifest["input"]
    if inp["kind"] != "image":
        raise ValueError("preprocess is for image networks; text networks take WordPiece ids of the vocabulary file")
    x = torch.as_tensor(pixels)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    mean = torch.tensor(inp["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(inp["std"]).view(1, -1, 1, 1)
    return (x.float() / 255 - mean) / std
