#!/usr/bin/env bash
# Runs every benchmark and prints the tables: C++ producer latency, worker throughput and memory
# (against spdlog), Python emit cost (against the seed emitter, logging, pyzmq, W&B, MLflow,
# TensorBoard) and training overhead. Peers install into the benchmark's own virtual environment.
# Usage: benchmarks/run_all.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
quick=${1:-}
scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFOXML_EVENTS_BUILD_BENCHMARKS=ON >/dev/null
cmake --build build/release -j "$(nproc)" >/dev/null

venv=build/bench-venv
if [ ! -x "$venv/bin/python" ]; then
  # System site packages: the pinned CPU torch already installed there is reused, not fetched again.
  python3 -m venv --system-site-packages "$venv"
fi
if [ -z "$quick" ]; then
  "$venv/bin/python" -m pip install -q -r benchmarks/python/requirements-peers.txt
fi
"$venv/bin/python" -m pip install -q .

echo "## Machine"; echo; echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"; echo
if [ -n "$quick" ]; then
  build/release/benchmarks/hot_path_latency 20000
  build/release/benchmarks/backend_throughput 200000
  build/release/benchmarks/scaling 20000 20000
  build/release/benchmarks/stalled_consumer 1000000
  build/release/benchmarks/transport_throughput 100000
  build/release/benchmarks/end_to_end_latency 200
  build/release/benchmarks/reader_decode --benchmark_min_time=0.05
  build/release/benchmarks/sampler_cost 2000
  build/release/benchmarks/should_stop_cost 1000000
  build/release/benchmarks/proxy_fan_in build/release/cli/events-proxy 8 500 2
  "$venv/bin/python" benchmarks/python/bench_emit.py --calls 2000 --no-peers
  "$venv/bin/python" benchmarks/python/bench_training_overhead.py --epochs-per-variant 2
else
  build/release/benchmarks/hot_path_latency
  echo; build/release/benchmarks/backend_throughput
  echo; build/release/benchmarks/scaling
  echo; build/release/benchmarks/stalled_consumer
  echo; build/release/benchmarks/transport_throughput
  echo; build/release/benchmarks/end_to_end_latency
  echo; build/release/benchmarks/reader_decode --benchmark_min_time=1 --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
  echo; build/release/benchmarks/sampler_cost
  echo; build/release/benchmarks/should_stop_cost
  echo; "$venv/bin/python" benchmarks/python/bench_emit_calls.py
  echo; build/release/benchmarks/proxy_fan_in build/release/cli/events-proxy 64 1000 10
  echo; "$venv/bin/python" benchmarks/python/bench_emit.py
  echo; "$venv/bin/python" benchmarks/python/bench_training_overhead.py
fi
