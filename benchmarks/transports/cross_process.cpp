// Transports as users run them: the reader is ANOTHER process (this binary run again with
// --reader), decoding every line (decode_line) and tracking it (run_tracker), not just counting.
// Two tables:
//  - throughput: one emitter thread floods `events` log events of ~100 B / 1 KB / 10 KB lines
//    (overflow blocks, so nothing may be dropped) through the Unix socket (acks), ZeroMQ PUB->SUB
//    over ipc and over tcp loopback, and a followed file; events/s is measured from the first emit
//    to the reader decoding the last line, and the reader's count must equal what was emitted;
//  - latency: 10k events/s paced for one second, default emitter options, emit call -> reader's
//    decode, p50/p99/max (CLOCK_MONOTONIC is one clock for both processes).
// Usage: cross_process [events] [line sizes, e.g. 100,1000,10000] [only rows whose name holds this;
//        it also skips the latency table, for `perf stat` of one transport]
//        cross_process --reader TRANSPORT ENDPOINT EVENTS TIMES_FILE   (the child; not for users)
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <foxml/events.hpp>
#include <foxml/events/reader/file_source.hpp>
#include <foxml/events/reader/run_tracker.hpp>
#include <foxml/events/reader/socket_source.hpp>
#include <foxml/events/reader/zmq_source.hpp>
#include <foxml/events/sink_uri.hpp>
#include <foxml/events/zmq_sink.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fe = foxml::events;
namespace fr = foxml::events::reader;
using clock_type = std::chrono::steady_clock;

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count();
}

// The measured events are `info` logs with their index in the message; `debug` logs are the
// warm-up that tells the parent the reader is connected and subscribed.
constexpr const char* measured_level = "info";

std::unique_ptr<fr::source> open_source(const std::string& transport, const std::string& endpoint) {
  if (transport == "unix") return std::make_unique<fr::socket_source>(endpoint);
  if (transport == "file") {
    fr::file_source_options options;
    options.follow = true;
    return std::make_unique<fr::file_source>(endpoint, options);
  }
  return std::make_unique<fr::zmq_source>(endpoint);  // ipc:// or tcp://
}

// The child: reads until it has decoded `events` measured lines (or 60 s pass), then writes one
// line "<decoded> <errors> <last_ns>" and, for latency runs, each event's receive time to
// `times_file`. Its stdout is the pipe the parent waits on; the first byte says "ready".
int reader_main(const std::string& transport, const std::string& endpoint, std::size_t events,
                const std::string& times_file) {
  auto source = open_source(transport, endpoint);
  fr::run_tracker tracker;
  std::vector<std::int64_t> received(times_file.empty() ? 0 : events, 0);
  std::size_t decoded = 0, errors = 0, bytes = 0;
  bool ready = false;
  std::int64_t last_ns = 0;
  const auto deadline = clock_type::now() + std::chrono::seconds(60);
  while (decoded < events && clock_type::now() < deadline) {
    const std::size_t decoded_before = decoded;
    source->poll(std::chrono::milliseconds(50), [&](const fr::raw_line& line) {
      auto result = fe::decode_line(line.text);
      if (!result) {
        ++errors;
        return;
      }
      tracker.apply(*result.value, line.text);
      const auto& ev = *result.value;
      if (!ev.level || *ev.level != measured_level) {
        if (!ready) {
          ready = true;
          (void)!write(1, "r", 1);
        }
        return;
      }
      const std::size_t i = std::strtoull(ev.message->c_str(), nullptr, 10);
      if (i < received.size()) received[i] = now_ns();  // latency runs only: a clock read per line
      ++decoded;
      bytes += line.text.size() + 1;
    });
    // Throughput runs: the time once per poll (after the lines it handed over), not per line.
    if (decoded != decoded_before) last_ns = now_ns();
  }
  if (!times_file.empty()) {
    std::ofstream out(times_file);
    for (auto t : received) out << t << '\n';
  }
  const std::string summary = std::to_string(decoded) + " " + std::to_string(errors) + " " + std::to_string(last_ns) + " " +
                              std::to_string(bytes) + "\n";
  (void)!write(1, summary.data(), summary.size());
  return 0;
}

struct child {
  pid_t pid = -1;
  int out = -1;
};

child spawn_reader(const std::string& transport, const std::string& endpoint, std::size_t events,
                   const std::string& times_file) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe");
  child c;
  c.pid = fork();
  if (c.pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    const std::string n = std::to_string(events);
    execl("/proc/self/exe", "cross_process", "--reader", transport.c_str(), endpoint.c_str(), n.c_str(),
          times_file.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  c.out = fds[0];
  return c;
}

bool readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) > 0;
}

