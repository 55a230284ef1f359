// Worker throughput: events per second encoded and written to a JSONL file by one background
// thread, foxml-events against spdlog's async logger and Quill (when built with its headers)
// writing an equivalent line, and Quill's own JSON file sink; same process, interleaved rounds.
// Usage: backend_throughput [events]
#include <spdlog/async.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <foxml/events.hpp>

#include "../common/bench_support.hpp"
#ifdef FOXML_BENCH_HAVE_QUILL
#include "../common/quill_peer.hpp"
#endif

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
    logger->set_pattern(R"({"timestamp":"%Y-%m-%dT%H:%M:%S.%f+00:00",%v)", spdlog::pattern_time_type::utc);
    for (std::size_t i = 0; i < events; ++i) {
      logger->info(FOXML_BENCH_PROGRESS_SHORT_FORMAT, FOXML_BENCH_PROGRESS_SHORT_ARGS(i, i));
    }
    logger->flush();
    logger.reset();
    pool.reset();  // joins the worker after it drained the queue
  }
  return static_cast<double>(events) / std::chrono::duration<double>(clock_type::now() - start).count();
}

#ifdef FOXML_BENCH_HAVE_QUILL
// Quill's backend thread from the first log call until flush_log() saw every line written. Its
// default frontend queue grows instead of blocking, so the producer never waits on the backend.
template <class Log>
double quill_rate(quill::Logger* logger, std::size_t events, Log log) {
  quill::Frontend::preallocate();
  const auto start = clock_type::now();
  for (std::size_t i = 0; i < events; ++i) log(logger, i);
  logger->flush_log();
  const double rate = static_cast<double>(events) / std::chrono::duration<double>(clock_type::now() - start).count();
  quill::Frontend::remove_logger_blocking(logger);
  return rate;
}

// The same line as ours, through a FileSink whose pattern adds only the timestamp.
double quill_lines(std::size_t events, int round) {
  const std::string name = "quill-line-" + std::to_string(round);
  return quill_rate(fb::quill_json_line_logger(name, fb::scratch_file((name + ".jsonl").c_str())), events,
                    [](quill::Logger* logger, std::size_t i) {
                      LOG_INFO(logger, FOXML_BENCH_PROGRESS_SHORT_FORMAT, FOXML_BENCH_PROGRESS_SHORT_ARGS(i, i));
                    });
}

// Quill's JsonFileSink: the same fields as named arguments, laid out by Quill's JSON writer.
double quill_json_sink(std::size_t events, int round) {
  const std::string name = "quill-json-" + std::to_string(round);
  return quill_rate(fb::quill_json_sink_logger(name, fb::scratch_file((name + ".jsonl").c_str())), events,
                    [](quill::Logger* logger, std::size_t i) {
                      LOG_INFO(logger,
                               "progress {run_id} {seq} {pid} {host} {rank} {world_size} {stage} {progress_pct} "
                               "{step} {total_steps}",
                               "bench-run", i, 1234, "bench-host", 0, 1, "training", static_cast<double>(i) * 1e-4, i,
                               1'000'000);
                    });
}
#endif

}  // namespace

int main(int argc, char** argv) {
  const std::size_t events = argc > 1 ? std::stoul(argv[1]) : 3'000'000;
  if (argc > 2 && std::string(argv[2]) == "--ours-only") {  // for profiling the worker alone
    std::printf("foxml-events file_sink: %.0f events/s\n", ours(events));
    return 0;
  }
  double best_ours = 0, best_peer = 0, best_quill = 0, best_quill_json = 0;
  for (int round = 0; round < 3; ++round) {  // interleaved rounds; the best of each is reported
    best_ours = std::max(best_ours, ours(events));
    best_peer = std::max(best_peer, spdlog_async(events));
#ifdef FOXML_BENCH_HAVE_QUILL
    best_quill = std::max(best_quill, quill_lines(events, round));
    best_quill_json = std::max(best_quill_json, quill_json_sink(events, round));
#endif
  }
  std::printf("JSONL file, one worker thread, %zu progress events (best of 3 interleaved rounds)\n\n", events);
  std::printf("| %-36s | %12s | %10s |\n|%s|\n", "writer", "events/s", "vs ours", std::string(66, '-').c_str());
  auto row = [&](const char* name, double rate) {
    std::printf("| %-36s | %12.0f | %9.2fx |\n", name, rate, rate / best_ours);
  };
  row("foxml-events file_sink", best_ours);
  row("spdlog async (basic_file)", best_peer);
#ifdef FOXML_BENCH_HAVE_QUILL
  row("quill FileSink (same line)", best_quill);
  row("quill JsonFileSink (its JSON layout)", best_quill_json);
  quill::Backend::stop();
#else
  std::printf("\n(Quill rows left out: built without its headers, see benchmarks/CMakeLists.txt)\n");
#endif
  return 0;
}
