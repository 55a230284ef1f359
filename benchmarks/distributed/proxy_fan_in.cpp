// Fan-in through one events-proxy (issue 12): N emitting processes at R events/s each for S seconds
// into the proxy's XSUB on loopback, one ZeroMQ subscriber on its XPUB. Prints what was sent,
// received and dropped (emitter stats, the proxy's STATISTICS) as figures; the one assertion is
// the accounting: every event sent is received by the subscriber or in an emitter's drop count.
// Usage: proxy_fan_in EVENTS_PROXY [processes=64] [rate=1000] [seconds=10]
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <foxml/events.hpp>
#include <foxml/events/zmq_sink.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

namespace fe = foxml::events;
using clock_type = std::chrono::steady_clock;

namespace {

struct child_report {  // written whole to a pipe (well under PIPE_BUF)
  std::uint64_t sent, written, dropped, pending, queue_full, sink;
};

[[noreturn]] void emit_child(int go_fd, int report_fd, const std::string& endpoint, int index, double rate,
                             double seconds) {
  char go;
  if (read(go_fd, &go, 1) < 0) _exit(2);  // EOF when the parent closes its end: start
  fe::emitter_options options;
  options.rank = index;
  options.world_size = 1 << 16;
  fe::zmq_sink_options zo;
  zo.endpoint = endpoint;
  zo.bind = false;
  // Room for the last lines to leave a loaded machine before the process exits (default 200 ms).
  zo.linger = std::chrono::seconds(5);
  child_report report{};
  {
    fe::training_event_emitter emitter("fan-in", std::make_unique<fe::zmq_sink>(zo), options);
    const auto total = static_cast<std::int64_t>(rate * seconds);
    const auto start = clock_type::now();
    for (std::int64_t i = 0; i < total; ++i) {
      std::this_thread::sleep_until(start + std::chrono::duration_cast<clock_type::duration>(
                                                std::chrono::duration<double>(static_cast<double>(i) / rate)));
      emitter.emit_metrics(i, {{"loss", 1.0 / static_cast<double>(i + 1)}});
    }
    const fe::delivery_report closed = emitter.close(std::chrono::seconds(30));
    const fe::emitter_stats s = emitter.stats();
    report = {s.emitted + s.generated, s.written, s.dropped(), closed.pending, s.dropped_queue_full, s.dropped_sink};
  }
  if (write(report_fd, &report, sizeof(report)) != static_cast<ssize_t>(sizeof(report))) _exit(3);
  _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: proxy_fan_in EVENTS_PROXY [processes=64] [rate=1000] [seconds=10]\n");
    return 2;
  }
  const std::string proxy_program = argv[1];
  const int processes = argc > 2 ? std::atoi(argv[2]) : 64;
  const double rate = argc > 3 ? std::atof(argv[3]) : 1000.0;
  const double seconds = argc > 4 ? std::atof(argv[4]) : 10.0;
  std::mt19937 rng(static_cast<unsigned>(getpid()));
  const int base = 20000 + static_cast<int>(rng() % 10000) * 4;
  const std::string emitters = "tcp://127.0.0.1:" + std::to_string(base);
  const std::string subscribers = "tcp://127.0.0.1:" + std::to_string(base + 2);

  // Children first, before this process has any thread or ZeroMQ context to inherit.
  int go[2], reports[2];
  // Close-on-exec: the proxy must not hold the start pipe open (the children wait for its EOF).
  if (pipe2(go, O_CLOEXEC) != 0 || pipe2(reports, O_CLOEXEC) != 0) return 2;
  std::vector<pid_t> children;
  for (int i = 0; i < processes; ++i) {
    const pid_t pid = fork();
    if (pid == 0) {
      close(go[1]);
      close(reports[0]);
      emit_child(go[0], reports[1], emitters, i, rate, seconds);
    }
    children.push_back(pid);
  }
  close(go[0]);
  close(reports[1]);

  int proxy_err[2];
  if (pipe(proxy_err) != 0) return 2;
  const pid_t proxy = fork();
  if (proxy == 0) {
    dup2(proxy_err[1], 2);
    execl(proxy_program.c_str(), proxy_program.c_str(), "--emitters", emitters.c_str(), "--subscribers",
          subscribers.c_str(), "--stats-interval", "0", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(proxy_err[1]);
  FILE* proxy_log = fdopen(proxy_err[0], "r");
  char line[8192];
  if (fgets(line, sizeof(line), proxy_log) == nullptr || std::string(line).find("emitters") == std::string::npos) {
    std::fprintf(stderr, "events-proxy did not start: %s\n", line);
    return 2;
  }

  zmq::context_t ctx;
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::rcvhwm, 100000);
  sub.set(zmq::sockopt::subscribe, "");
  sub.connect(subscribers);
  std::atomic<std::uint64_t> received{0};
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    sub.set(zmq::sockopt::rcvtimeo, 100);
    zmq::message_t part;
    while (!stop.load(std::memory_order_relaxed)) {
      if (!sub.recv(part)) continue;
      if (!part.more()) received.fetch_add(1, std::memory_order_relaxed);
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the subscription reaches the proxy

  const auto start = clock_type::now();
  close(go[1]);  // every child starts now
  child_report total{};
  for (int i = 0; i < processes; ++i) {
    child_report r{};
    if (read(reports[0], &r, sizeof(r)) != static_cast<ssize_t>(sizeof(r))) {
      std::fprintf(stderr, "a child sent no report\n");
      return 2;
    }
    total.sent += r.sent;
    total.written += r.written;
    total.dropped += r.dropped;
    total.pending += r.pending;
    total.queue_full += r.queue_full;
    total.sink += r.sink;
  }
  for (const pid_t pid : children) waitpid(pid, nullptr, 0);
  const double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
  // Bounded wait for what is still in flight through the proxy.
  const auto deadline = clock_type::now() + std::chrono::seconds(30);
  while (received.load() < total.written && clock_type::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(proxy, SIGUSR1);
  std::string proxy_stats = fgets(line, sizeof(line), proxy_log) ? line : "(none)\n";
  kill(proxy, SIGTERM);
  waitpid(proxy, nullptr, 0);
  stop = true;
  consumer.join();

  const std::uint64_t got = received.load();
  std::printf("proxy fan-in: %d processes x %.0f events/s x %.0f s through one events-proxy, one subscriber\n",
              processes, rate, seconds);
  std::printf("  sent (emitted + generated)   %llu  (%.0f events/s over %.1f s)\n",
              static_cast<unsigned long long>(total.sent), static_cast<double>(total.sent) / elapsed, elapsed);
  std::printf("  written by the sinks         %llu\n", static_cast<unsigned long long>(total.written));
  std::printf("  received by the subscriber   %llu  (received/sent %.6f)\n", static_cast<unsigned long long>(got),
              total.sent ? static_cast<double>(got) / static_cast<double>(total.sent) : 0.0);
  std::printf("  dropped by emitters          %llu  (queue full %llu, refused by the sink %llu)\n",
              static_cast<unsigned long long>(total.dropped), static_cast<unsigned long long>(total.queue_full),
              static_cast<unsigned long long>(total.sink));
  std::printf("  pending at close             %llu\n", static_cast<unsigned long long>(total.pending));
  std::printf("  proxy statistics             %s", proxy_stats.c_str());
  const bool accounted = got + total.dropped == total.sent && total.pending == 0;
  std::printf("  every event received or counted as dropped: %s\n", accounted ? "yes" : "NO");
  return accounted ? 0 : 1;
}
