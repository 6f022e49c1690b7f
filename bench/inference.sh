#!/usr/bin/env bash
# Inference speed of an exported network, TorchSharp (wtn bench inference) vs PyTorch (bench/inference.py, the same
# weights through python/wtn_models.py), same threads and batch sizes, in turns; prints the ratio per batch size.
# Usage: bench/inference.sh MANIFEST.json [THREADS] [REPEATS] [ROUNDS]   (build first: dotnet build -c Release)
#   e.g. wtn export runs/wtn-demo -o /tmp/thin.safetensors && bench/inference.sh /tmp/thin.json 1
set -euo pipefail
cd "$(dirname "$0")/.."
manifest=${1:?usage: bench/inference.sh MANIFEST.json [THREADS] [REPEATS] [ROUNDS]}
threads=${2:-1}
repeats=${3:-50}
rounds=${4:-2}
wtn=${WTN:-src/WideThenNarrow.Cli/bin/Release/net10.0/linux-x64/wtn}
[ -x "$wtn" ] || { echo "build wtn first: dotnet build -c Release" >&2; exit 2; }

source bench/peer_env.sh "$threads"
median() { grep -Eo 'median [0-9.]+' | awk '{print $2}'; }
for round in $(seq "$rounds"); do
  ts=$("$wtn" --threads "$threads" bench inference "$manifest" --batch 1 --batch 64 --repeats "$repeats")
  py=$(env "${peer_env[@]}" /usr/bin/python3 bench/inference.py "$manifest" --batch 1 --batch 64 --repeats "$repeats" --threads "$threads")
  echo "$ts"
  echo "$py"
  paste <(echo "$ts" | median) <(echo "$py" | median) | awk -v r="$round" 'BEGIN { split("1 64", b) }
    { printf "round %s, batch %s: torchsharp / pytorch = %.2f (median wall ms %.3f vs %.3f)\n", r, b[NR], $1 / $2, $1, $2 }'
done