// Waits for the reader's "ready": for ZeroMQ, warm-up events are sent until one arrives (the
// subscription has crossed), so none of the measured ones goes to a PUB without its SUB.
bool await_ready(child& c, fe::training_event_emitter& emitter) {
  const auto deadline = clock_type::now() + std::chrono::seconds(20);
  while (clock_type::now() < deadline) {
    if (readable(c.out, 10)) {
      char r;
      return read(c.out, &r, 1) == 1 && r == 'r';
    }
    emitter.emit_log("debug", "warm-up");
  }
  return false;
}

struct summary {
  std::size_t decoded = 0, errors = 0, bytes = 0;
  std::int64_t last_ns = 0;
  bool ok = false;
};

summary finish(child& c) {
  summary s;
  std::string text;
  char buffer[256];
  ssize_t n;
  while ((n = read(c.out, buffer, sizeof buffer)) > 0) text.append(buffer, static_cast<std::size_t>(n));
  close(c.out);
  int status = 0;
  waitpid(c.pid, &status, 0);
  std::istringstream in(text);
  s.ok = static_cast<bool>(in >> s.decoded >> s.errors >> s.last_ns >> s.bytes);
  return s;
}

struct transport_case {
  const char* name;
  std::string transport;  // the reader's kind
  std::string sink_uri, endpoint;
};

std::vector<transport_case> cases(const std::filesystem::path& dir) {
  const int port = 20000 + static_cast<int>(getpid() % 20000);
  return {
      {"Unix socket (acks)", "unix", "unix://" + (dir / "b.sock").string(), (dir / "b.sock").string()},
      {"ZeroMQ PUB->SUB ipc", "zmq", "zmq+ipc://" + (dir / "b.ipc").string(), "ipc://" + (dir / "b.ipc").string()},
      {"ZeroMQ PUB->SUB tcp loopback", "zmq", "zmq+tcp://127.0.0.1:" + std::to_string(port) + "?bind=1",
       "tcp://127.0.0.1:" + std::to_string(port)},
      {"followed file (inotify)", "file", "file://" + (dir / "b.jsonl").string(), (dir / "b.jsonl").string()},
  };
}

// A message that makes the whole line about `line_bytes` long (the header is ~190 B, so 100 B
// lines come out at the smallest a log line can be; the table prints the real average).
std::string filler(std::size_t line_bytes) {
  constexpr std::size_t header = 190;
  return std::string(line_bytes > header ? line_bytes - header : 0, 'x');
}

std::string size_label(std::size_t line_bytes) {
  return line_bytes >= 1000 ? std::to_string(line_bytes / 1000) + " KB" : std::to_string(line_bytes) + " B";
}

void throughput_row(const transport_case& tc, std::size_t events, std::size_t line_bytes) {
  std::filesystem::remove(tc.endpoint);
  auto sink = fe::make_sink(tc.sink_uri);  // a binding PUB exists before its SUB connects
  child c = spawn_reader(tc.transport, tc.endpoint, events, "");
  fe::emitter_options options;
  options.queue_capacity = 1 << 16;
  options.overflow = fe::overflow_policy::block;
  options.block_timeout = std::chrono::seconds(30);
  fe::emitter_stats stats;
  std::int64_t start_ns = 0;
  const std::string pad = filler(line_bytes);
  std::vector<std::string> messages(1024);
  for (std::size_t i = 0; i < messages.size(); ++i) messages[i] = std::to_string(i) + " " + pad;
  bool ready;
  {
    fe::training_event_emitter emitter("bench-xproc", std::move(sink), options);
    ready = await_ready(c, emitter);
    start_ns = now_ns();
    std::string message;
    for (std::size_t i = 0; i < events && ready; ++i) {
      message.assign(std::to_string(i)).append(" ").append(pad);
      emitter.emit_log(measured_level, message);
    }
    emitter.close(std::chrono::seconds(30));
    stats = emitter.stats();
  }
  const summary s = finish(c);
  const double seconds = s.last_ns > start_ns ? static_cast<double>(s.last_ns - start_ns) / 1e9 : 0.0;
  const double bytes = static_cast<double>(s.bytes) / std::max<double>(1.0, static_cast<double>(s.decoded));
  const std::string row = std::string(tc.name) + ", " + size_label(line_bytes);
  std::printf("| %-36s | %7.0f | %12.0f | %9.1f | %9zu/%zu | %7llu | %s\n", row.c_str(), bytes,
              seconds > 0 ? static_cast<double>(s.decoded) / seconds : 0.0,
              seconds > 0 ? static_cast<double>(s.decoded) * bytes / seconds / 1e6 : 0.0, s.decoded, events,
              static_cast<unsigned long long>(stats.dropped()),
              !ready ? "reader never ready |" : s.decoded == events && s.errors == 0 ? "lossless |" : "LOST |");
}

