#!/usr/bin/env bash
# events-tail --live under tmux, 80 columns: while a trainer writes, the captured pane shows the
# progress bar moving, and at the end the run's final status, its stages with durations, a
# sparkline per metric series (validation next to training), the last log lines, a resources line,
# elapsed time and steps/s; with 15 runs the run list follows the newest and scrolls with the keys.
# No line is wider than the pane (tmux would wrap it), CJK text (two columns a character) included.
# Usage: test_cli_live.sh EVENTS_TAIL SEED_TRAINER
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
pane() { "$tmux_bin" -L "$server" capture-pane -p -t live; }
fail() {
  echo "FAIL: $*" >&2
  echo "--- last pane:" >&2
  pane >&2 2>/dev/null || true
  exit 1
}
# Waits (generously: a loaded machine) for the pane to match an extended regex.
wait_for() {
  local pattern=$1 what=$2 until=$((SECONDS + 30))
  while [ $SECONDS -lt $until ]; do
    pane | grep -qE -- "$pattern" && return 0
    sleep 0.05
  done
  fail "$what"
}
keys() { "$tmux_bin" -L "$server" send-keys -t live "$@"; }

# Fourteen finished runs before the watched one: more than the run list shows at once.
for i in $(seq -w 1 14); do "$trainer" "$dir/events.jsonl" "old-$i" 0; done
# A hostile log line: escape sequences (clear the screen, red) must show as text, not act.
printf '%s\n' '{"event_type":"log","run_id":"old-01","timestamp":"2026-01-01T00:00:00+00:00","seq":0,"pid":1,"host":"h","rank":0,"world_size":1,"level":"info","message":"\u001b[2J\u001b[31mRED\u009b1m"}' \
  >> "$dir/events.jsonl"
# A log line of 60 CJK characters, two columns each: cut to the pane's width, not wrapped.
cjk=$(for _ in $(seq 20); do printf '\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e'; done)  # "日本語" x 20
printf '%s\n' "{\"event_type\":\"log\",\"run_id\":\"old-01\",\"timestamp\":\"2026-01-01T00:00:01+00:00\",\"seq\":1,\"pid\":1,\"host\":\"h\",\"rank\":0,\"world_size\":1,\"level\":\"info\",\"message\":\"$cjk\"}" \
  >> "$dir/events.jsonl"

# ASCII bar and sparklines (LANG=C) so the pane text is easy to match; 80x50.
"$tmux_bin" -L "$server" -f /dev/null new-session -d -s live -x 80 -y 50 \
  "env LANG=C LC_ALL=C $tail_bin --live $dir/events.jsonl"
wait_for "^> old-14 " "the list does not follow the newest run"
"$trainer" "$dir/events.jsonl" live-run 120 rich &
trainer_pid=$!

declare -A bars=()
final="" running_seen=""
until=$((SECONDS + 60))
while [ $SECONDS -lt $until ]; do
  p=$(pane)
  if echo "$p" | grep -q "^live-run "; then
    bar=$(echo "$p" | grep -oE '\[[#.]{10,}\] +[0-9.]+%' | head -1 || true)
    [ -n "$bar" ] && bars["$bar"]=1
    # While it runs: the current stage is marked, elapsed time and a throughput show.
    if echo "$p" | grep -qE "stages: .* > training [0-9]+:[0-9]{2}\*$" &&
       echo "$p" | grep -qE "^  elapsed [0-9]+:[0-9]{2}  [0-9.e+]+ steps/s$"; then
      running_seen=1
    fi
  fi
  if echo "$p" | grep -q "^live-run.*\[completed\]"; then
    final=$p
    break
  fi
  sleep 0.05
done
wait $trainer_pid || fail "trainer failed"
[ -n "$final" ] || fail "the final status never showed"
[ "${#bars[@]}" -ge 3 ] || fail "the progress bar did not move: ${!bars[*]}"
[ -n "$running_seen" ] || fail "never saw the current stage marked with elapsed time and steps/s"
has() { echo "$final" | grep -qE -- "$1" || fail "$2"; }
has '\[#+\] 100\.0%' "final bar is not full"
has "stage: training" "no stage on the final screen"
has "target: - \(4/4\)" "no target count on the final screen"
has "ret_5m\(auc 0.650\)" "no completed targets on the final screen"
has "metrics: auc=" "no metrics on the final screen"
has "^live-run \(seed pipeline\)  \[completed\]" "no run title"
has "^  host [^ ]+  tags seed,tmux$" "no host and tags"
# Stages in order, each with its duration; none marked current once the run ended.
has "^  stages: ranking [0-9]+:[0-9]{2} > feature_selection [0-9]+:[0-9]{2} > training [0-9]+:[0-9]{2}$" \
  "no stage list with durations"
