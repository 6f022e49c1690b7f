#!/usr/bin/env bash
# Training-step speed, TorchSharp (wtn) vs PyTorch (Debian python3-torch with Debian's OpenBLAS: bench/peer_env.sh),
# same model, batch, threads and step: cifar-resnet20 (SGD) on two input shapes, and a BERT masked-LM (AdamW).
# Usage: bench/train_step.sh [THREADS] [STEPS]   (build first: dotnet build -c Release)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
steps=${2:-20}
wtn=${WTN:-src/WideThenNarrow.Cli/bin/Release/net10.0/linux-x64/wtn}
[ -x "$wtn" ] || wtn=src/WideThenNarrow.Cli/bin/Debug/net10.0/linux-x64/wtn
[ -x "$wtn" ] || { echo "build wtn first: dotnet build -c Release" >&2; exit 2; }

source bench/peer_env.sh "$threads"
median() { grep -Eo 'median [0-9.]+' | head -1 | awk '{print $2}'; }
cpu() { grep -Eo 'cpu [0-9.]+' | head -1 | awk '{print $2}'; }
rss() { grep -Eo 'peak RSS [0-9]+' | head -1 | awk '{print $3}'; }
for shape in "1 28" "3 32"; do
  set -- $shape
  ts=$("$wtn" bench train-step --channels "$1" --size "$2" --batch 128 --steps "$steps" --threads "$threads")
  py=$(env "${peer_env[@]}" /usr/bin/python3 bench/train_step.py --channels "$1" --size "$2" --batch 128 --steps "$steps" --threads "$threads")
  echo "$ts"
  echo "$py"
  t=$(echo "$ts" | grep "bare step" | median); p=$(echo "$py" | median)
  tc=$(echo "$ts" | grep "bare step" | cpu); pc=$(echo "$py" | cpu)
  tm=$(echo "$ts" | grep "bare step" | rss); pm=$(echo "$py" | rss)
  awk -v t="$t" -v p="$p" -v tc="$tc" -v pc="$pc" -v tm="$tm" -v pm="$pm" -v s="$1x$2x$2" \
    'BEGIN { printf "ratio %s: torchsharp / pytorch = %.2f wall, %.2f cpu, %.2f peak memory (bare step; cpu time is the fairer number on a busy machine; peak RSS of the whole process, runtime included)\n", s, t / p, tc / pc, tm / pm }'
done

# BERT masked-LM (the BERT track's thin encoder: 4 layers, hidden 128, 2 heads, feed-forward 512; vocabulary 8000),
# AdamW, batch 16 of 128 tokens, no dropout on either side.
bert="--layers 4 --hidden 128 --heads 2 --intermediate 512 --seq 128 --vocab 8000 --batch 16 --steps $steps --threads $threads"
ts=$("$wtn" bench train-step --model bert $bert)
py=$(env "${peer_env[@]}" /usr/bin/python3 bench/train_step.py --model bert $bert)
echo "$ts"
echo "$py"
t=$(echo "$ts" | median); p=$(echo "$py" | median)
tc=$(echo "$ts" | cpu); pc=$(echo "$py" | cpu)
tm=$(echo "$ts" | rss); pm=$(echo "$py" | rss)
awk -v t="$t" -v p="$p" -v tc="$tc" -v pc="$pc" -v tm="$tm" -v pm="$pm" \
  'BEGIN { printf "ratio bert L4 H128 masked-LM: torchsharp / pytorch = %.2f wall, %.2f cpu, %.2f peak memory\n", t / p, tc / pc, tm / pm }'

# The masked-LM step as each side trains: 15% of positions labelled. Ours runs the MLM head on those positions only
# (MaskedLmObjective); HuggingFace's BertForMaskedLM, like the peer here, scores every position and ignores the rest.
ts=$("$wtn" bench train-step --model bert $bert --masked 0.15 | grep objective)
py=$(env "${peer_env[@]}" /usr/bin/python3 bench/train_step.py --model bert $bert --masked 0.15)
echo "$ts"
echo "$py"
t=$(echo "$ts" | median); p=$(echo "$py" | median)
tc=$(echo "$ts" | cpu); pc=$(echo "$py" | cpu)
awk -v t="$t" -v p="$p" -v tc="$tc" -v pc="$pc" \
  'BEGIN { printf "ratio bert L4 H128 masked-LM training step, 15%% masked (ours: head on masked positions; peer: on all): torchsharp / pytorch = %.2f wall, %.2f cpu\n", t / p, tc / pc }'
