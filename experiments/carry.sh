#!/usr/bin/env bash
# Carries an unfinished run folder from one machine to the next where runs/ is not kept (our build machines are
# wiped between sessions, and a full experiment is longer than a session).
#
#   experiments/carry.sh save NAME      # pack runs/NAME into experiments/carry/NAME.tar.gz (the run must be stopped)
#   experiments/carry.sh restore NAME   # unpack it into runs/NAME on a fresh machine, then `wtn run` resumes it
#   experiments/carry.sh save-all       # every run folder under runs/ (each its own pack, skipped when unchanged) and
#                                       # the loose files beside them (exported networks, logs, chosen rates), the
#                                       # runs stopped first (SIGTERM to every wtn run on that runs folder, waited for)
#   experiments/carry.sh restore-all    # every pack in experiments/carry/ that runs/ does not hold yet
#   experiments/carry.sh start NAME [wtn run options]   # restore if runs/NAME is missing, build wtn into a copy of its
#                                       # own (later builds do not touch the running binary), start `wtn run
#                                       # experiments/NAME.yaml OPTIONS` in the background, log in runs/NAME.log
#
# The pack holds what resume needs: every file of the run folder except the lock files and all but the newest
# step checkpoint of each checkpoints/ folder, and no checkpoint at all in a finished stage (its stage.json is
# written: the run skips it, and its final weights, stage.json and metrics are packed; its best.ckpt, the best
# epoch's weights, stays behind: fashion-mnist-resnet's finished seed 0 packs into 14 MB instead of 50 MB). An unfinished
# stage's best.ckpt stays behind too: nothing reads it back (resume needs only the step checkpoint, whose state records
# the best epoch; the next better epoch writes best.ckpt again), and for the BERT study's wide stage it is another 55 MB. Stop the run first with SIGTERM
# (or Ctrl+C): every training process finishes its step and writes a checkpoint there.
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: experiments/carry.sh save|restore|save-all|restore-all|start NAME [wtn run options] (NAME: all for the -all commands)"
cmd=${1:?$usage}
case $cmd in save-all | restore-all) name=${2:-all} ;; *) name=${2:?$usage} ;; esac
runs=${WTN_RUNS:-runs}
pack=${WTN_CARRY:-experiments/carry}/$name.tar.gz

case $cmd in
save)
  dir=$runs/$name
  [ -d "$dir" ] || { echo "carry: no run folder $dir" >&2; exit 1; }
  # A stage or run that a live process holds has its .lock flock'ed: refuse rather than pack a half-written state.
  while IFS= read -r -d '' lock; do
    flock -n "$lock" true || { echo "carry: $lock is held by a running wtn; stop it (SIGTERM) first" >&2; exit 1; }
  done < <(find "$dir" -name .lock -print0)
  list=$(mktemp)
  trap 'rm -f "$list" "$pack.tmp"' EXIT
  # Every file but locks and older step checkpoints (names sort by step: step-000000200.ckpt).
  find "$dir" -type f ! -name .lock ! -name .lock.owner ! -path '*/checkpoints/*' -print > "$list"
  while IFS= read -r -d '' ck; do
    # .../seed-S/STAGE/RUN/checkpoints: a finished stage has STAGE/stage.json.
    if [ -f "$(dirname "$(dirname "$ck")")/stage.json" ]; then
      find "$ck" -type f ! -name '*.ckpt' -print >> "$list"
    else
      ls -1 "$ck"/step-*.ckpt 2>/dev/null | sort | tail -n 1 >> "$list"
      find "$ck" -type f ! -name 'step-*.ckpt' ! -name best.ckpt -print >> "$list"
    fi
  done < <(find "$dir" -type d -name checkpoints -print0)
  mkdir -p "$(dirname "$pack")"
  # Sorted names and no time stamp in the gzip header: a run that has not changed packs into the same bytes, and git
  # stores nothing new for it.
  tar -c --sort=name --owner=0 --group=0 --numeric-owner -C "$runs" -T <(sed "s|^$runs/||" "$list") | gzip -n > "$pack.tmp"
  if [ -f "$pack" ] && cmp -s "$pack" "$pack.tmp"; then rm -f "$pack.tmp"; echo "carry: $pack unchanged"; exit 0; fi
  mv -f "$pack.tmp" "$pack"
  echo "carry: $pack ($(du -h "$pack" | cut -f1), $(wc -l < "$list") files)"
  ;;
