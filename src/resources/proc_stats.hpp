#pragma once
// What /proc and the kernel's clocks tell about this process and this machine (Linux).

#include <cstdint>

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

}  // namespace foxml::events::detail
