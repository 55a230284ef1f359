// Worker throughput: events per second encoded and written to a JSONL file by one background
// thread, foxml-events against spdlog's async logger writing an equivalent line, same process.
// Usage: backend_throughput [events]
#include <spdlog/async.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <foxml/events.hpp>

#include "../common/bench_support.hpp"

namespace fe = foxml::events;
namespace fb = foxml::events::bench;
using clock_type = std::chrono::steady_clock;

namespace {

double ours(std::size_t events) {
  fe::emitter_options options;
  options.queue_capacity = 1 << 16;
  options.overflow = fe::overflow_policy::block;  // measure the worker, not the drop path
  options.block_timeout = std::chrono::seconds(10);
  const auto start = clock_type::now();
  {
    fe::training_event_emitter emitter("bench-run", std::make_unique<fe::file_sink>(fb::scratch_file("ours.jsonl")), options);
    for (std::size_t i = 0; i < events; ++i) {
      fe::progress_update p;
      p.stage = "training";
      p.progress_pct = static_cast<double>(i) * 1e-4;
      p.step = static_cast<std::int64_t>(i);
      p.total_steps = 1'000'000;
      emitter.emit_progress(p);
    }
    const auto report = emitter.close(std::chrono::seconds(60));
    if (!report.ok() || report.dropped != 0) std::fprintf(stderr, "ours: %s, %llu dropped\n", fe::to_string(report.status), static_cast<unsigned long long>(report.dropped));
  }
  return static_cast<double>(events) / std::chrono::duration<double>(clock_type::now() - start).count();
}

double spdlog_async(std::size_t events) {
  const auto start = clock_type::now();
  {
    auto pool = std::make_shared<spdlog::details::thread_pool>(1 << 16, 1);
    auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(fb::scratch_file("spdlog.jsonl"), true);
    auto logger = std::make_shared<spdlog::async_logger>("peer", sink, pool, spdlog::async_overflow_policy::block);
    logger->set_pattern(R"({"timestamp":"%Y-%m-%dT%H:%M:%S.%f+00:00",%v})", spdlog::pattern_time_type::utc);
    for (std::size_t i = 0; i < events; ++i) {
      logger->info(R"("event_type":"progress","run_id":"{}","seq":{},"pid":{},"host":"{}","rank":0,"world_size":1,)"
                   R"("stage":"{}","progress_pct":{},"current_target":null,"targets_complete":0,"targets_total":0,)"
                   R"("step":{},"total_steps":{}}})",
                   "bench-run", i, 1234, "bench-host", "training", static_cast<double>(i) * 1e-4, i, 1'000'000);
    }
    logger->flush();
    logger.reset();
    pool.reset();  // joins the worker after it drained the queue
  }
  return static_cast<double>(events) / std::chrono::duration<double>(clock_type::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t events = argc > 1 ? std::stoul(argv[1]) : 3'000'000;
  if (argc > 2 && std::string(argv[2]) == "--ours-only") {  // for profiling the worker alone
    std::printf("foxml-events file_sink: %.0f events/s\n", ours(events));
    return 0;
  }
  double best_ours = 0, best_peer = 0;
  for (int round = 0; round < 3; ++round) {  // interleaved rounds; the best of each is reported
    best_ours = std::max(best_ours, ours(events));
    best_peer = std::max(best_peer, spdlog_async(events));
  }
  std::printf("JSONL file, one worker thread, %zu progress events (best of 3 interleaved rounds)\n\n", events);
  std::printf("| %-28s | %12s |\n|%s|\n", "writer", "events/s", std::string(45, '-').c_str());
  std::printf("| %-28s | %12.0f |\n", "foxml-events file_sink", best_ours);
  std::printf("| %-28s | %12.0f |\n", "spdlog async (basic_file)", best_peer);
  std::printf("\nratio foxml-events / spdlog: %.2fx\n", best_ours / best_peer);
  return 0;
}
