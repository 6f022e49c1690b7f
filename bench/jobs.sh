#!/usr/bin/env bash
# wtn run --jobs 2 against one process, same experiment, same machine, run alternately: wall time and the ratio.
# The stages are wide, standard, standard_long and deeper of experiments/fashion-mnist-resnet.yaml (independent of
# each other, so two jobs can overlap all of them), each capped at STEPS steps, tested on 100 images per class.
# Usage: bench/jobs.sh [STEPS] [PAIRS]   (build first: dotnet build -c Release; pause other jobs)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-60}
pairs=${2:-1}
wtn=${WTN:-src/WideThenNarrow.Cli/bin/Release/net10.0/linux-x64/wtn}
[ -x "$wtn" ] || { echo "build wtn first: dotnet build -c Release" >&2; exit 2; }
tmp=${KEEP:-}
if [ -z "$tmp" ]; then tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT; fi   # KEEP=DIR keeps the runs and logs
run() { # JOBS PAIR -> seconds
  local start end
  start=$(date +%s.%N)
  "$wtn" --threads 2 run experiments/fashion-mnist-resnet.yaml --seeds 1 --runs-dir "$tmp/j$1-$2" --jobs "$1" \
    --set max_steps="$steps" --set data.test_per_class=100 --set report.latency_repeats=3 \
    --set imitation=null --set finetune=null --set kd=null --set fitnets=null > "$tmp/j$1-$2.log" 2>&1 \
    || { cat "$tmp/j$1-$2.log" >&2; exit 1; }
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }'
}
for p in $(seq 1 "$pairs"); do
  one=$(run 1 "$p"); two=$(run 2 "$p")
  echo "pair $p: --jobs 1 ${one} s, --jobs 2 ${two} s, jobs 1 / jobs 2 = $(awk -v a="$one" -v b="$two" 'BEGIN { printf "%.2f", a / b }')"
done
