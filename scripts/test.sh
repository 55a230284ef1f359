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

echo "== Fuzzing: each libFuzzer harness for \${FOXML_EVENTS_FUZZ_SECONDS:-60} s (clang, ASan+UBSan)"
# A separate clang build: libFuzzer needs clang; every target is instrumented so the library's
# code is what gets explored. Each harness starts from a copy of its seed corpus in the repo.
fuzz_seconds=${FOXML_EVENTS_FUZZ_SECONDS:-60}
CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFOXML_EVENTS_BUILD_FUZZERS=ON \
  -DFOXML_EVENTS_BUILD_TESTS=OFF -DFOXML_EVENTS_BUILD_EXAMPLES=OFF -DFOXML_EVENTS_INSTALL=OFF >/dev/null
cmake --build build/fuzz -j "$jobs" --target fuzz_decode_line fuzz_sink_uri fuzz_line_splitter fuzz_unix_ack
for harness in decode_line sink_uri line_splitter unix_ack; do
  corpus=build/fuzz/corpus/$harness
  rm -rf "$corpus" && mkdir -p "$corpus" && cp fuzz/corpus/$harness/* "$corpus"/
  build/fuzz/fuzz/fuzz_$harness -max_total_time="$fuzz_seconds" -print_final_stats=1 \
    -artifact_prefix=build/fuzz/crash-$harness- "$corpus" 2>&1 | tail -n 3
done

echo "== Python package, benchmark smoke runs, Python tests"
python3 -m pip install -q .
python3 benchmarks/python/bench_emit.py --calls 400 --no-peers >/dev/null
python3 benchmarks/python/bench_training_overhead.py --epochs-per-variant 1 --settle 0 >/dev/null
python3 benchmarks/python/bench_step_breakdown.py --rounds 2 --settle 0 >/dev/null
python3 -m pytest tests/python

echo "== Python tests under AddressSanitizer (the extension ASan-built, libasan preloaded)"
# The binding handles borrowed Python objects (issue 9's use-after-free in log_metrics): only an
# instrumented _core sees such bugs. PYTHONMALLOC=malloc puts freed objects where ASan watches
# them (pymalloc would recycle them silently); leaks are CPython's own at exit, not ours.
# libstdc++ is preloaded too: python does not link it, and ASan's __cxa_throw interceptor must
# find it at start-up (else the first C++ exception aborts with "real___cxa_throw != 0").
asan_site=build/py-asan-site
python3 -m pip install -q --no-deps --upgrade --target "$asan_site" -Cbuild-dir=build/py-asan \
  -Ccmake.build-type=RelWithDebInfo -Ccmake.define.FOXML_EVENTS_SANITIZE=address .
# The programs the tests start (events-bridge, -proxy, -tail, -ctl) are this build's too.
FOXML_EVENTS_PROGRAMS_DIR="$PWD/$asan_site/bin" \
PYTHONPATH="$PWD/$asan_site" PYTHONMALLOC=malloc ASAN_OPTIONS=detect_leaks=0 \
  LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libstdc++.so)" python3 -m pytest -q -p no:cacheprovider tests/python
