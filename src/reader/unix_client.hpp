#pragma once
// A line-based Unix stream client where every step has a deadline: the control endpoint client,
// the relay client and their tests. A stale socket file fails at connect (ECONNREFUSED); a peer
// that never answers fails at the deadline.

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <string_view>

#include "fd.hpp"

namespace foxml::events::reader::detail {

class unix_line_client {
 public:
  using clock = std::chrono::steady_clock;

  explicit unix_line_client(clock::time_point deadline) : deadline_(deadline) {}

  // Returns 0 or the errno of the failure (ETIMEDOUT at the deadline).
  int connect(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return ENAMETOOLONG;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd_) return errno;
    for (;;) {
      if (::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) return 0;
      if (errno == EINTR) continue;
      // A full backlog answers EAGAIN on a Unix socket: try again until the deadline.
      if (errno == EAGAIN) {
        if (clock::now() >= deadline_) return ETIMEDOUT;
        ::poll(nullptr, 0, 10);
        continue;
      }
      if (errno == EINPROGRESS) return wait(POLLOUT) ? socket_error() : ETIMEDOUT;
      return errno;
    }
  }

  // Returns 0 or the errno of the failure.
  int write_all(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        data.remove_prefix(static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!wait(POLLOUT)) return ETIMEDOUT;
        continue;
      }
      return n < 0 ? errno : EPIPE;
    }
    return 0;
  }

  // Reads the next line (without `\n`) into `line`. Returns 0, ETIMEDOUT, ECONNRESET at end of
  // stream, EMSGSIZE for a line over `max_bytes` (the rest of the stream is then unusable).
  int read_line(std::string& line, std::size_t max_bytes, clock::time_point deadline) {
    for (;;) {
      if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
        line.assign(buffer_, 0, nl);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        buffer_.erase(0, nl + 1);
        return 0;
      }
      if (buffer_.size() > max_bytes) return EMSGSIZE;
      char chunk[4096];
      const ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, MSG_DONTWAIT);
      if (n > 0) {
        buffer_.append(chunk, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) return ECONNRESET;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return errno;
      if (!wait(POLLIN, deadline)) return ETIMEDOUT;
    }
  }
  int read_line(std::string& line, std::size_t max_bytes) { return read_line(line, max_bytes, deadline_); }

  int fd() const noexcept { return fd_.get(); }

 private:
  bool wait(short events) { return wait(events, deadline_); }
  bool wait(short events, clock::time_point deadline) {
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd_.get(), events, 0};
      const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) return false;
    }
  }
  int socket_error() const {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    return err;
  }

  clock::time_point deadline_;
  unique_fd fd_;
  std::string buffer_;
};

}  // namespace foxml::events::reader::detail
