#!/usr/bin/env bash
# examples/cpp/dashboard_consumer: reads a finished run from a file and prints its state, then the
# run as JSON; malformed URIs fail with the rule they break.
set -euo pipefail
bin="$1"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
head='"timestamp":"2026-01-21T10:00:00.000000+00:00","pid":1,"host":"h","rank":0,"world_size":1'
{
  echo "{\"event_type\":\"run_start\",\"run_id\":\"dash\",$head,\"seq\":0,\"name\":\"demo\"}"
  echo "{\"event_type\":\"stage_change\",\"run_id\":\"dash\",$head,\"seq\":1,\"new_stage\":\"training\"}"
  echo "{\"event_type\":\"progress\",\"run_id\":\"dash\",$head,\"seq\":2,\"progress_pct\":50.0}"
  echo "{\"event_type\":\"run_complete\",\"run_id\":\"dash\",$head,\"seq\":3,\"status\":\"success\",\"duration_s\":2.5}"
} > "$dir/events jsonl"

out="$("$bin" "$dir/events jsonl")"
echo "$out"
grep -q "^dash \[completed\] 100.0% stage=training events=4$" <<<"$out"
grep -q '"run_id":"dash","name":"demo","status":"completed"' <<<"$out"
grep -q '"final_status":"success","duration_s":2.5' <<<"$out"

# The same file through file:// (a space is %20), and set-up errors that name the rule.
"$bin" "file://${dir// /%20}/events%20jsonl" | grep -q '^dash \[completed\]'
if "$bin" "file://relative" 2>"$dir/err"; then exit 1; fi
grep -q "bad source URI 'file://relative': the path must be absolute" "$dir/err"
if "$bin" "$dir/missing.jsonl" 2>"$dir/err"; then exit 1; fi
grep -q "dashboard_consumer:" "$dir/err"
echo "ok"
