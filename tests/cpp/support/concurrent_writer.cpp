// Writes one event file from many processes and threads at once, as a multi-process trainer
// does: PROCS forked children, each with its own emitter on `file://FILE` and THREADS threads
// emitting EVENTS progress events each. Prints one line per child: `pid dropped`, the drops its
// emitter counted in stats() (what its `dropped` events in the file must add up to).
// Usage: concurrent_writer FILE PROCS THREADS EVENTS drop|block QUEUE_CAPACITY
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "foxml/events.hpp"
#include "foxml/events/sink_uri.hpp"

namespace fe = foxml::events;

namespace {

int run_child(const std::string& file, int threads, int events, bool block, std::size_t queue) {
  fe::emitter_options options;
  options.queue_capacity = queue;
  options.overflow = block ? fe::overflow_policy::block : fe::overflow_policy::drop;
  options.block_timeout = std::chrono::seconds(10);
  fe::training_event_emitter emitter("concurrency", fe::make_sink("file://" + file), options);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < events; ++i) emitter.emit_progress("thread" + std::to_string(t), i * 100.0 / events);
    });
  }
  for (auto& w : workers) w.join();
  if (!emitter.close(std::chrono::seconds(60)).ok()) return 3;
  const fe::emitter_stats s = emitter.stats();
  const std::uint64_t dropped = s.dropped_queue_full + s.dropped_sink + s.dropped_oversize + s.dropped_closed;
  std::printf("%d %llu\n", static_cast<int>(::getpid()), static_cast<unsigned long long>(dropped));
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: concurrent_writer FILE PROCS THREADS EVENTS drop|block QUEUE_CAPACITY\n");
    return 2;
  }
  const std::string file = argv[1];
  const int procs = std::atoi(argv[2]), threads = std::atoi(argv[3]), events = std::atoi(argv[4]);
  const bool block = std::string(argv[5]) == "block";
  const auto queue = static_cast<std::size_t>(std::atoll(argv[6]));
  std::vector<pid_t> children;
  for (int p = 0; p < procs; ++p) {
    const pid_t pid = ::fork();
    if (pid < 0) return 1;
    if (pid == 0) ::_exit(run_child(file, threads, events, block, queue));
    children.push_back(pid);
  }
  int failed = 0;
  for (const pid_t pid : children) {
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
  }
  return failed == 0 ? 0 : 1;
}
