#!/usr/bin/env bash
# Loader speed versus one training step: batches/s of ImageBatchSource alone (Fashion-MNIST train, batch 128,
# plain and with padded crop + flip) and the median time of one forward+backward+SGD step of a CIFAR-style
# ResNet-20 on 1x28x28 batches of 128. Target: the loader at least 20x faster than a step.
# Usage: bench/loader.sh [--threads N] [--steps N] [--json]   (fetches Fashion-MNIST first if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build src/WideThenNarrow.Cli -c Release -v q -nologo >/dev/null
wtn=src/WideThenNarrow.Cli/bin/Release/net10.0/linux-x64/wtn
"$wtn" data fetch fashion-mnist >/dev/null
exec "$wtn" bench loader --dataset fashion-mnist --batch 128 --model cifar-resnet20 "$@"
