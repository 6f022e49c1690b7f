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
# compare LABEL OURS PEERS [SUFFIX]: both lines, then the ratios; peak memory too unless SUFFIX is "no-memory".
compare() {
  local label=$1 ts=$2 py=$3 suffix=${4:-}
  echo "$ts"
  echo "$py"
  awk -v t="$(echo "$ts" | median)" -v p="$(echo "$py" | median)" -v tc="$(echo "$ts" | cpu)" -v pc="$(echo "$py" | cpu)" \
      -v tm="$(echo "$ts" | rss)" -v pm="$(echo "$py" | rss)" -v s="$label" -v x="$suffix" \
    'BEGIN { printf "ratio %s: torchsharp / pytorch = %.2f wall, %.2f cpu", s, t / p, tc / pc
             if (x != "no-memory") printf ", %.2f peak memory", tm / pm
             if (x != "" && x != "no-memory") printf " %s", x
             printf "\n" }'
}
for shape in "1 28" "3 32"; do
  set -- $shape
  ts=$("$wtn" bench train-step --channels "$1" --size "$2" --batch 128 --steps "$steps" --threads "$threads")
  py=$(env "${peer_env[@]}" /usr/bin/python3 bench/train_step.py --channels "$1" --size "$2" --batch 128 --steps "$steps" --threads "$threads")
  compare "$1x$2x$2" "$ts" "$py" "(bare step; cpu time is the fairer number on a busy machine; peak RSS of the whole process, runtime included)"
done

# BERT masked-LM (the BERT track's thin encoder: 4 layers, hidden 128, 2 heads, feed-forward 512; vocabulary 8000),
# AdamW, batch 16 of 128 tokens, no dropout on either side.
bert="--layers 4 --hidden 128 --heads 2 --intermediate 512 --seq 128 --vocab 8000 --batch 16 --steps $steps --threads $threads"
compare "bert L4 H128 masked-LM" "$("$wtn" bench train-step --model bert $bert)" \
  "$(env "${peer_env[@]}" /usr/bin/python3 bench/train_step.py --model bert $bert)"

# The masked-LM step as each side trains: 15% of positions labelled. Ours runs the MLM head on those positions only
# (MaskedLmObjective); HuggingFace's BertForMaskedLM, like the peer here, scores every position and ignores the rest.
compare "bert L4 H128 masked-LM training step, 15% masked (ours: head on masked positions; peer: on all)" \
  "$("$wtn" bench train-step --model bert $bert --masked 0.15 | grep objective)" \
  "$(env "${peer_env[@]}" /usr/bin/python3 bench/train_step.py --model bert $bert --masked 0.15)" no-memory
