#pragma once
// Time stamping for the hot path. clock_gettime costs ~20 ns through the vDSO, as much as the
// whole emit budget, so where the CPU has an invariant TSC the producer stores raw TSC ticks and
// the worker converts them to wall time from an anchor it refreshes every batch.

#include <cstdint>
#include <ctime>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define FOXML_EVENTS_HAS_TSC 1
#else
#define FOXML_EVENTS_HAS_TSC 0
#endif

namespace foxml::events::detail {

// True when the TSC runs at a constant rate across power states and cores and its rate was
// measured (once per process, ~2 ms on first use).
bool tsc_usable() noexcept;

inline std::uint64_t realtime_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

inline std::uint64_t read_ticks(bool use_tsc) noexcept {
#if FOXML_EVENTS_HAS_TSC
  if (use_tsc) return __rdtsc();
#endif
  return realtime_ns();
}

// Converts ticks to Unix nanoseconds. Used by one worker thread; not thread-safe.
class tick_converter {
 public:
  explicit tick_converter(bool use_tsc) noexcept;
  // Takes a fresh (ticks, wall time) anchor; call once per batch so conversions stay close to it.
  void refresh() noexcept;
  std::int64_t to_unix_ns(std::uint64_t ticks) const noexcept;

 private:
  bool use_tsc_;
  double ns_per_tick_ = 1.0;
  std::uint64_t anchor_ticks_ = 0;
  std::int64_t anchor_unix_ns_ = 0;
};

}  // namespace foxml::events::detail
