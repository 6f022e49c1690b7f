#!/usr/bin/env bash
# One base width of the width sweep (issue 24; docs/results.md, "Budget"), every step in order, on one thread: each
# step is skipped when its result exists, so the same command after a stop (or on a fresh machine after
# `experiments/carry.sh restore-all`) goes on where it was.
#
#   experiments/width-chain.sh W [RATES]    # W = 8 or 16; RATES: stage 3's learning rates to choose from
#                                           # (default "0.02 0.05 0.1", in the order they run)
#   WTN_RUNS=/var/tmp/wtn-runs WTN_BIN=/var/tmp/wtn-bin/wtn experiments/width-chain.sh 16
#
# 1. the wide network (seed 0's wide stage of run width-sweep-wW), exported to RUNS/width-sweep-wW-wide.safetensors;
#    it serves every student seed (`wide.import`, so each report says the wide network was imported);
# 2. the grid: on seed 0, the method, `finetune_no_kd` and `kd_finetune_recipe` at each rate (runs
#    width-sweep-wW-ftlrNN, stage 2 trained once and reused);
# 3. per arm the rate with the best seed-0 validation top-1 (ties: the smaller rate), written to
#    RUNS/width-sweep-wW-chosen.txt with every rate's validation top-1;
# 4. run width-sweep-wW-chosen: every arm but deeper on 3 seeds, each stage-3 arm at its chosen rate, reusing all the
#    stages the grid finished under the same settings.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:?usage: experiments/width-chain.sh W [RATES]}
rates=${2:-0.02 0.05 0.1}
runs=${WTN_RUNS:-runs}
bin=${WTN_BIN:-wtn}
base=width-sweep-w$W
wide=$runs/$base-wide.safetensors
widths=(--set "models.thin.base_width=$W" --set "models.wide.base_width=$W" --set "models.deeper.base_width=$W")
wtn() { "$bin" --threads 1 "$@"; }
say() { echo "=== $(date -u '+%Y-%m-%d %H:%M:%S UTC') $*"; }
tag() { printf 'ftlr%02d' "$(python3 -c "print(round($1 * 100))")"; }

# wtn export writes each file atomically, the manifest last (it names the weights file: export under the final name).
if [ ! -f "${wide%.safetensors}.json" ]; then
  say "w$W: the wide network"
  wtn run experiments/width-sweep.yaml --runs-dir "$runs" --set "name=$base" "${widths[@]}" --only seed-0/wide
  wtn export experiments/width-sweep.yaml --runs-dir "$runs" --set "name=$base" "${widths[@]}" --stage wide --seed 0 \
    -o "$wide"
fi

# Each grid run reuses the stages the earlier ones finished (stage 2 above all); the chosen run reuses them all.
reuse=()
pairs=()
for lr in $rates; do
  name=$base-$(tag "$lr")
  say "w$W: stage 3 at lr $lr on seed 0 ($name)"
  wtn run experiments/width-sweep.yaml --runs-dir "$runs" --set "name=$name" "${widths[@]}" --seeds 1 \
    --set "wide.import=$wide" --set finetune.train.optimizer.lr="$lr" \
    --set standard=null --set standard_matched=null --set kd=null --set deeper=null "${reuse[@]}"
  reuse+=(--reuse-from "$runs/$name")
  pairs+=("$name=$lr")
done

say "w$W: choosing the rates on seed 0's validation top-1"
chosen=$runs/$base-chosen.txt
python3 - "$runs" "$chosen" "${pairs[@]}" <<'EOF'
import json, sys
runs, out, pairs = sys.argv[1], sys.argv[2], [p.split("=") for p in sys.argv[3:]]
arms = {"finetune": "finetune.train.optimizer.lr", "finetune_no_kd": "finetune_no_kd.lr",
        "kd_finetune_recipe": "kd_finetune_recipe.lr"}
lines, chosen = [], []
for stage, key in arms.items():
    scores = []
    for name, lr in sorted(pairs, key=lambda p: float(p[1])):
        s = json.load(open(f"{runs}/{name}/results.json"))["per_seed"][0][stage]
        scores.append((s["val_top1"], float(lr), s["test_top1"]))
    lines.append(f"{stage}: " + ", ".join(f"lr {lr:g} val {v * 100:.2f} test {t * 100:.2f}" for v, lr, t in scores))
    # max keeps the first of equal scores, and the rates are in increasing order: ties go to the smaller rate
    chosen.append(f"chosen {key} {max(scores, key=lambda t: t[0])[1]:g}")
open(out, "w").write("\n".join(lines + chosen) + "\n")
EOF
cat "$chosen"

say "w$W: every arm but deeper on 3 seeds at the chosen rates"
sets=()
while read -r _ key lr; do
  sets+=(--set "$key=$lr")
done < <(grep '^chosen ' "$chosen")
wtn run experiments/width-sweep.yaml --runs-dir "$runs" --set "name=$base-chosen" "${widths[@]}" \
  --set "wide.import=$wide" --set deeper=null "${sets[@]}" "${reuse[@]}"
say "w$W: done; report in $runs/$base-chosen/report.md"
