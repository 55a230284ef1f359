#!/usr/bin/env bash
# Runs every test: the C++ suite (plain, then under ASan+UBSan, then the threaded parts under
# TSan), the downstream consumer builds, and the Python suite. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

jobs=$(nproc)
configure_and_test() {  # build-dir ctest-args... -- cmake-args...
  local dir=$1; shift
  local ctest_args=()
  while [ "$1" != "--" ]; do ctest_args+=("$1"); shift; done
  shift
  cmake -S . -B "$dir" -G Ninja -DFOXML_EVENTS_BUILD_BENCHMARKS=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" "${ctest_args[@]}"
}

echo "== C++ tests (RelWithDebInfo)"
configure_and_test build/release -- -DCMAKE_BUILD_TYPE=RelWithDebInfo

echo "== C++ tests under AddressSanitizer + UndefinedBehaviorSanitizer"
configure_and_test build/asan -- -DCMAKE_BUILD_TYPE=Debug -DFOXML_EVENTS_SANITIZE=address,undefined

echo "== C++ tests under ThreadSanitizer"
# libzmq is not built with TSan (tests/cpp/tsan.supp says why); fork children are tested on purpose.
# Benchmarks stay out: their peers (libspdlog) are not TSan-built either, and they ran under ASan.
TSAN_OPTIONS="die_after_fork=0 halt_on_error=1 suppressions=$PWD/tests/cpp/tsan.supp" \
  configure_and_test build/tsan -LE "consumers|benchmarks" -- -DCMAKE_BUILD_TYPE=Debug -DFOXML_EVENTS_SANITIZE=thread

echo "== Python package, benchmark smoke runs, Python tests"
python3 -m pip install -q .
python3 benchmarks/python/bench_emit.py --calls 400 --no-peers >/dev/null
python3 benchmarks/python/bench_training_overhead.py --epochs-per-variant 1 >/dev/null
python3 -m pytest tests/python
