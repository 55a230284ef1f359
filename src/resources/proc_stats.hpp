#pragma once
// What /proc and the kernel's clocks tell about this process and this machine (Linux).

#include <cstdint>
#include <optional>
#include <sys/types.h>

namespace foxml::events::detail {

// CPU time of every thread of this process, user + system, in nanoseconds (the sum of
// /proc/self/stat's utime and stime, at nanosecond rather than clock-tick resolution).
std::int64_t process_cpu_ns() noexcept;

// Resident set size of this process in bytes; 0 when /proc/self/statm cannot be read.
std::int64_t resident_bytes() noexcept;

struct system_memory {
  std::int64_t used_bytes = 0;   // MemTotal - MemAvailable (see resources.hpp)
  std::int64_t total_bytes = 0;  // MemTotal
};
// Reads /proc/meminfo; zeros when it cannot be read.
system_memory read_system_memory() noexcept;

// When process `pid` started, in unix seconds (/proc/<pid>/stat's starttime, in clock ticks
// since boot, plus /proc/stat's btime): with the pid, it names a process even after its pid is
// reused. Empty when the process is gone, is a zombie (dead, not yet reaped) or /proc cannot be
// read. Good to about a clock tick, plus any drift of btime (it is rounded to seconds and moves
// with NTP adjustments): compare two readings with a tolerance of a few seconds.
std::optional<double> process_start_time(pid_t pid) noexcept;

// The same for the calling process.
std::optional<double> own_start_time() noexcept;

}  // namespace foxml::events::detail
