// Memory under a stalled consumer: a process emits 10M events while its sink never returns from
// write(). The queue fills, the rest is dropped and counted, and peak RSS stays at the bound.
// Usage: stalled_consumer [events]
#include <sys/resource.h>

#include <condition_variable>
#include <cstdio>
#include <foxml/events.hpp>
#include <mutex>

namespace fe = foxml::events;

namespace {

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// A consumer that stopped reading: the first write never returns until the end of the run.
class stalled_sink final : public fe::sink {
 public:
  std::size_t write(const fe::line_batch& batch) noexcept override {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return released_; });
    return batch.size();
  }
  std::string describe() const override { return "stalled://"; }
  static void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  static inline std::mutex mutex_;
  static inline std::condition_variable cv_;
  static inline bool released_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  const std::size_t events = argc > 1 ? std::stoul(argv[1]) : 10'000'000;
  const long before = peak_rss_kib();
  fe::emitter_options options;  // defaults: 16384 slots of 256 B, 64 MiB spill budget
  fe::training_event_emitter emitter("bench-mem", std::make_unique<stalled_sink>(), options);
  const std::string message(400, 'm');  // larger than a slot: exercises the spill budget too
  for (std::size_t i = 0; i < events; ++i) {
    if (i % 2 == 0) {
      emitter.emit_metrics(static_cast<std::int64_t>(i), {{"loss", 0.5}, {"accuracy", 0.9}, {"lr", 1e-3}, {"grad_norm", 1.0}});
    } else {
      emitter.emit_log("info", message);
    }
  }
  const long after = peak_rss_kib();
  const auto stats = emitter.stats();
  std::printf("%zu events emitted with the consumer stalled\n", events);
  std::printf("peak RSS: %.1f MiB before the emitter, %.1f MiB after (growth %.1f MiB)\n", before / 1024.0,
              after / 1024.0, (after - before) / 1024.0);
  std::printf("bound: queue %zu slots x 256 B = %.1f MiB, spill budget %.1f MiB\n", options.queue_capacity,
              options.queue_capacity * 256 / 1048576.0, options.max_spill_bytes / 1048576.0);
  std::printf("dropped (counted): %llu, queued: %llu\n", static_cast<unsigned long long>(stats.dropped_queue_full),
              static_cast<unsigned long long>(events - stats.dropped_queue_full));
  stalled_sink::release();
  emitter.close();
  return 0;
}
