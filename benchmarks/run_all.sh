#!/usr/bin/env bash
# Runs every benchmark and prints the tables: C++ producer latency, worker throughput and memory
# (against spdlog and Quill), decode (against simdjson), transports with the reader in another process
# (against pyzmq), Python emit cost (against the seed emitter, logging, pyzmq, W&B, MLflow,
# TensorBoard), Python readers (against json/orjson), training overhead, the framework adapters'
# overhead and events-bridge (against seed 004's polling bridge). Peers install into the
# benchmark's own virtual environment. Every table also lands in benchmarks/results.json
# (benchmarks/results.py); benchmarks/compare.py OLD NEW prints the ratios between two of those.
# Usage: benchmarks/run_all.sh [--quick] [--note TEXT]
set -euo pipefail
cd "$(dirname "$0")/.."
quick=
note=
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --note) note=$2; shift ;;
    *) echo "usage: $0 [--quick] [--note TEXT]" >&2; exit 2 ;;
  esac
  shift
done
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

echo "## Machine"; echo; echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r), load $(cut -d' ' -f1 /proc/loadavg)"; echo

# Each benchmark's output is printed and kept in $logs/NAME.txt, for results.json.
logs=build/bench-logs
rm -rf "$logs"
mkdir -p "$logs"
bench() {
  local name=$1
  shift
  echo
  "$@" | tee "$logs/$name.txt"
}
b=build/release/benchmarks
py=$venv/bin/python
if [ -n "$quick" ]; then
  bench hot_path_latency $b/hot_path_latency 20000
  bench backend_throughput $b/backend_throughput 200000
  bench scaling $b/scaling 20000 20000
  bench stalled_consumer $b/stalled_consumer 1000000
  bench transport_throughput $b/transport_throughput 100000
  bench cross_process $b/cross_process 50000
  bench pyzmq_ceiling "$py" benchmarks/transports/pyzmq_ceiling.py --events 50000
  bench end_to_end_latency $b/end_to_end_latency 200
  bench reader_decode $b/reader_decode --benchmark_min_time=0.05 --benchmark_color=false
  bench sampler_cost $b/sampler_cost 2000
  bench should_stop_cost $b/should_stop_cost 1000000
  bench proxy_fan_in $b/proxy_fan_in build/release/cli/events-proxy 8 500 2
  bench bench_emit "$py" benchmarks/python/bench_emit.py --calls 2000 --no-peers
  bench bench_readers "$py" benchmarks/python/bench_readers.py --events 20000 --rounds 2
  bench bench_training_overhead "$py" benchmarks/python/bench_training_overhead.py --epochs-per-variant 2 --settle 0
  bench bench_step_breakdown "$py" benchmarks/python/bench_step_breakdown.py --rounds 8 --settle 0
  bench bench_adapters "$py" benchmarks/python/bench_adapters.py --quick
  bench bench_bridge "$py" benchmarks/bridge/bench_bridge.py --events 2000 --clients 1,10 --paced 50
else
  bench hot_path_latency $b/hot_path_latency
  bench backend_throughput $b/backend_throughput
  bench scaling $b/scaling
  bench stalled_consumer $b/stalled_consumer
  bench transport_throughput $b/transport_throughput
  bench cross_process $b/cross_process
  bench pyzmq_ceiling "$py" benchmarks/transports/pyzmq_ceiling.py
  bench end_to_end_latency $b/end_to_end_latency
  bench reader_decode $b/reader_decode --benchmark_min_time=1 --benchmark_repetitions=3 --benchmark_report_aggregates_only=true --benchmark_color=false
  bench sampler_cost $b/sampler_cost
  bench should_stop_cost $b/should_stop_cost
  bench bench_emit_calls "$py" benchmarks/python/bench_emit_calls.py
  bench proxy_fan_in $b/proxy_fan_in build/release/cli/events-proxy 64 1000 10
  bench bench_emit "$py" benchmarks/python/bench_emit.py
  bench bench_readers "$py" benchmarks/python/bench_readers.py
  bench bench_training_overhead "$py" benchmarks/python/bench_training_overhead.py
  bench bench_training_overhead_followed "$py" benchmarks/python/bench_training_overhead.py --reader
  bench bench_step_breakdown "$py" benchmarks/python/bench_step_breakdown.py
  bench bench_adapters "$py" benchmarks/python/bench_adapters.py
  bench bench_bridge "$py" benchmarks/bridge/bench_bridge.py
fi
python3 benchmarks/results.py "$logs" --note "${note:-run_all.sh${quick:+ --quick} at $(git rev-parse --short HEAD 2>/dev/null || echo '?')}" \
  > benchmarks/results.json
echo; echo "Tables in benchmarks/results.json; compare two runs with benchmarks/compare.py OLD NEW"
