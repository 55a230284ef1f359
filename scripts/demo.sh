#!/usr/bin/env bash
# The main job: a PyTorch training loop (scikit-learn's bundled digits data) emitting events to the
# embedded default sink (a JSONL file in the per-user directory), shown live by `events-tail --live`
# in the terminal and by the web dashboard of `events-bridge` (its URL is printed before training).
# Installs what it needs first (apt, PyPI, then this package), skipping what is already there.
# Usage: scripts/demo.sh [--keep-dashboard] [--epochs N] [--step-delay SECONDS]
#   (other flags go to train_digits.py; --keep-dashboard leaves events-bridge up after the run)
set -euo pipefail
cd "$(dirname "$0")/.."

keep_dashboard=0
trainer_args=()
for arg in "$@"; do
  if [ "$arg" = "--keep-dashboard" ]; then keep_dashboard=1; else trainer_args+=("$arg"); fi
done

scripts/setup.sh

# Reinstall the package when the checkout changed since the last install (or it is missing).
mkdir -p build
stamp=build/.demo-install-stamp
state=$( (git rev-parse HEAD 2>/dev/null; git status --porcelain 2>/dev/null) | sha1sum)
scripts_dir=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
if ! python3 -c "import foxml_events" 2>/dev/null || [ ! -x "$scripts_dir/events-tail" ] ||
   { dpkg-query -W -f='${Status}' libboost-dev 2>/dev/null | grep -q "install ok installed" &&
     [ ! -x "$scripts_dir/events-bridge" ]; } ||
   [ "$(cat "$stamp" 2>/dev/null)" != "$state" ]; then
  echo "demo: pip install . (builds the C++ core, the extension and events-tail)"
  python3 -m pip install -q .
  echo "$state" >"$stamp"
fi

events_file=$(python3 -c 'import foxml_events; print(foxml_events.default_event_file())')
run_id="digits-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$(dirname "$events_file")"
touch "$events_file"

# The dashboard: events-bridge following this event file from its start (earlier runs show too), on
# port 8765, or a free port when 8765 is taken. Not its default sources: those include listening on
# the default socket, and the trainer's default sink (socket, then file) would then send everything
# there, leaving the file the terminal view follows empty.
bridge="" url=""
start_bridge() {  # $1: port; sets bridge and url, or returns 1 when it did not come up
  : >build/demo-bridge.out
  "$scripts_dir/events-bridge" "$events_file" --port "$1" >build/demo-bridge.out 2>build/demo-bridge.log &
  bridge=$!
  for _ in $(seq 100); do  # it prints its one stdout line once it listens
    url=$(sed -n 's/^events-bridge: serving \(http:[^ ]*\)$/\1/p' build/demo-bridge.out)
    [ -n "$url" ] && return 0
    kill -0 "$bridge" 2>/dev/null || break
    sleep 0.1
  done
  kill "$bridge" 2>/dev/null || true
  wait "$bridge" 2>/dev/null || true
  bridge=""
  return 1
}
stop_bridge() {
  [ -n "$bridge" ] || return 0
  kill -TERM "$bridge" 2>/dev/null || true
  wait "$bridge" 2>/dev/null || true
  bridge=""
}
if [ -x "$scripts_dir/events-bridge" ]; then
  start_bridge 8765 || start_bridge 0 || echo "demo: events-bridge did not start (see build/demo-bridge.log)"
else
  echo "demo: no events-bridge (built when Boost.Beast is installed: libboost-dev); terminal view only"
fi
if [ -n "$url" ]; then
  echo "dashboard: ${url}#/runs/$run_id   (all runs: $url)"
  sleep 2  # time to read (and click) the URL before the live view takes the screen
fi

# The live view starts first, at the end of the file, so it sees the run from its first event.
"$scripts_dir/events-tail" --live -n 0 --run "$run_id" "$events_file" &
view=$!
trap 'kill -INT $view 2>/dev/null || true; stop_bridge' EXIT
sleep 0.5
python3 examples/python/train_digits.py --run-id "$run_id" --epochs 3 --step-delay 0.03 --model-path build/digits_mlp.pt \
  ${trainer_args[@]+"${trainer_args[@]}"} >build/demo-trainer.log 2>&1
sleep 2  # leave the final state on screen for a moment
kill -INT "$view" 2>/dev/null || true
wait "$view" 2>/dev/null || true
trap - EXIT
echo
cat build/demo-trainer.log
echo "events: $events_file   (events-tail $events_file  replays them)"
if [ -n "$bridge" ]; then
  if ((keep_dashboard)); then
    echo "dashboard: ${url}#/runs/$run_id   (events-bridge pid $bridge stays up: kill $bridge to stop it)"
    disown "$bridge" 2>/dev/null || true
  else
    stop_bridge
    echo "dashboard: stopped (scripts/demo.sh --keep-dashboard leaves it up; or run events-bridge yourself)"
  fi
fi
