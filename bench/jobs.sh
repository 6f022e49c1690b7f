#!/usr/bin/env bash
# wtn run --jobs 2 against one process, same experiment, same machine, run in turn: wall time and the ratio. --jobs 2
# runs every stage as a process of its own on half the threads (the stage graph, docs/method.md). The stages are those
# of experiments/fashion-mnist-resnet.yaml named in STAGES (default: wide standard standard_long deeper, independent of
# each other, so two jobs can overlap all of them; STAGES="wide standard" leaves one job alone with the wide network
# for most of the run), each capped at STEPS steps, tested on 100 images per class.
# Usage: [STAGES="..."] bench/jobs.sh [STEPS] [PAIRS]   (build first: dotnet build -c Release; pause other jobs)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-60}
pairs=${2:-1}
wtn=${WTN:-src/WideThenNarrow.Cli/bin/Release/net10.0/linux-x64/wtn}
[ -x "$wtn" ] || { echo "build wtn first: dotnet build -c Release" >&2; exit 2; }
stages=${STAGES:-wide standard standard_long deeper}
drop=()
for st in wide imitation finetune standard standard_long kd fitnets deeper; do
  [[ " $stages " == *" $st "* ]] || drop+=(--set "$st=null")
done
tmp=${KEEP:-}
if [ -z "$tmp" ]; then tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT; fi   # KEEP=DIR keeps the runs and logs
run() { # NAME PAIR ARGS... -> seconds
  local name=$1 pair=$2 start end
  shift 2
  start=$(date +%s.%N)
  "$wtn" --threads 2 run experiments/fashion-mnist-resnet.yaml --seeds 1 --runs-dir "$tmp/$name-$pair" "$@" \
    --set max_steps="$steps" --set data.test_per_class=100 --set report.latency_repeats=3 "${drop[@]}" \
    > "$tmp/$name-$pair.log" 2>&1 \
    || { cat "$tmp/$name-$pair.log" >&2; exit 1; }
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
for p in $(seq 1 "$pairs"); do
  one=$(run j1 "$p" --jobs 1)
  two=$(run j2 "$p" --jobs 2)
  echo "pair $p ($stages): --jobs 1 ${one} s, --jobs 2 ${two} s; jobs 1 / jobs 2 = $(ratio "$one" "$two")"
done
