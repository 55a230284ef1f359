#pragma once
// Small RAII helpers over file descriptors shared by the sources.

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>
#include <utility>

#include "foxml/events/detail/unique_fd.hpp"

namespace foxml::events::reader::detail {

using foxml::events::detail::unique_fd;

[[noreturn]] inline void throw_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// An eventfd that wakes a blocked epoll_wait; writing to it is async-signal-safe.
class waker {
 public:
  waker() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!fd_) throw_errno("eventfd");
  }
  int fd() const noexcept { return fd_.get(); }
  void wake() noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(fd_.get(), &one, sizeof one);
  }
  void drain() noexcept {
    std::uint64_t value;
    [[maybe_unused]] auto n = ::read(fd_.get(), &value, sizeof value);
  }

 private:
  unique_fd fd_;
};

}  // namespace foxml::events::reader::detail
