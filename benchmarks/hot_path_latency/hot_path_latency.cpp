// Producer cost of one event: foxml-events' emit calls against spdlog's async logger and Quill
// (when built with its headers) writing an equivalent JSON line, in the same process, single
// thread and 4 threads. Prints p50/p99/p99.9 and each peer's ratio to ours, all from one run.
// Usage: hot_path_latency [calls-per-thread]
#include <spdlog/async.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <foxml/events.hpp>
#include <functional>
#include <mutex>

#include "../common/bench_support.hpp"
#ifdef FOXML_BENCH_HAVE_QUILL
#include "../common/quill_peer.hpp"
#endif

namespace fe = foxml::events;
namespace fb = foxml::events::bench;

namespace {

// Runs `body(thread_index)` on `threads` threads and gathers their samples.
template <class Body>
std::vector<double> on_threads(int threads, Body body, void (*thread_init)() = nullptr) {
  std::vector<std::vector<double>> parts(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      if (thread_init != nullptr) thread_init();
      parts[t] = body(t);
    });
  }
  for (auto& th : pool) th.join();
  std::vector<double> all;
  for (auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  return all;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t calls = argc > 1 ? std::stoul(argv[1]) : 200'000;
  // Our ring's slots (default 65536 x 256 B = 16 MiB, larger than any cache here): a second
  // argument sizes it, to measure what the ring's footprint costs the tail.
  const std::size_t slots = argc > 2 ? std::stoul(argv[2]) : std::size_t{1} << 16;
  // A third sets our worker's idle wait in us (default 500): a long one keeps it asleep through
  // each burst, to measure what its draining alongside the producer costs the tail.
  const long idle_wait_us = argc > 3 ? std::stol(argv[3]) : 500;

  fe::emitter_options options;
  options.queue_capacity = slots;
  options.max_idle_wait = std::chrono::microseconds(idle_wait_us);
  fe::training_event_emitter emitter("bench-run", std::make_unique<fe::file_sink>(fb::scratch_file("ours.jsonl")), options);

  spdlog::init_thread_pool(1 << 16, 1);
  auto peer_sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(fb::scratch_file("spdlog.jsonl"), true);
  auto peer = std::make_shared<spdlog::async_logger>("peer", peer_sink, spdlog::thread_pool(),
                                                     spdlog::async_overflow_policy::overrun_oldest);
  // The peer's line carries the same fields; its timestamp comes from its own pattern.
  peer->set_pattern(R"({"timestamp":"%Y-%m-%dT%H:%M:%S.%f+00:00",%v)", spdlog::pattern_time_type::utc);
  std::atomic<std::uint64_t> peer_seq{0};
  const std::string host = "bench-host";

  auto ours_progress = [&](std::size_t i) {
    fe::progress_update p;
    p.stage = "training";
    p.progress_pct = static_cast<double>(i) * 1e-3;
    p.step = static_cast<std::int64_t>(i);
    p.total_steps = 1'000'000;
    p.epoch = 1;
    p.total_epochs = 10;
    emitter.emit_progress(p);
  };
  auto peer_progress = [&](std::size_t i) {
    peer->info(FOXML_BENCH_PROGRESS_FORMAT, FOXML_BENCH_PROGRESS_ARGS(peer_seq.fetch_add(1, std::memory_order_relaxed), host, i));
  };
  auto ours_metrics = [&](std::size_t i) {
    const double x = static_cast<double>(i);
    emitter.emit_metrics(static_cast<std::int64_t>(i), {{"loss", 1 / (x + 1)}, {"accuracy", x * 1e-6}, {"lr", 1e-3}, {"grad_norm", 0.5}});
  };
  auto peer_metrics = [&](std::size_t i) {
    peer->info(FOXML_BENCH_METRICS_FORMAT, FOXML_BENCH_METRICS_ARGS(peer_seq.fetch_add(1, std::memory_order_relaxed), host, i));
  };

#ifdef FOXML_BENCH_HAVE_QUILL
  quill::Logger* quill_logger = fb::quill_json_line_logger("peer", fb::scratch_file("quill.jsonl"));
  // Quill's per-thread queue is allocated on a thread's first log call unless preallocated.
  void (*quill_thread_init)() = [] { quill::Frontend::preallocate(); };
  auto quill_progress = [&](std::size_t i) {
    LOG_INFO(quill_logger, FOXML_BENCH_PROGRESS_FORMAT,
             FOXML_BENCH_PROGRESS_ARGS(peer_seq.fetch_add(1, std::memory_order_relaxed), host, i));
  };
  auto quill_metrics = [&](std::size_t i) {
    LOG_INFO(quill_logger, FOXML_BENCH_METRICS_FORMAT,
             FOXML_BENCH_METRICS_ARGS(peer_seq.fetch_add(1, std::memory_order_relaxed), host, i));
  };
#endif

  std::printf("Producer cost per event, ns (%zu calls per thread, bursts of 1000 with 2 ms pauses; "
              "libraries interleaved, 2 rounds)\n\n", calls);
#ifndef FOXML_BENCH_HAVE_QUILL
  std::printf("(Quill rows left out: built without its headers, see benchmarks/CMakeLists.txt)\n\n");
#endif
  // The TSC here ticks in steps of ~10 ns (see the p50s): the mean, unbiased by that step, tells
  // apart what the percentiles round together.
  std::printf("| %-36s | %-12s | %7s | %7s | %7s | %7s | %9s | %11s | %10s |\n", "case", "library", "p50", "p99",
              "p99.9", "mean", "p50/ours", "p99.9/ours", "mean/ours");
  std::printf("|%s|\n", std::string(133, '-').c_str());
  struct peer_case {
    const char* library;
    std::function<void(std::size_t)> call;
    void (*thread_init)();
  };
  struct bench_case {
    const char* name;
    int threads;
    std::vector<peer_case> libraries;  // the first is ours
  };
  auto libraries = [&](std::function<void(std::size_t)> ours, std::function<void(std::size_t)> spd,
                       [[maybe_unused]] std::function<void(std::size_t)> quill) {
    std::vector<peer_case> all{{"foxml-events", std::move(ours), nullptr}, {"spdlog", std::move(spd), nullptr}};
#ifdef FOXML_BENCH_HAVE_QUILL
    all.push_back({"quill", std::move(quill), quill_thread_init});
#endif
    return all;
  };
  std::function<void(std::size_t)> no_quill_progress, no_quill_metrics;
#ifdef FOXML_BENCH_HAVE_QUILL
  no_quill_progress = quill_progress;
  no_quill_metrics = quill_metrics;
#endif
  const bench_case cases[] = {
      {"emit_progress, 1 thread", 1, libraries(ours_progress, peer_progress, no_quill_progress)},
      {"emit_metrics (4 scalars), 1 thread", 1, libraries(ours_metrics, peer_metrics, no_quill_metrics)},
      {"emit_progress, 4 threads", 4, libraries(ours_progress, peer_progress, no_quill_progress)},
      {"emit_metrics (4 scalars), 4 threads", 4, libraries(ours_metrics, peer_metrics, no_quill_metrics)},
  };
  struct cold_row {
    const char* name;
    const char* library;
    fb::percentiles cold, warm;
  };
  std::vector<cold_row> cold_rows;
  for (const auto& c : cases) {
    // Interleave the libraries so that drift of the shared machine hits all alike.
    std::vector<std::vector<double>> samples(c.libraries.size());
    for (int round = 0; round < 2; ++round) {
      for (std::size_t k = 0; k < c.libraries.size(); ++k) {
        const auto& lib = c.libraries[k];
        auto part = on_threads(c.threads, [&](int) { return fb::time_calls(lib.call, calls / 2); }, lib.thread_init);
        samples[k].insert(samples[k].end(), part.begin(), part.end());
      }
    }
    const fb::percentiles ours = fb::summarize(samples[0]);
    for (std::size_t k = 0; k < c.libraries.size(); ++k) {
      fb::print_row(k == 0 ? c.name : "", c.libraries[k].library, fb::summarize(samples[k]), ours);
      // Every thread's samples are whole bursts of 1000, so index % 1000 == 0 is a burst's first.
      std::vector<double> cold, warm;
      for (std::size_t i = 0; i < samples[k].size(); ++i) (i % 1000 == 0 ? cold : warm).push_back(samples[k][i]);
      cold_rows.push_back({k == 0 ? c.name : "", c.libraries[k].library, fb::summarize(cold), fb::summarize(warm)});
    }
  }
  // A training loop calls once per step, after the step has filled the caches with its own data:
  // each call is a burst's first. Its cost, apart from the warm calls' tail.
  std::printf("\nThe first call of each burst (after the 2 ms pause: cold caches) and the other calls, ns\n\n");
  std::printf("| %-36s | %-12s | %9s | %9s | %10s | %10s |\n", "case", "library", "first p50", "first p90",
              "others p99", "others p99.9");
  std::printf("|%s|\n", std::string(104, '-').c_str());
  for (const auto& row : cold_rows) {
    std::printf("| %-36s | %-12s | %9.1f | %9.1f | %10.1f | %12.1f |\n", row.name, row.library, row.cold.p50,
                row.cold.p90, row.warm.p99, row.warm.p999);
  }
  emitter.close();
  spdlog::shutdown();
#ifdef FOXML_BENCH_HAVE_QUILL
  quill_logger->flush_log();
  quill::Backend::stop();
#endif
  const auto stats = emitter.stats();
  std::printf("\nours: %llu written, %llu dropped\n", static_cast<unsigned long long>(stats.written),
              static_cast<unsigned long long>(stats.dropped()));
  return 0;
}
