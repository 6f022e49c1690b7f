"""PyTorch peer of `wtn bench inference`: ms per eval-mode forward pass of a network exported by `wtn export`.

The network is rebuilt by python/wtn_models.py from the manifest (the same architecture and weights as the
TorchSharp side), run under torch.no_grad() on a random input of the manifest's shape, 3 untimed passes first,
then the median of --repeats passes. Run with /usr/bin/python3 (Debian's python3-torch).
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from peer_blas import blas  # noqa: E402  (bench/peer_blas.py, beside this script)
import wtn_models  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("manifest")
    ap.add_argument("--batch", type=int, action="append")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model, manifest = wtn_models.load(a.manifest)
    m, inp = manifest["model"], manifest["input"]
    for b in a.batch or [1, 64]:
        if inp["kind"] == "image":
            args = (torch.randn(b, *inp["shape"]),)
        else:
            args = (torch.randint(5, m["vocab_size"], (b, a.seq)), torch.ones(b, a.seq, dtype=torch.long), torch.zeros(b, a.seq, dtype=torch.long))
        times = []
        with torch.no_grad():
            for i in range(-3, a.repeats):
                t = time.perf_counter()
                model(*args)
                if i >= 0:
                    times.append((time.perf_counter() - t) * 1000)
        print(f"pytorch inference {m['name']} ({m['widen']}) batch {b} threads {torch.get_num_threads()}: "
              f"median {statistics.median(times):.3f} ms ({a.repeats} passes; {blas()} BLAS)")


if __name__ == "__main__":
    main()
