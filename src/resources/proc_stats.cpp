#include "proc_stats.hpp"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace foxml::events::detail {
namespace {

// Reads a small /proc file whole into `buf` (NUL-terminated). Opened afresh each time: a
// descriptor kept open would still describe the parent after a fork (/proc/self resolves at open).
std::size_t read_small_file(const char* path, char* buf, std::size_t capacity) noexcept {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  std::size_t size = 0;
  while (size + 1 < capacity) {
    const ssize_t n = ::read(fd, buf + size, capacity - 1 - size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    size += static_cast<std::size_t>(n);
  }
  ::close(fd);
  buf[size] = '\0';
  return size;
}

// The number after `key` (a line start such as "MemTotal:") in meminfo text, in kB; -1 if absent.
long long meminfo_kb(std::string_view text, std::string_view key) noexcept {
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t end = text.find('\n', at);
    const std::string_view line = text.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
    if (line.substr(0, key.size()) == key) {
      // The text is NUL-terminated (read_small_file), so strtoll stops at the end at the latest.
      return std::strtoll(line.data() + key.size(), nullptr, 10);
    }
    if (end == std::string_view::npos) break;
    at = end + 1;
  }
  return -1;
}

// /proc/stat's btime: when the machine booted, in unix seconds; 0 when unknown. Read line by line:
// the lines before it (a line per CPU, the interrupt counts) can run to many KiB.
long long read_boot_time_s() noexcept {
  std::FILE* f = std::fopen("/proc/stat", "re");
  if (f == nullptr) return 0;
  char line[512];
  bool line_start = true;  // a long line comes in several pieces: only a line's first may match
  long long boot = 0;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (line_start && std::strncmp(line, "btime ", 6) == 0) {
      boot = std::strtoll(line + 6, nullptr, 10);
      break;
    }
    line_start = std::strchr(line, '\n') != nullptr;
  }
  std::fclose(f);
  return boot;
}

long long boot_time_s() noexcept {
  static const long long boot = read_boot_time_s();  // fixed while the machine is up
  return boot;
}

std::optional<double> start_time_from(const char* stat_path) noexcept {
  char buf[1024];
  const std::size_t size = read_small_file(stat_path, buf, sizeof(buf));
  if (size == 0) return std::nullopt;
  // "pid (comm) state ppid ... starttime(22) ...": comm may hold spaces and parentheses, so the
  // fields are counted from the last ')'.
  const std::string_view text(buf, size);
  const std::size_t close = text.rfind(')');
  if (close == std::string_view::npos || close + 2 >= size) return std::nullopt;
  const char state = buf[close + 2];
  if (state == 'Z' || state == 'X') return std::nullopt;  // dead: only its exit status is left
  const char* p = buf + close + 2;  // field 3, state
  for (int field = 3; field < 22; ++field) {
    p = std::strchr(p, ' ');
    if (p == nullptr) return std::nullopt;
    ++p;
  }
  char* end = nullptr;
  const unsigned long long ticks = std::strtoull(p, &end, 10);
  if (end == p) return std::nullopt;
  const long hz = ::sysconf(_SC_CLK_TCK);
  const long long boot = boot_time_s();
  if (hz <= 0 || boot <= 0) return std::nullopt;
  return static_cast<double>(boot) + static_cast<double>(ticks) / static_cast<double>(hz);
}

}  // namespace

std::optional<double> process_start_time(pid_t pid) noexcept {
  if (pid <= 0) return std::nullopt;
  char path[48];
  std::snprintf(path, sizeof(path), "/proc/%lld/stat", static_cast<long long>(pid));
  return start_time_from(path);
}

std::optional<double> own_start_time() noexcept { return start_time_from("/proc/self/stat"); }

std::int64_t process_cpu_ns() noexcept {
  timespec ts{};
  if (::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0;
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t resident_bytes() noexcept {
  char buf[256];
  if (read_small_file("/proc/self/statm", buf, sizeof(buf)) == 0) return 0;
  // "size resident shared text lib data dt", in pages.
  char* end = nullptr;
  std::strtoll(buf, &end, 10);
  const long long pages = std::strtoll(end, nullptr, 10);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page_size > 0 ? static_cast<std::int64_t>(pages) * page_size : 0;
}

system_memory read_system_memory() noexcept {
  char buf[8192];  // /proc/meminfo is about 1.5 KiB
  const std::size_t size = read_small_file("/proc/meminfo", buf, sizeof(buf));
  system_memory m;
  if (size == 0) return m;
  const std::string_view text(buf, size);
  const long long total = meminfo_kb(text, "MemTotal:");
  if (total <= 0) return m;
  long long available = meminfo_kb(text, "MemAvailable:");
  if (available < 0) {
    // Before Linux 3.14: the estimate MemAvailable later replaced.
    available = 0;
    for (std::string_view key : {"MemFree:", "Buffers:", "Cached:"}) {
      const long long kb = meminfo_kb(text, key);
      if (kb > 0) available += kb;
    }
  }
  if (available > total) available = total;
  m.total_bytes = static_cast<std::int64_t>(total) * 1024;
  m.used_bytes = static_cast<std::int64_t>(total - available) * 1024;
  return m;
}

}  // namespace foxml::events::detail
