#!/usr/bin/env bash
# events-tail end to end: readable and --json output, -n, filters, --stats, following a file,
# listening on a socket, and the documented exit codes. Usage: test_cli_tail.sh EVENTS_TAIL SEED_TRAINER
set -euo pipefail
tail_bin=$1 trainer=$2
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
wait_for() {  # wait_for SECONDS COMMAND...: retries until the command succeeds or time runs out
  local until=$((SECONDS + $1)); shift
  until "$@"; do [ $SECONDS -lt $until ] || return 1; sleep 0.05; done
}

"$trainer" "$dir/run.jsonl" run-a 0
total=$(wc -l < "$dir/run.jsonl")
[ "$total" -gt 20 ] || fail "the trainer wrote only $total lines"

# Readable: one line per event, no colour when not on a terminal.
out=$("$tail_bin" "$dir/run.jsonl")
[ "$(echo "$out" | wc -l)" -eq "$total" ] || fail "plain output has $(echo "$out" | wc -l) lines, want $total"
echo "$out" | grep -q "run-a stage_change    (start) -> ranking" || fail "no readable stage_change line"
echo "$out" | grep -q $'\x1b' && fail "colour codes on a pipe"

# --json: the raw lines, byte for byte.
"$tail_bin" --json "$dir/run.jsonl" | cmp - "$dir/run.jsonl" || fail "--json differs from the file"

# -n, --type, --run.
[ "$("$tail_bin" -n 3 "$dir/run.jsonl" | wc -l)" -eq 3 ] || fail "-n 3"
"$tail_bin" -n 1 "$dir/run.jsonl" | grep -q "run_complete" || fail "-n 1 is not the last event"
[ "$("$tail_bin" --type target_complete "$dir/run.jsonl" | wc -l)" -eq 4 ] || fail "--type target_complete"
[ "$("$tail_bin" --type error,run_complete "$dir/run.jsonl" | wc -l)" -eq 2 ] || fail "--type error,run_complete"
[ "$("$tail_bin" --run nobody "$dir/run.jsonl" | wc -l)" -eq 0 ] || fail "--run nobody"
[ "$("$tail_bin" --run run-a -n 5 "$dir/run.jsonl" | wc -l)" -eq 5 ] || fail "--run run-a -n 5"

# --stats counts malformed lines and duplicates.
cp "$dir/run.jsonl" "$dir/dirty.jsonl"
printf 'garbage\n{"event_type":\n' >> "$dir/dirty.jsonl"
head -3 "$dir/run.jsonl" >> "$dir/dirty.jsonl"
stats=$("$tail_bin" --stats "$dir/dirty.jsonl")
echo "$stats" | grep -Eq "^malformed +2$" || fail "--stats malformed: $stats"
echo "$stats" | grep -Eq "^duplicates +3$" || fail "--stats duplicates: $stats"
echo "$stats" | grep -Eq "^events +$total " || fail "--stats events: $stats"

# Exit codes.
set +e
"$tail_bin" "$dir/missing.jsonl" 2>/dev/null; [ $? -eq 1 ] || fail "missing file should exit 1"
"$tail_bin" --no-such-flag 2>/dev/null; [ $? -eq 2 ] || fail "bad flag should exit 2"
"$tail_bin" --type bogus "$dir/run.jsonl" 2>/dev/null; [ $? -eq 2 ] || fail "bad type should exit 2"
"$tail_bin" 2>/dev/null; [ $? -eq 2 ] || fail "no source should exit 2"
"$tail_bin" --help >/dev/null; [ $? -eq 0 ] || fail "--help should exit 0"
"$tail_bin" --help | grep -q "Exit codes" || fail "--help does not document exit codes"
set -e

