"""PyTorch peer of `wtn bench train-step`: ms per SGD step of cifar-resnet20 (option-A shortcuts) on a random batch.

Same model, batch, threads and step as the TorchSharp side: zero_grad, forward, cross-entropy, backward,
SGD(momentum 0.9, weight decay 5e-4) update, loss.item(). With --model bert: a BERT masked-LM (wtn_models'
BertForMaskedLM, HuggingFace names, tied decoder) on random token ids, cross-entropy over every position,
AdamW(lr 1e-4, weight decay 0.01), in eval mode (no dropout on either side). Run with /usr/bin/python3 (Debian's
python3-torch).
"""
import argparse
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from peer_blas import blas  # noqa: E402  (bench/peer_blas.py, beside this script)
import wtn_models  # noqa: E402  (the same cifar-resnet20 as wtn builds, with its names)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--model", default="cifar-resnet20", choices=["cifar-resnet20", "bert"])
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--intermediate", type=int, default=512)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--masked", type=float, default=None,
                   help="BERT: label only this share of positions (the rest -100), as HuggingFace's BertForMaskedLM trains: "
                        "logits at every position, cross-entropy with ignore_index")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.model == "bert":
        model = wtn_models.BertForMaskedLM(a.vocab, a.seq, a.layers, a.hidden, a.heads, a.hidden // a.heads, a.intermediate).eval()
        ids = torch.randint(0, a.vocab, (a.batch, a.seq))
        mask = torch.ones(a.batch, a.seq, dtype=torch.long)
        types = torch.zeros(a.batch, a.seq, dtype=torch.long)
        labels = torch.randint(0, a.vocab, (a.batch * a.seq,))
        if a.masked is not None:
            labels[torch.rand(a.batch * a.seq) >= a.masked] = -100
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
        loss_of_batch = lambda: F.cross_entropy(model(ids, mask, types).flatten(0, 1), labels)
        what = "masked-LM" if a.masked is None else f"masked-LM {a.masked:.0%} masked"
        label = (f"bert L{a.layers} H{a.hidden} A{a.heads} I{a.intermediate} {what} vocab {a.vocab} seq {a.seq} "
                 f"batch {a.batch} threads {torch.get_num_threads()}")
    else:
        model = wtn_models.ResNet("cifar-resnet20", a.classes, a.channels).train()
        x = torch.randn(a.batch, a.channels, a.size, a.size)
        y = torch.randint(0, a.classes, (a.batch,))
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        loss_of_batch = lambda: F.cross_entropy(model(x), y)
        label = f"cifar-resnet20 {a.channels}x{a.size}x{a.size} batch {a.batch} threads {torch.get_num_threads()}"
    times, cpu = [], []
    faults0 = 0
    for i in range(a.warmup + a.steps):
        if i == a.warmup:
            faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        c0 = time.process_time()
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = loss_of_batch()
        loss.backward()
        opt.step()
        loss.item()
        if i >= a.warmup:
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / a.steps
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # KB on Linux
    print(f"pytorch    bare step    {label}: median {statistics.median(times):.1f} ms/step "
          f"(mean {statistics.mean(times):.1f}, min {min(times):.1f}, {len(times)} steps), "
          f"cpu {statistics.median(cpu):.1f} ms/step, {faults:.0f} page faults/step, peak RSS {peak_mb} MB (torch {torch.__version__}, {blas()} BLAS)")


if __name__ == "__main__":
    main()
