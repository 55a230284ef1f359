#!/usr/bin/env bash
# Installs what the build, the demo and the tests need; skips what is already there, so it is
# cheap to call again. C and C++ libraries come from Debian (apt), Python packages from PyPI.
set -euo pipefail

APT_PACKAGES=(build-essential pkg-config nlohmann-json3-dev libzmq3-dev cppzmq-dev libfmt-dev doctest-dev
  libcli11-dev libspdlog-dev libbenchmark-dev tmux
  libsimdjson-dev   # simdjson, the reader_decode benchmark's peer
  libboost-dev      # Boost.Beast (header-only): events-bridge's HTTP and WebSocket server
  libjs-chart.js    # Chart.js, built into events-bridge's dashboard (no CDN: it works offline)
  chromium chromium-driver  # the dashboard's browser test (headless, through Selenium)
  clang libclang-rt-14-dev)  # clang + its runtime: the libFuzzer harnesses (FOXML_EVENTS_BUILD_FUZZERS)
# torch is pinned: the CPU build of 2.13.0 is what this machine kind serves without GBs of CUDA.
PIP_PACKAGES=("torch==2.13.0" scikit-learn pytest pyzmq numpy scikit-build-core pybind11 cmake ninja
  websockets selenium                 # the bridge's tests: a real WebSocket client, a real browser
  lightning transformers accelerate)  # the framework adapters' tests (the package never needs them)

missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: apt-get install ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${1:-}" != "--cpp-only" ]; then
  py_missing=()
  for spec in "${PIP_PACKAGES[@]}"; do
    name="${spec%%==*}"
    python3 -m pip show -q "$name" >/dev/null 2>&1 || py_missing+=("$spec")
  done
  if ((${#py_missing[@]})); then
    echo "setup: pip install ${py_missing[*]}"
    python3 -m pip install -q "${py_missing[@]}"
  fi
fi