# -f on a file that does not exist yet; SIGTERM ends it with 0.
"$tail_bin" -f --json "$dir/later.jsonl" > "$dir/followed.out" &
follower=$!
sleep 0.2
"$trainer" "$dir/later.jsonl" run-b 0
wait_for 10 bash -c "[ \$(wc -l < '$dir/followed.out') -eq $total ]" || fail "-f got $(wc -l < "$dir/followed.out") lines"
kill -TERM $follower
wait $follower || fail "events-tail -f did not exit 0 on SIGTERM"

# --socket: an emitter-like client writes lines and gets an ack; the socket file is 0600.
"$tail_bin" --socket "$dir/sock/events.sock" --json > "$dir/socket.out" &
listener=$!
wait_for 10 test -S "$dir/sock/events.sock" || fail "no socket file"
[ "$(stat -c %a "$dir/sock/events.sock")" = 600 ] || fail "socket mode $(stat -c %a "$dir/sock/events.sock")"
[ "$(stat -c %a "$dir/sock")" = 700 ] || fail "socket dir mode $(stat -c %a "$dir/sock")"
ack=$(python3 - "$dir/sock/events.sock" "$dir/run.jsonl" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(open(sys.argv[2], "rb").read())
s.settimeout(10)
buf = b""
while not buf.endswith(b'{"ack_seq":31}\n'):
    chunk = s.recv(4096)
    if not chunk:
        break
    buf += chunk
print(buf.decode().strip().splitlines()[-1])
PY
)
[ "$ack" = '{"ack_seq":31}' ] || fail "ack was '$ack'"
wait_for 10 bash -c "[ \$(wc -l < '$dir/socket.out') -eq $total ]" || fail "socket got $(wc -l < "$dir/socket.out") lines"
kill -INT $listener
wait $listener || fail "events-tail --socket did not exit 0 on SIGINT"
[ ! -e "$dir/sock/events.sock" ] || fail "socket file left behind"

# A FIFO is not read: without -f a clear error and exit 1; a followed file replaced by a FIFO is
# skipped with a warning, and SIGTERM still ends events-tail with 0 (it used to block in open()).
mkfifo "$dir/fifo.jsonl"
set +e
timeout 10 "$tail_bin" "$dir/fifo.jsonl" 2> "$dir/fifo.err"; code=$?
set -e
[ $code -eq 1 ] || fail "a FIFO without -f should exit 1, got $code"
grep -q "not a regular file" "$dir/fifo.err" || fail "no clear error for a FIFO: $(cat "$dir/fifo.err")"
cp "$dir/run.jsonl" "$dir/swapped.jsonl"
"$tail_bin" -f --json "$dir/swapped.jsonl" > "$dir/swapped.out" 2> "$dir/swapped.err" &
follower=$!
wait_for 10 bash -c "[ \$(wc -l < '$dir/swapped.out') -eq $total ]" || fail "-f read $(wc -l < "$dir/swapped.out") lines"
rm "$dir/swapped.jsonl"
mkfifo "$dir/swapped.jsonl"
wait_for 10 grep -q "not a regular file" "$dir/swapped.err" || fail "no warning for the FIFO: $(cat "$dir/swapped.err")"
kill -TERM $follower
wait_for 10 bash -c "! kill -0 $follower 2>/dev/null" || fail "events-tail -f hung on a FIFO after SIGTERM"
wait $follower || fail "events-tail -f on a FIFO did not exit 0 on SIGTERM"

# --zmq: SIGTERM and SIGINT end it with 0 (it used to abort on EINTR).
if "$tail_bin" --help | grep -q -- "--zmq"; then
  for sig in TERM INT; do
    "$tail_bin" --zmq "ipc://$dir/nobody.ipc" > /dev/null 2> "$dir/zmq.err" &
    subscriber=$!
    sleep 0.3
    kill -$sig $subscriber
    set +e
    wait $subscriber; code=$?
    set -e
    [ $code -eq 0 ] || fail "events-tail --zmq exited $code on SIG$sig: $(cat "$dir/zmq.err")"
  done
fi
echo "ok"
