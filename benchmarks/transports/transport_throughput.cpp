// Sustained events/s from one emitter through a transport to a reader in the same process: the
// Unix socket sink to our socket_source (acknowledging), and the ZeroMQ PUB sink to a SUB reader.
// Reported as lines the reader received per second, with the emitter's drop counts.
// Usage: transport_throughput [events]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <foxml/events.hpp>
#include <foxml/events/reader/socket_source.hpp>
#include <foxml/events/reader/zmq_source.hpp>
#include <foxml/events/sink_uri.hpp>
#include <foxml/events/zmq_sink.hpp>
#include <thread>
#include <unistd.h>

namespace fe = foxml::events;
namespace fr = foxml::events::reader;
using clock_type = std::chrono::steady_clock;

namespace {

struct result {
  double received_per_s = 0;
  std::uint64_t received = 0, dropped = 0;
};

// Emits `events` progress events into `sink_uri` while `reader` counts lines on another thread.
result run(fr::source& reader, const std::string& sink_uri, std::size_t events) {
  // The sink exists (a PUB bound, say) before the reader starts waiting, so the settle time below
  // covers connection and subscription.
  auto destination = fe::make_sink(sink_uri);
  std::atomic<std::uint64_t> received{0};
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    while (!stop.load()) reader.poll(std::chrono::milliseconds(20), [&](const fr::raw_line&) { received.fetch_add(1, std::memory_order_relaxed); });
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let a subscriber/connection settle
  fe::emitter_options options;
  options.queue_capacity = 1 << 16;
  options.overflow = fe::overflow_policy::block;
  options.block_timeout = std::chrono::seconds(10);
  const auto start = clock_type::now();
  fe::emitter_stats stats;
  {
    fe::training_event_emitter emitter("bench-run", std::move(destination), options);
    for (std::size_t i = 0; i < events; ++i) {
      fe::progress_update p;
      p.stage = "training";
      p.progress_pct = static_cast<double>(i) * 1e-4;
      p.step = static_cast<std::int64_t>(i);
      emitter.emit_progress(p);
    }
    emitter.close(std::chrono::seconds(30));
    stats = emitter.stats();
  }
  // Wait (bounded) until the reader has everything that was written.
  const auto deadline = clock_type::now() + std::chrono::seconds(30);
  while (received.load() < stats.written && clock_type::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  stop = true;
  reader.wake();
  consumer.join();
  return result{static_cast<double>(received.load()) / seconds, received.load(), stats.dropped()};
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t events = argc > 1 ? std::stoul(argv[1]) : 2'000'000;
  fe::enable_zmq_sink_uris();
  const auto dir = std::filesystem::temp_directory_path() / ("foxml-bench-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);

  std::printf("One emitter thread, %zu progress events, the reader in the same process\n\n", events);
  std::printf("| %-40s | %12s | %10s | %10s |\n|%s|\n", "transport", "received/s", "received", "dropped",
              std::string(83, '-').c_str());
  {
    fr::socket_source reader((dir / "bench.sock").string());
    const auto r = run(reader, "unix://" + (dir / "bench.sock").string(), events);
    std::printf("| %-40s | %12.0f | %10llu | %10llu |\n", "Unix socket -> socket_source (acks)", r.received_per_s,
                static_cast<unsigned long long>(r.received), static_cast<unsigned long long>(r.dropped));
  }
  {
    const std::string endpoint = "ipc://" + (dir / "bench.ipc").string();
    // The PUB binds (the zmq+ipc default); the reader's SUB connects and retries until it is there.
    const auto sink_uri = "zmq+ipc://" + (dir / "bench.ipc").string();
    auto reader = std::make_unique<fr::zmq_source>(endpoint);
    const auto r = run(*reader, sink_uri, events);
    std::printf("| %-40s | %12.0f | %10llu | %10llu |\n", "ZeroMQ PUB (ipc) -> SUB zmq_source", r.received_per_s,
                static_cast<unsigned long long>(r.received), static_cast<unsigned long long>(r.dropped));
  }
  std::filesystem::remove_all(dir);
  return 0;
}
