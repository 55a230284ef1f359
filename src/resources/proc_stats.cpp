#include "proc_stats.hpp"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
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

}  // namespace

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
