#!/usr/bin/env bash
# The main job: a training loop emitting events to the embedded default sink (a JSONL file in the
# per-user directory), shown live as it runs. Installs and builds what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --cpp-only
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release --target foxml_events_example_train_loop >/dev/null

events_file=${FOXML_TRAINING_EVENT_FILE:-$(python3 -c 'import os; d=os.environ.get("XDG_RUNTIME_DIR") or os.path.expanduser("~/.cache"); print(os.path.join(d, "foxml", "events.jsonl"))')}
mkdir -p "$(dirname "$events_file")" && chmod 700 "$(dirname "$events_file")"
touch "$events_file"
start=$(($(wc -l <"$events_file") + 1))
build/release/examples/cpp/train_loop "$events_file" --epochs 3 --steps-per-epoch 40 --step-delay-ms 25 &
trainer=$!
tail -n +"$start" -f "$events_file" --pid "$trainer"
wait "$trainer"