void latency_row(const transport_case& tc, std::size_t events, const std::filesystem::path& dir) {
  std::filesystem::remove(tc.endpoint);
  const auto times_file = (dir / "times.txt").string();
  auto sink = fe::make_sink(tc.sink_uri);
  child c = spawn_reader(tc.transport, tc.endpoint, events, times_file);
  std::vector<std::int64_t> sent(events, 0);
  bool ready;
  {
    fe::training_event_emitter emitter("bench-xproc-latency", std::move(sink));
    ready = await_ready(c, emitter);
    const auto start = clock_type::now();
    for (std::size_t i = 0; i < events && ready; ++i) {
      // 10k events/s: each emit at its slot, spinning the last stretch (sleep is too coarse).
      const auto slot = start + std::chrono::microseconds(100 * i);
      while (clock_type::now() < slot) {
        if (slot - clock_type::now() > std::chrono::microseconds(200)) std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      sent[i] = now_ns();
      emitter.emit_log(measured_level, std::to_string(i));
    }
    emitter.close(std::chrono::seconds(10));
  }
  const summary s = finish(c);
  std::vector<double> us;
  std::ifstream in(times_file);
  std::int64_t t;
  for (std::size_t i = 0; i < events && (in >> t); ++i) {
    if (t != 0) us.push_back(static_cast<double>(t - sent[i]) / 1e3);
  }
  std::sort(us.begin(), us.end());
  auto at = [&](double q) { return us.empty() ? 0.0 : us[std::min(us.size() - 1, static_cast<std::size_t>(q * us.size()))]; };
  std::printf("| %-30s | %8.0f | %8.0f | %8.0f | %9zu/%zu |\n", tc.name, at(0.5), at(0.99), us.empty() ? 0.0 : us.back(),
              us.size(), events);
  (void)s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 6 && std::strcmp(argv[1], "--reader") == 0) {
    fe::enable_zmq_sink_uris();
    return reader_main(argv[2], argv[3], std::stoul(argv[4]), argv[5]);
  }
  const std::size_t events = argc > 1 ? std::stoul(argv[1]) : 500'000;
  std::vector<std::size_t> sizes{100, 1000, 10000};
  if (argc > 2) {
    sizes.clear();
    std::istringstream list(argv[2]);
    for (std::string item; std::getline(list, item, ',');) sizes.push_back(std::stoul(item));
  }
  const std::string only = argc > 3 ? argv[3] : "";
  fe::enable_zmq_sink_uris();
  const auto dir = std::filesystem::temp_directory_path() / ("foxml-bench-xproc-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);

  std::printf("Cross-process transports: one emitter thread, the reader in another process decoding and tracking\n");
  std::printf("every line; overflow blocks, so the run is lossless when every line is decoded.\n\n");
  std::printf("| %-36s | %7s | %12s | %9s | %13s | %7s | %s\n|%s|\n", "transport, line size", "B/line", "events/s",
              "MB/s", "decoded", "dropped", "result |", std::string(118, '-').c_str());
  for (const auto line_bytes : sizes) {
    // Fewer of the big lines: the same volume order, and a 10 KB run stays seconds.
    const std::size_t n = line_bytes >= 10000 ? std::max<std::size_t>(events / 20, 1000)
                          : line_bytes >= 1000 ? std::max<std::size_t>(events / 4, 1000)
                                               : events;
    for (const auto& tc : cases(dir)) {
      if (std::string(tc.name).find(only) != std::string::npos) throughput_row(tc, n, line_bytes);
    }
  }
  if (!only.empty()) {
    std::filesystem::remove_all(dir);
    return 0;
  }
  const std::size_t latency_events = std::min<std::size_t>(events, 10000);
  std::printf("\nEmit -> reader (other process) latency at 10k events/s, microseconds, default emitter options\n\n");
  std::printf("| %-30s | %8s | %8s | %8s | %15s |\n|%s|\n", "transport", "p50", "p99", "max", "received",
              std::string(86, '-').c_str());
  for (const auto& tc : cases(dir)) latency_row(tc, latency_events, dir);
  std::filesystem::remove_all(dir);
  return 0;
}