has "^  elapsed [0-9]+:[0-9]{2}  [0-9.e+]+ steps/s$" "no elapsed time and throughput"
# A sparkline per series, 12 points each (ASCII levels), the latest value after it; validation
# right under its training series.
has "^  auc +[_.=+*#-]{12} +0.52$" "no auc sparkline"
has "^  loss +[_.=+*#-]{12} +0.08333$" "no loss sparkline"
has "^  lr +[_.=+*#-]{12} +0.001$" "no lr sparkline"
echo "$final" | grep -A1 "^  loss " | tail -1 | grep -qE "^  val_loss +[_.=+*#-]{12} +0.1538$" ||
  fail "val_loss is not next to loss (lr sorts between them)"
# Falling loss: high at the start, at the floor at the end.
echo "$final" | grep -oE "^  loss +[_.=+*#-]{12}" | grep -qE "#[_.=+*#-]{10}_$" || fail "loss sparkline shape"
has "^  resources: cpu 150% rss 512.0 MiB mem 8.0 GiB/64.0 GiB  gpu0 51% 2.0 GiB/80.0" "no resources line"
# The last four log lines, oldest first, levels shown.
has "^  [0-9]{2}:[0-9]{2}:[0-9]{2} info    finished step 8$" "no log lines"
has "^  [0-9]{2}:[0-9]{2}:[0-9]{2} warning finished step 11$" "no warning log line"
echo "$final" | grep -q "finished step 7$" && fail "more than the last four log lines"
# The run list: 15 runs, the newest selected, scrolled to it.
has "^runs 15 \(15 completed\)  showing 4-15, following the newest$" "no run list header"
has "^> live-run +completed 100.0%  training +[0-9]+:[0-9]{2}$" "live-run not selected in the list"
echo "$final" | grep -q "old-03" && fail "the list shows more rows than fit"
# 80 columns: no line was wrapped (joining wrapped lines would change the capture; -J keeps
# trailing blanks, so both lose theirs).
joined=$("$tmux_bin" -L "$server" capture-pane -p -J -t live | sed 's/ *$//')
[ "$(pane | sed 's/ *$//')" = "$joined" ] || { echo "$joined" >&2; fail "a line wrapped at 80 columns"; }

# Keys scroll the list: Home to the first run, down, a page down, up, then back to following.
keys g
wait_for "^> old-01 " "Home did not select the first run"
wait_for "^old-01  \[completed\]" "the detail does not show the selected run"
wait_for "^runs 15 \(15 completed\)  showing 1-12$" "the list did not scroll to the top"
wait_for "^  00:00:00 info     \[2J \[31mRED 1m$" "an escape sequence from the wire was not neutralised"
wait_for "^  00:00:01 info    ($(printf '\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e')){10}$" "the CJK log line was not cut at 79 columns"
joined=$("$tmux_bin" -L "$server" capture-pane -p -J -t live | sed 's/ *$//')
[ "$(pane | sed 's/ *$//')" = "$joined" ] || { echo "$joined" >&2; fail "the CJK log line wrapped at 80 columns"; }
keys Down
wait_for "^> old-02 " "Down did not move the selection"
keys NPage
wait_for "^> old-14 " "PgDn did not move a page"
wait_for "showing 3-14$" "the list did not scroll with the selection"
keys Up
wait_for "^> old-13 " "Up did not move the selection"
keys f
wait_for "^> live-run " "f did not go back to the newest run"
wait_for "showing 4-15, following the newest$" "not following after f"
keys q
until=$((SECONDS + 30))
while "$tmux_bin" -L "$server" has-session -t live 2>/dev/null && [ $SECONDS -lt $until ]; do sleep 0.05; done
"$tmux_bin" -L "$server" has-session -t live 2>/dev/null && fail "q did not quit"

echo "distinct bars seen: ${#bars[@]}"
printf '%s\n' "${!bars[@]}" | sort
echo "ok"
