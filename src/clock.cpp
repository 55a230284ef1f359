#include "foxml/events/detail/clock.hpp"

#include <chrono>
#include <thread>

#if FOXML_EVENTS_HAS_TSC
#include <cpuid.h>
#endif

namespace foxml::events::detail {
namespace {

std::uint64_t monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

// Measures TSC ticks per nanosecond once per process, over a short spin against the monotonic
// clock. 2 ms of spinning gives a rate error near 1e-5: 10 ns of drift per ms between anchors.
double measure_ns_per_tick() noexcept {
#if FOXML_EVENTS_HAS_TSC
  const std::uint64_t t0 = monotonic_ns();
  const std::uint64_t c0 = __rdtsc();
  std::uint64_t t1 = t0;
  while (t1 - t0 < 2'000'000) t1 = monotonic_ns();
  const std::uint64_t c1 = __rdtsc();
  if (c1 <= c0) return 0.0;
  return static_cast<double>(t1 - t0) / static_cast<double>(c1 - c0);
#else
  return 0.0;
#endif
}

double process_ns_per_tick() noexcept {
  static const double rate = measure_ns_per_tick();
  return rate;
}

}  // namespace

bool tsc_usable() noexcept {
#if FOXML_EVENTS_HAS_TSC
  static const bool usable = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(0x80000000u, &eax, &ebx, &ecx, &edx) == 0 || eax < 0x80000007u) return false;
    if (__get_cpuid(0x80000007u, &eax, &ebx, &ecx, &edx) == 0) return false;
    const bool invariant = (edx & (1u << 8)) != 0;  // "Invariant TSC", advanced power management leaf
    return invariant && process_ns_per_tick() > 0.0;
  }();
  return usable;
#else
  return false;
#endif
}

tick_converter::tick_converter(bool use_tsc) noexcept : use_tsc_(use_tsc && tsc_usable()) {
  if (use_tsc_) ns_per_tick_ = process_ns_per_tick();
  refresh();
}

void tick_converter::refresh() noexcept {
  if (!use_tsc_) return;
  anchor_ticks_ = read_ticks(true);
  anchor_unix_ns_ = static_cast<std::int64_t>(realtime_ns());
}

std::int64_t tick_converter::to_unix_ns(std::uint64_t ticks) const noexcept {
  if (!use_tsc_) return static_cast<std::int64_t>(ticks);
  // Signed difference: events are usually captured a little before the anchor was taken.
  const auto delta = static_cast<double>(static_cast<std::int64_t>(ticks - anchor_ticks_));
  return anchor_unix_ns_ + static_cast<std::int64_t>(delta * ns_per_tick_);
}

}  // namespace foxml::events::detail
