#!/usr/bin/env bash
# The main job: a PyTorch training loop (scikit-learn's bundled digits data) emitting events to the
# embedded default sink (a JSONL file in the per-user directory), shown live by `events-tail --live`.
# Installs what it needs first (apt, PyPI, then this package), skipping what is already there.
# Usage: scripts/demo.sh [--epochs N] [--step-delay SECONDS]   (extra flags go to train_digits.py)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

# Reinstall the package when the checkout changed since the last install (or it is missing).
mkdir -p build
stamp=build/.demo-install-stamp
state=$( (git rev-parse HEAD 2>/dev/null; git status --porcelain 2>/dev/null) | sha1sum)
scripts_dir=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
if ! python3 -c "import foxml_events" 2>/dev/null || [ ! -x "$scripts_dir/events-tail" ] ||
   [ "$(cat "$stamp" 2>/dev/null)" != "$state" ]; then
  echo "demo: pip install . (builds the C++ core, the extension and events-tail)"
  python3 -m pip install -q .
  echo "$state" >"$stamp"
fi

events_file=$(python3 -c 'import foxml_events; print(foxml_events.default_event_file())')
run_id="digits-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$(dirname "$events_file")"
touch "$events_file"

# The live view starts first, at the end of the file, so it sees the run from its first event.
"$scripts_dir/events-tail" --live -n 0 --run "$run_id" "$events_file" &
view=$!
trap 'kill -INT $view 2>/dev/null || true' EXIT
sleep 0.5
python3 examples/python/train_digits.py --run-id "$run_id" --epochs 3 --step-delay 0.03 --model-path build/digits_mlp.pt "$@" >build/demo-trainer.log 2>&1
sleep 2  # leave the final state on screen for a moment
kill -INT "$view" 2>/dev/null || true
wait "$view" 2>/dev/null || true
trap - EXIT
echo
cat build/demo-trainer.log
echo "events: $events_file   (events-tail $events_file  replays them)"
