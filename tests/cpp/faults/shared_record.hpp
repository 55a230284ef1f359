#pragma once
// What the fault trainer accepted, shared through a mapped file with the test that stops it.

#include <time.h>

#include <atomic>
#include <cstdint>

namespace foxml::events::test {

inline std::uint64_t monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

struct shared_record {
  static constexpr std::size_t ring_size = 1u << 16;
  struct entry {
    std::atomic<std::uint64_t> index;  // the trainer's event number, +1 (0: empty)
    std::atomic<std::uint64_t> ns;     // CLOCK_MONOTONIC when emit() returned true
  };
  std::atomic<std::uint64_t> accepted{0};  // events accepted so far
  std::atomic<int> handler_signal{0};      // the signal the trainer's own handler saw
  std::atomic<int> ready{0};               // set after 100 events
  std::atomic<int> child_pid{0};           // with --fork-child: the child that does the emitting
  entry ring[ring_size];

  void accept(std::uint64_t index) noexcept {
    const std::uint64_t n = accepted.load(std::memory_order_relaxed);
    entry& e = ring[n % ring_size];
    e.ns.store(monotonic_ns(), std::memory_order_relaxed);
    e.index.store(index + 1, std::memory_order_relaxed);
    accepted.store(n + 1, std::memory_order_release);
  }
};

}  // namespace foxml::events::test
