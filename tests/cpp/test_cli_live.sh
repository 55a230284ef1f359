#!/usr/bin/env bash
# events-tail --live under tmux: while a trainer writes, the captured pane shows the progress bar
# moving, and at the end the run's final status. Usage: test_cli_live.sh EVENTS_TAIL SEED_TRAINER
set -euo pipefail
tail_bin=$1 trainer=$2
tmux_bin=${TMUX_BIN:-tmux}
dir=$(mktemp -d)
server="foxml-live-$$"
cleanup() {
  "$tmux_bin" -L "$server" kill-server 2>/dev/null || true
  kill $(jobs -p) 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  echo "--- last pane:" >&2
  "$tmux_bin" -L "$server" capture-pane -p -t live 2>/dev/null >&2 || true
  exit 1
}

# ASCII bar (LANG=C) so the pane text is easy to match; 120x40 so nothing wraps.
"$tmux_bin" -L "$server" -f /dev/null new-session -d -s live -x 120 -y 40 \
  "env LANG=C LC_ALL=C $tail_bin --live $dir/events.jsonl"
sleep 0.3
"$trainer" "$dir/events.jsonl" live-run 120 &
trainer_pid=$!

declare -A bars=()
final=""
until=$((SECONDS + 60))
while [ $SECONDS -lt $until ]; do
  pane=$("$tmux_bin" -L "$server" capture-pane -p -t live)
  bar=$(echo "$pane" | grep -oE '\[[#.]{10,}\] +[0-9.]+%' | head -1 || true)
  [ -n "$bar" ] && bars["$bar"]=1
  if echo "$pane" | grep -q "live-run.*\[completed\]"; then
    final=$pane
    break
  fi
  sleep 0.05
done
wait $trainer_pid || fail "trainer failed"
[ -n "$final" ] || fail "the final status never showed"
[ "${#bars[@]}" -ge 3 ] || fail "the progress bar did not move: ${!bars[*]}"
echo "$final" | grep -qE '\[#+\] 100\.0%' || fail "final bar is not full"
echo "$final" | grep -q "stage: training" || fail "no stage on the final screen"
echo "$final" | grep -q "target: - (4/4)" || fail "no target count on the final screen"
echo "$final" | grep -q "ret_5m(auc 0.650)" || fail "no completed targets on the final screen"
echo "$final" | grep -q "metrics: auc=" || fail "no metrics on the final screen"
echo "distinct bars seen: ${#bars[@]}"
printf '%s\n' "${!bars[@]}" | sort
echo "ok"
