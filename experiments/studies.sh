#!/usr/bin/env bash
# The long studies of issues 24 and 25 across sessions on machines that are wiped between them: three processes, one
# thread each, sharing the machine's 2 cores; every step resumable.
#
#   experiments/studies.sh start   # restore the carried run folders, build wtn into a copy of its own, fetch the data,
#                                  # then start (in the background, logs in RUNS/*.log):
#                                  #   - the BERT study (run bert-study-local), its wide stage first;
#                                  #   - the BERT study with a hidden-256 wide network (experiments/bert-study-h256.yaml);
#                                  #   - the width sweep's chains, base width 16 then 8 (experiments/width-chain.sh)
#   experiments/studies.sh stop    # stop both (SIGTERM: each finishes its step and checkpoints), pack every run folder
#                                  # into experiments/carry/ (experiments/carry.sh save-all) and `git add` the packs
#   experiments/studies.sh status  # where each stands
#
# RUNS is $WTN_RUNS, else /var/tmp/wtn-runs (outside the work tree).
set -euo pipefail
cd "$(dirname "$0")/.."
export WTN_RUNS=${WTN_RUNS:-/var/tmp/wtn-runs}
export WTN_DATA=${WTN_DATA:-$PWD/data}
bin=${WTN_BIN_DIR:-/var/tmp/wtn-bin}
export WTN_BIN=$bin/wtn
bert=(run experiments/bert-study.yaml --runs-dir "$WTN_RUNS" --set name=bert-study-local)

case ${1:-status} in
start)
  bash experiments/carry.sh restore-all
  if ! out=$(dotnet build src/WideThenNarrow.Cli -c Release -v q -nologo -o "$bin.new" 2>&1); then
    echo "$out" | grep -E ": error " >&2; echo "studies: the build failed; nothing started" >&2; exit 1
  fi
  rm -rf "$bin" && mv "$bin.new" "$bin"
  "$WTN_BIN" --data-dir "$WTN_DATA" data fetch all > /dev/null
  mkdir -p "$WTN_RUNS"
  # The BERT study: its wide stage alone first (its held-out top-1 is read before anything imitates it), then deeper
  # (started before standard_long was declared, which comes first in the file's order), then the rest.
  (
    setsid nohup bash -c '
      set -e
      "$0" --threads 1 "$@" --only seed-0/wide
      "$0" --threads 1 "$@" --only seed-0/deeper
      "$0" --threads 1 "$@"
    ' "$WTN_BIN" "${bert[@]}" >> "$WTN_RUNS/bert-study-local.log" 2>&1 < /dev/null &
  )
  (
    setsid nohup "$WTN_BIN" --threads 1 run experiments/bert-study-h256.yaml --runs-dir "$WTN_RUNS" \
      >> "$WTN_RUNS/bert-study-h256.log" 2>&1 < /dev/null &
  )
  (
    setsid nohup bash -c 'experiments/width-chain.sh 16 "0.05 0.1 0.02" && experiments/width-chain.sh 8 "0.05 0.1 0.02"' \
      >> "$WTN_RUNS/width-chain.log" 2>&1 < /dev/null &
  )
  echo "studies: started; logs $WTN_RUNS/bert-study-local.log, bert-study-h256.log and width-chain.log"
  ;;
stop)
  pkill -TERM -f "experiments/width-chain.sh" 2>/dev/null || true   # the wrapper and the chain it runs
  pkill -TERM -f "bash -c .*only seed-0/wide" 2>/dev/null || true
  bash experiments/carry.sh save-all
  git add experiments/carry
  echo "studies: stopped and packed; commit experiments/carry to keep them"
  ;;
status)
  for f in "$WTN_RUNS"/bert-study-local.log "$WTN_RUNS"/bert-study-h256.log "$WTN_RUNS"/width-chain.log; do
    [ -f "$f" ] && { echo "== $f"; grep -E "^===| done in " "$f" | tail -n 4 || true; grep -E "step [0-9]+/" "$f" | tail -n 1 || true; }
  done
  pgrep -af "wtn.* run " || echo "studies: no wtn running"
  ;;
*) echo "usage: experiments/studies.sh start|stop|status" >&2; exit 1 ;;
esac
