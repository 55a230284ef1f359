// Producer cost of one event: foxml-events' emit calls against spdlog's async logger writing an
// equivalent JSON line, in the same process, single thread and 4 threads. Prints p50/p99/p99.9.
// Usage: hot_path_latency [calls-per-thread]
#include <spdlog/async.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <foxml/events.hpp>
#include <functional>
#include <mutex>

#include "../common/bench_support.hpp"

namespace fe = foxml::events;
namespace fb = foxml::events::bench;

namespace {

// Runs `body(thread_index)` on `threads` threads and gathers their samples.
template <class Body>
std::vector<double> on_threads(int threads, Body body) {
  std::vector<std::vector<double>> parts(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { parts[t] = body(t); });
  for (auto& th : pool) th.join();
  std::vector<double> all;
  for (auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  return all;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t calls = argc > 1 ? std::stoul(argv[1]) : 200'000;

  fe::emitter_options options;
  options.queue_capacity = 1 << 16;
  fe::training_event_emitter emitter("bench-run", std::make_unique<fe::file_sink>(fb::scratch_file("ours.jsonl")), options);

  spdlog::init_thread_pool(1 << 16, 1);
  auto peer_sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(fb::scratch_file("spdlog.jsonl"), true);
  auto peer = std::make_shared<spdlog::async_logger>("peer", peer_sink, spdlog::thread_pool(),
                                                     spdlog::async_overflow_policy::overrun_oldest);
  // The peer's line carries the same fields; its timestamp comes from its own pattern.
  peer->set_pattern(R"({"timestamp":"%Y-%m-%dT%H:%M:%S.%f+00:00",%v})", spdlog::pattern_time_type::utc);
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
    peer->info(R"("event_type":"progress","run_id":"{}","seq":{},"pid":{},"host":"{}","rank":0,"world_size":1,)"
               R"("stage":"{}","progress_pct":{},"current_target":null,"targets_complete":0,"targets_total":0,)"
               R"("step":{},"total_steps":{},"epoch":{},"total_epochs":{}}})",
               "bench-run", peer_seq.fetch_add(1, std::memory_order_relaxed), 1234, host, "training",
               static_cast<double>(i) * 1e-3, i, 1'000'000, 1, 10);
  };
  auto ours_metrics = [&](std::size_t i) {
    const double x = static_cast<double>(i);
    emitter.emit_metrics(static_cast<std::int64_t>(i), {{"loss", 1 / (x + 1)}, {"accuracy", x * 1e-6}, {"lr", 1e-3}, {"grad_norm", 0.5}});
  };
  auto peer_metrics = [&](std::size_t i) {
    const double x = static_cast<double>(i);
    peer->info(R"("event_type":"metrics","run_id":"{}","seq":{},"pid":{},"host":"{}","rank":0,"world_size":1,)"
               R"("step":{},"metrics":{{"loss":{},"accuracy":{},"lr":{},"grad_norm":{}}}}})",
               "bench-run", peer_seq.fetch_add(1, std::memory_order_relaxed), 1234, host, i, 1 / (x + 1), x * 1e-6,
               1e-3, 0.5);
  };

  std::printf("Producer cost per event, ns (%zu calls per thread, bursts of 1000 with 2 ms pauses)\n\n", calls);
  std::printf("| %-34s | %6s | %6s | %7s | %6s | %6s | %7s | %6s | %6s |\n", "case", "p50", "p99", "p99.9",
              "spdlog", "p99", "p99.9", "p50 x", "p99.9 x");
  std::printf("|%s|\n", std::string(118, '-').c_str());
  struct bench_case {
    const char* name;
    std::function<void(std::size_t)> ours, theirs;
    int threads;
  };
  const bench_case cases[] = {
      {"emit_progress, 1 thread", ours_progress, peer_progress, 1},
      {"emit_metrics (4 scalars), 1 thread", ours_metrics, peer_metrics, 1},
      {"emit_progress, 4 threads", ours_progress, peer_progress, 4},
      {"emit_metrics (4 scalars), 4 threads", ours_metrics, peer_metrics, 4},
  };
  for (const auto& c : cases) {
    // Interleave the two so that drift of the shared machine hits both alike.
    std::vector<double> ours, theirs;
    for (int round = 0; round < 2; ++round) {
      auto a = on_threads(c.threads, [&](int) { return fb::time_calls(c.ours, calls / 2); });
      auto b = on_threads(c.threads, [&](int) { return fb::time_calls(c.theirs, calls / 2); });
      ours.insert(ours.end(), a.begin(), a.end());
      theirs.insert(theirs.end(), b.begin(), b.end());
    }
    fb::print_row(c.name, fb::summarize(ours), fb::summarize(theirs));
  }
  emitter.close();
  spdlog::shutdown();
  const auto stats = emitter.stats();
  std::printf("\nours: %llu written, %llu dropped\n", static_cast<unsigned long long>(stats.written),
              static_cast<unsigned long long>(stats.dropped()));
  return 0;
}