restore)
  [ -f "$pack" ] || { echo "carry: no pack $pack" >&2; exit 1; }
  if [ -d "$runs/$name" ] && [ -n "$(ls -A "$runs/$name")" ]; then
    echo "carry: $runs/$name already exists; move it away to restore $pack" >&2; exit 1
  fi
  mkdir -p "$runs"
  tar -xzf "$pack" -C "$runs" --no-same-owner
  echo "carry: restored $runs/$name from $pack; continue with: wtn run experiments/$name.yaml (same options as before)"
  ;;
save-all)
  # $name is a placeholder here (`save-all all`) or a pattern of run names (`save-all 'width-sweep-w16*'`).
  # (A script that runs wtn step after step must be stopped before this, or it starts its next step: studies.sh stop.)
  pids=$(pgrep -f "wtn.* run .*--runs-dir $runs( |\$)" || true)
  if [ -n "$pids" ]; then
    echo "carry: stopping the running wtn processes ($(echo $pids | tr '\n' ' ')) with SIGTERM" >&2
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 1 600); do pgrep -f "wtn.* run .*--runs-dir $runs( |\$)" > /dev/null || break; sleep 1; done
  fi
  pat=$([ "$name" = all ] && echo '*' || echo "$name")
  for dir in "$runs"/$pat/; do
    [ -d "$dir" ] || continue
    bash experiments/carry.sh save "$(basename "$dir")"
  done
  loose=$(find "$runs" -maxdepth 1 -type f ! -name '*.tar.gz' -printf '%f\n' | sort)
  if [ -n "$loose" ]; then
    mkdir -p "$(dirname "$pack")"
    out=${WTN_CARRY:-experiments/carry}/_loose.tar.gz
    tar -c --sort=name --owner=0 --group=0 --numeric-owner -C "$runs" $loose | gzip -n > "$out.tmp"
    if [ -f "$out" ] && cmp -s "$out" "$out.tmp"; then rm -f "$out.tmp"; else mv -f "$out.tmp" "$out"; fi
    echo "carry: $out ($(du -h "$out" | cut -f1): $(echo $loose | wc -w) loose files)"
  fi
  ;;
restore-all)
  for p in "${WTN_CARRY:-experiments/carry}"/*.tar.gz; do
    [ -f "$p" ] || continue
    n=$(basename "$p" .tar.gz)
    if [ "$n" = _loose ]; then
      mkdir -p "$runs" && tar -xzf "$p" -C "$runs" --no-same-owner --skip-old-files && echo "carry: restored the loose files"
    elif [ -d "$runs/$n" ]; then
      echo "carry: $runs/$n exists; $p left packed"
    else
      bash experiments/carry.sh restore "$n"
    fi
  done
  ;;
start)
  shift 2
  [ -f "experiments/$name.yaml" ] || { echo "carry: no experiment file experiments/$name.yaml" >&2; exit 1; }
  if [ ! -d "$runs/$name" ] && [ -f "$pack" ]; then bash experiments/carry.sh restore "$name"; fi
  bin=${WTN_BIN:-/tmp/wtn-$name}
  if ! out=$(dotnet build src/WideThenNarrow.Cli -c Release -v q -nologo 2>&1); then
    echo "$out" | grep -E ": error " >&2; echo "carry: the build failed; nothing started" >&2; exit 1
  fi
  rm -rf "$bin" && cp -r src/WideThenNarrow.Cli/bin/Release/net10.0/linux-x64 "$bin"
  mkdir -p "$runs"
  log=$runs/$name.log
  echo "=== start $(date -u '+%Y-%m-%d %H:%M:%S UTC') from $(git rev-parse --short HEAD): wtn run experiments/$name.yaml $* ===" >> "$log"
  (setsid nohup "$bin/wtn" --data-dir "${WTN_DATA:-$PWD/data}" run "experiments/$name.yaml" --runs-dir "$runs" "$@" >> "$log" 2>&1 < /dev/null &)
  echo "carry: started $bin/wtn run experiments/$name.yaml $*; log $log; stop it with: pkill -TERM -f '$bin/wtn'"
  ;;
*) echo "$usage" >&2; exit 1 ;;
esac
