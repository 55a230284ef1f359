#!/usr/bin/env bash
# events-tail shows the ranks of a run and its liveness: --stats names the straggler and the
# stale/killed ranks; --live (under tmux, when given) draws a line per rank. A run whose process
# is gone on this host is `killed`. Usage: test_cli_ranks.sh EVENTS_TAIL [TMUX]
set -euo pipefail
tail_bin=$1 tmux_bin=${2:-}
dir=$(mktemp -d)
server="foxml-ranks-$$"
cleanup() {
  [ -n "$tmux_bin" ] && "$tmux_bin" -L "$server" kill-server 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# line TYPE RANK PID HOST EXTRA-JSON: one event as an emitter writes it (seq per rank).
declare -A seqs=()
line() {
  local seq=${seqs[$2]:-0}
  seqs[$2]=$((seq + 1))
  printf '{"event_type":"%s","run_id":"%s","timestamp":"'"$stamp"'","seq":%d,"pid":%d,"host":"%s","rank":%d,"world_size":%d%s}\n' \
    "$1" "$run" "$seq" "$3" "$4" "$2" "$world" "$5"
}

# ddp_run FILE INTERVAL: four ranks, rank 2 behind; rank 3 done.
ddp_run() {
  run=ddp world=4 seqs=()
  for r in 0 1 2 3; do line run_start $r $((100 + r)) nodeA ",\"heartbeat_interval_s\":$2,\"stale_after_heartbeats\":3"; done >> "$1"
  for r in 0 1 2 3; do
    step=10 pct=50.0
    [ $r -eq 2 ] && step=7 pct=35.0
    line progress $r $((100 + r)) nodeA ",\"stage\":\"training\",\"progress_pct\":$pct,\"current_target\":null,\"targets_complete\":0,\"targets_total\":0,\"step\":$step"
  done >> "$1"
  line run_complete 3 103 nodeA ',"status":"success","duration_s":1.0' >> "$1"
}
stamp="2026-01-21T10:00:01.000000+00:00"
ddp_run "$dir/ddp.jsonl" 0.2
stats=$("$tail_bin" --stats "$dir/ddp.jsonl")
echo "$stats" | grep -q "^run ddp: running, 9 events, ranks 4/4, slowest rank 2$" || fail "--stats ranks: $stats"

# A run on this host whose process is gone: killed, once the followed stream is looked at.
sleep 0 & dead=$!
wait $dead
run=gone world=1
line run_start 0 $dead "$(hostname)" ',"heartbeat_interval_s":0.2,"stale_after_heartbeats":3' > "$dir/gone.jsonl"
set +e
stats=$(timeout -s INT 3 "$tail_bin" -f --stats "$dir/gone.jsonl")
set -e
echo "$stats" | grep -q "^run gone: killed, 1 events$" || fail "--stats killed: $stats"

if [ -n "$tmux_bin" ]; then
  # Stamped now, with a long interval: live, every rank but the finished one is running.
  stamp=$(date -u +%Y-%m-%dT%H:%M:%S.000000+00:00)
  ddp_run "$dir/live.jsonl" 600
  "$tmux_bin" -L "$server" -f /dev/null new-session -d -s live -x 140 -y 30 \
    "env LANG=C LC_ALL=C $tail_bin --live $dir/live.jsonl"
  pane=""
  for _ in $(seq 1 200); do
    pane=$("$tmux_bin" -L "$server" capture-pane -p -t live)
    echo "$pane" | grep -q "rank 3" && break
    sleep 0.05
  done
  echo "$pane" | grep -q "ranks 4/4" || fail "--live: no ranks line: $pane"
  echo "$pane" | grep -Eq "rank 2 +running +35.0%  step 7 .* nodeA/102 .*<- slowest" \
    || fail "--live: rank 2 not shown as the straggler: $pane"
  echo "$pane" | grep -Eq "rank 3 +completed +100.0%" || fail "--live: rank 3 not completed: $pane"
fi
echo "ok"
