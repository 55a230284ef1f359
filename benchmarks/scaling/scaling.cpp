// Scaling curves: (1) emit cost per call and (2) worker throughput with 1, 2, 4, 8 producer
// threads sharing one emitter; (3) file throughput with 1, 4, 16 processes, each with its own
// emitter, appending to one JSONL file (O_APPEND, one write() per batch: lines never interleave,
// which the run checks by counting whole lines). Prints tables; asserts nothing about time.
// Usage: scaling [events-per-thread] [events-per-process]
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <foxml/events.hpp>
#include <string>
#include <thread>
#include <vector>

#include "../common/bench_support.hpp"

namespace fe = foxml::events;
namespace fb = foxml::events::bench;
using clock_type = std::chrono::steady_clock;

namespace {

void emit_metrics(fe::training_event_emitter& emitter, std::size_t i) {
  const double x = static_cast<double>(i);
  emitter.emit_metrics(static_cast<std::int64_t>(i), {{"loss", 1 / (x + 1)}, {"accuracy", x * 1e-6}, {"lr", 1e-3}, {"grad_norm", 0.5}});
}

// Per-call cost at a training loop's pace (bursts with pauses, so the worker keeps up).
fb::percentiles emit_cost(int threads, std::size_t calls) {
  fe::emitter_options options;
  options.queue_capacity = 1 << 16;
  fe::training_event_emitter emitter("scaling", std::make_unique<fe::file_sink>(fb::scratch_file("scaling-cost.jsonl")), options);
  std::vector<std::vector<double>> parts(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] { parts[t] = fb::time_calls([&](std::size_t i) { emit_metrics(emitter, i); }, calls); });
  }
  for (auto& th : pool) th.join();
  emitter.close();
  std::vector<double> all;
  for (auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  return fb::summarize(all);
}

struct flat_out {
  double events_per_s = 0;
  std::uint64_t written = 0, dropped = 0;
};

// Every thread emits as fast as it can under overflow_policy::block: what one worker sustains.
flat_out worker_throughput(int threads, std::size_t per_thread) {
  fe::emitter_options options;
  options.queue_capacity = 1 << 16;
  options.overflow = fe::overflow_policy::block;
  options.block_timeout = std::chrono::seconds(10);
  fe::training_event_emitter emitter("scaling", std::make_unique<fe::file_sink>(fb::scratch_file("scaling-flat.jsonl")), options);
  const auto start = clock_type::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (std::size_t i = 0; i < per_thread; ++i) emit_metrics(emitter, i);
    });
  }
  for (auto& th : pool) th.join();
  const auto report = emitter.close(std::chrono::seconds(60));
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  const auto stats = emitter.stats();
  (void)report;
  return {static_cast<double>(threads * per_thread) / seconds, stats.written, stats.dropped()};
}

// `processes` children, each with its own emitter, append `per_process` events to one file.
// Returns events/s from the first fork to the last exit, and the whole lines found.
std::pair<double, std::size_t> file_appenders(int processes, std::size_t per_process, const std::string& path) {
  const auto start = clock_type::now();
  std::vector<pid_t> children;
  for (int p = 0; p < processes; ++p) {
    const pid_t pid = fork();
    if (pid == 0) {
      int code = 0;
      {
        fe::emitter_options options;
        options.queue_capacity = 1 << 14;
        options.overflow = fe::overflow_policy::block;
        options.block_timeout = std::chrono::seconds(10);
        fe::training_event_emitter emitter("scaling-" + std::to_string(p), std::make_unique<fe::file_sink>(path), options);
        for (std::size_t i = 0; i < per_process; ++i) emit_metrics(emitter, i);
        const auto report = emitter.close(std::chrono::seconds(60));
        code = report.ok() && report.dropped == 0 ? 0 : 1;
      }
      std::_Exit(code);
    }
    children.push_back(pid);
  }
  int failed = 0;
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
  }
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  if (failed != 0) std::fprintf(stderr, "%d appender process(es) reported drops or failed\n", failed);
  std::ifstream in(path);
  std::size_t whole = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.size() > 1 && line.front() == '{' && line.back() == '}') ++whole;
  }
  return {static_cast<double>(processes * per_process) / seconds, whole};
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t per_thread = argc > 1 ? std::stoul(argv[1]) : 200'000;
  const std::size_t per_process = argc > 2 ? std::stoul(argv[2]) : 200'000;
  const int thread_counts[] = {1, 2, 4, 8};

  std::printf("Emit cost per call vs producer threads, ns (emit_metrics, 4 scalars; %zu calls per thread in bursts "
              "of 1000 with 2 ms pauses; %u cores)\n\n",
              per_thread / 4, std::thread::hardware_concurrency());
  std::printf("| %-8s | %7s | %7s | %7s | %7s |\n|%s|\n", "threads", "p50", "p99", "p99.9", "mean", std::string(50, '-').c_str());
  for (int threads : thread_counts) {
    const auto p = emit_cost(threads, per_thread / 4);
    std::printf("| %-8d | %7.1f | %7.1f | %7.1f | %7.1f |\n", threads, p.p50, p.p99, p.p999, p.mean);
  }

  std::printf("\nWorker throughput vs producer threads (all emitting flat out, overflow_policy::block, one JSONL file; "
              "%zu events in all)\n\n", per_thread * 4);
  std::printf("| %-8s | %12s | %12s | %8s |\n|%s|\n", "threads", "events/s", "written", "dropped", std::string(51, '-').c_str());
  for (int threads : thread_counts) {
    const auto r = worker_throughput(threads, per_thread * 4 / threads);
    std::printf("| %-8d | %12.0f | %12llu | %8llu |\n", threads, r.events_per_s, static_cast<unsigned long long>(r.written),
                static_cast<unsigned long long>(r.dropped));
  }

  std::printf("\nFile throughput vs processes appending to one file (each its own emitter, %zu events in all; whole lines "
              "counted after)\n\n", per_process * 4);
  std::printf("| %-10s | %12s | %12s | %12s |\n|%s|\n", "processes", "events/s", "lines", "whole lines", std::string(57, '-').c_str());
  for (int processes : {1, 4, 16}) {
    const std::string path = fb::scratch_file("scaling-append.jsonl");
    const std::size_t each = per_process * 4 / processes;
    const auto [rate, whole] = file_appenders(processes, each, path);
    std::printf("| %-10d | %12.0f | %12zu | %12zu |\n", processes, rate, processes * each, whole);
  }
  return 0;
}
