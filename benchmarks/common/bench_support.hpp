#pragma once
// Shared pieces of the benchmarks: per-call timing with the TSC, percentiles, the peer's logger,
// and a table printer. Benchmarks print ratios against peers measured in the same process.

#include <x86intrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

// The peers' format strings and arguments for the lines foxml-events writes (the progress event
// with and without its epoch fields, the 4-scalar metrics event). Macros: Quill takes its format
// string as a literal.
#define FOXML_BENCH_PROGRESS_HEAD                                                                     \
  R"("event_type":"progress","run_id":"{}","seq":{},"pid":{},"host":"{}","rank":0,"world_size":1,)" \
  R"("stage":"{}","progress_pct":{},"current_target":null,"targets_complete":0,"targets_total":0,)"
#define FOXML_BENCH_PROGRESS_FORMAT FOXML_BENCH_PROGRESS_HEAD R"("step":{},"total_steps":{},"epoch":{},"total_epochs":{}}})"
#define FOXML_BENCH_PROGRESS_ARGS(seq, host, i) \
  "bench-run", seq, 1234, host, "training", static_cast<double>(i) * 1e-3, i, 1'000'000, 1, 10
#define FOXML_BENCH_PROGRESS_SHORT_FORMAT FOXML_BENCH_PROGRESS_HEAD R"("step":{},"total_steps":{}}})"
#define FOXML_BENCH_PROGRESS_SHORT_ARGS(seq, i) \
  "bench-run", seq, 1234, "bench-host", "training", static_cast<double>(i) * 1e-4, i, 1'000'000
#define FOXML_BENCH_METRICS_FORMAT                                                                   \
  R"("event_type":"metrics","run_id":"{}","seq":{},"pid":{},"host":"{}","rank":0,"world_size":1,)" \
  R"("step":{},"metrics":{{"loss":{},"accuracy":{},"lr":{},"grad_norm":{}}}}})"
#define FOXML_BENCH_METRICS_ARGS(seq, host, i) \
  "bench-run", seq, 1234, host, i, 1 / (static_cast<double>(i) + 1), static_cast<double>(i) * 1e-6, 1e-3, 0.5

namespace foxml::events::bench {

// A fresh path for `name` under $TMPDIR/foxml-bench (any old file there is removed).
inline std::string scratch_file(const char* name) {
  const auto dir = std::filesystem::temp_directory_path() / "foxml-bench";
  std::filesystem::create_directories(dir);
  const auto path = dir / name;
  std::filesystem::remove(path);
  return path.string();
}

// Nanoseconds per TSC tick, measured against steady_clock over 200 ms.
inline double ns_per_tick() {
  static const double rate = [] {
    const auto t0 = std::chrono::steady_clock::now();
    const std::uint64_t c0 = __rdtsc();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const std::uint64_t c1 = __rdtsc();
    const auto t1 = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(c1 - c0);
  }();
  return rate;
}

struct percentiles {
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, mean = 0;
};

inline percentiles summarize(std::vector<double> ns) {
  percentiles p;
  if (ns.empty()) return p;
  std::sort(ns.begin(), ns.end());
  auto at = [&](double q) { return ns[std::min(ns.size() - 1, static_cast<std::size_t>(q * ns.size()))]; };
  p.p50 = at(0.50);
  p.p90 = at(0.90);
  p.p99 = at(0.99);
  p.p999 = at(0.999);
  double sum = 0;
  for (double v : ns) sum += v;
  p.mean = sum / ns.size();
  return p;
}

// Times `call(i)` one call at a time with rdtscp fences, in bursts with pauses between them, so
// the consumer keeps up as it would in a training loop (a step takes milliseconds, not nanoseconds).
// Returns per-call nanoseconds with the cost of the timing itself subtracted.
template <class Call>
std::vector<double> time_calls(Call&& call, std::size_t calls, std::size_t burst = 1000,
                               std::chrono::microseconds pause = std::chrono::microseconds(2000)) {
  unsigned aux = 0;
  // The cost of an empty timed region, to subtract.
  std::vector<std::uint64_t> empty(10000);
  for (auto& e : empty) {
    const std::uint64_t a = __rdtscp(&aux);
    const std::uint64_t b = __rdtscp(&aux);
    e = b - a;
  }
  std::sort(empty.begin(), empty.end());
  const std::uint64_t overhead = empty[empty.size() / 2];
  const double rate = ns_per_tick();

  std::vector<double> samples;
  samples.reserve(calls);
  for (std::size_t i = 0; i < calls; ++i) {
    const std::uint64_t a = __rdtscp(&aux);
    call(i);
    const std::uint64_t b = __rdtscp(&aux);
    const std::uint64_t ticks = b - a > overhead ? b - a - overhead : 0;
    samples.push_back(static_cast<double>(ticks) * rate);
    if ((i + 1) % burst == 0) std::this_thread::sleep_for(pause);
  }
  return samples;
}

// One library's row of a latency table, with its ratio to ours (`ours` is our own row's figures).
inline void print_row(const std::string& name, const std::string& library, const percentiles& p,
                      const percentiles& ours) {
  std::printf("| %-36s | %-12s | %7.1f | %7.1f | %7.1f | %7.1f | %8.2fx | %10.2fx | %9.2fx |\n", name.c_str(),
              library.c_str(), p.p50, p.p99, p.p999, p.mean, p.p50 / std::max(ours.p50, 0.1),
              p.p999 / std::max(ours.p999, 0.1), p.mean / std::max(ours.mean, 0.1));
}

}  // namespace foxml::events::bench
