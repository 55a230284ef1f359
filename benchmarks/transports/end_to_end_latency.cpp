// Emit -> reader latency: one event at a time (a training loop's pace, not a flood), from the emit
// call to the reader's poll returning it, over the Unix socket and over a followed JSONL file.
// Both ends run in this process, so one steady clock times them.
// Usage: end_to_end_latency [events]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <foxml/events.hpp>
#include <foxml/events/reader/file_source.hpp>
#include <foxml/events/reader/socket_source.hpp>
#include <foxml/events/sink_uri.hpp>
#include <mutex>
#include <thread>
#include <unistd.h>
#include <vector>

namespace fe = foxml::events;
namespace fr = foxml::events::reader;
using clock_type = std::chrono::steady_clock;

namespace {

std::vector<double> measure(fr::source& reader, std::unique_ptr<fe::sink> destination, std::size_t events) {
  std::mutex mutex;
  std::vector<clock_type::time_point> sent(events), received(events);
  std::atomic<std::size_t> got{0};
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    while (!stop.load()) {
      reader.poll(std::chrono::milliseconds(20), [&](const fr::raw_line& line) {
        const auto now = clock_type::now();
        const auto decoded = fe::decode_line(line.text);
        if (!decoded || !decoded.value->step) return;
        const auto i = static_cast<std::size_t>(*decoded.value->step);
        if (i < events) received[i] = now;
        got.fetch_add(1);
      });
    }
  });
  fe::training_event_emitter emitter("bench-latency", std::move(destination));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (std::size_t i = 0; i < events; ++i) {
    sent[i] = clock_type::now();
    emitter.emit_metrics(static_cast<std::int64_t>(i), {{"loss", 0.5}});
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a fast training step
  }
  const auto deadline = clock_type::now() + std::chrono::seconds(10);
  while (got.load() < events && clock_type::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  stop = true;
  reader.wake();
  consumer.join();
  std::vector<double> us;
  for (std::size_t i = 0; i < events; ++i) {
    if (received[i] != clock_type::time_point{}) us.push_back(std::chrono::duration<double, std::micro>(received[i] - sent[i]).count());
  }
  std::sort(us.begin(), us.end());
  return us;
}

void print(const char* name, const std::vector<double>& us, std::size_t events) {
  auto at = [&](double q) { return us.empty() ? 0.0 : us[std::min(us.size() - 1, static_cast<std::size_t>(q * us.size()))]; };
  std::printf("| %-34s | %8.0f | %8.0f | %8.0f | %5zu/%zu |\n", name, at(0.5), at(0.99), us.empty() ? 0.0 : us.back(), us.size(), events);
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t events = argc > 1 ? std::stoul(argv[1]) : 2000;
  const auto dir = std::filesystem::temp_directory_path() / ("foxml-bench-lat-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::printf("Emit -> reader latency, microseconds (%zu events, one every 2 ms, default emitter options)\n\n", events);
  std::printf("| %-34s | %8s | %8s | %8s | %9s |\n|%s|\n", "path", "p50", "p99", "max", "received", std::string(82, '-').c_str());
  {
    const auto path = (dir / "lat.sock").string();
    fr::socket_source reader(path);
    print("Unix socket -> socket_source", measure(reader, fe::make_sink("unix://" + path), events), events);
  }
  {
    const auto path = (dir / "lat.jsonl").string();
    fr::file_source_options options;
    options.follow = true;
    fr::file_source reader(path, options);
    print("JSONL file -> file_source (inotify)", measure(reader, std::make_unique<fe::file_sink>(path), events), events);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
