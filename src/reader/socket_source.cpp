#include "foxml/events/reader/socket_source.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "fd.hpp"
#include "foxml/events/file_sink.hpp"
#include "line_splitter.hpp"
#include "stats_json.hpp"

namespace foxml::events::reader {

using detail::throw_errno;
using detail::unique_fd;

namespace {

sockaddr_un address_of(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    throw std::system_error(ENAMETOOLONG, std::generic_category(), "socket path " + path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// Removes a socket file left by a listener that died, refusing to touch anything else.
void clear_stale_socket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;
  if (!S_ISSOCK(st.st_mode)) {
    throw std::system_error(EEXIST, std::generic_category(), path + " exists and is not a socket");
  }
  unique_fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const auto addr = address_of(path);
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
    throw std::system_error(EADDRINUSE, std::generic_category(), "another listener is on " + path);
  }
  ::unlink(path.c_str());
}

}  // namespace

struct socket_source::impl {
  struct connection {
    unique_fd fd;
    std::string origin;
    detail::line_splitter splitter;
    std::uint64_t last_seq = 0;
    bool has_seq = false;
    std::uint64_t acked_seq = 0;
    bool acked = false;
    std::size_t held = 0;  // partial-line bytes, as last counted into `partial_total`
  };

  std::string path;
  std::string origin;
  socket_source_options options;
  socket_source_stats stats;
  detail::waker waker;
  unique_fd listener;
  unique_fd epoll;
  std::unordered_map<int, connection> connections;
  std::uint64_t next_id = 0;
  std::vector<char> buffer = std::vector<char>(1 << 16);
  std::size_t partial_total = 0;
  // A descriptor kept in reserve: when the process runs out (EMFILE), it is given up for the
  // moment it takes to accept and close the pending connection. Without that, the connection
  // stays pending and level-triggered epoll wakes us at once, forever (100 % CPU).
  unique_fd spare;
  bool listener_paused = false;  // out of descriptors with no spare: stop listening for a while

  void take_spare() noexcept { spare.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC)); }

  void arm_listener(bool on) noexcept {
    epoll_event ev{};
    ev.events = on ? EPOLLIN : 0;
    ev.data.fd = listener.get();
    ::epoll_ctl(epoll.get(), EPOLL_CTL_MOD, listener.get(), &ev);
    listener_paused = !on;
  }

  // Out of descriptors: turns the pending connection away (counted) rather than spin on it.
  // Returns whether there was one (accept reports EMFILE before it looks at the queue).
  bool refuse_pending() noexcept {
    if (!spare) take_spare();
    if (!spare) {
      arm_listener(false);  // poll() re-arms it once a descriptor is free again
      return false;
    }
    spare.reset();
    const unique_fd refused(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (refused) {
      ++stats.accepted;
      ++stats.refused_no_fds;
    }
    take_spare();
    return static_cast<bool>(refused);
  }

  void accept_all() {
    for (;;) {
      const int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE) {
          if (!refuse_pending()) return;
          continue;
        }
        return;  // EAGAIN: nothing more pending
      }
      unique_fd accepted(fd);
      ++stats.accepted;
      if (connections.size() >= options.max_connections) {
        ++stats.rejected;
        continue;
      }
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.fd = fd;
      if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &ev) < 0) continue;
      connections.emplace(fd, connection{std::move(accepted), origin + "#" + std::to_string(++next_id),
                                         detail::line_splitter(options.max_line_bytes)});
      ++stats.open;
    }
  }

  void send_ack(connection& c) {
    if (!c.has_seq || (c.acked && c.acked_seq == c.last_seq)) return;
    const std::string ack = "{\"ack_seq\":" + std::to_string(c.last_seq) + "}\n";
    // Acks are cumulative: when the emitter does not read them and the buffer is full, this one
    // is skipped and the next one says the same and more.
    const ssize_t n = ::send(c.fd.get(), ack.data(), ack.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == static_cast<ssize_t>(ack.size())) {
      c.acked = true;
      c.acked_seq = c.last_seq;
      ++stats.acks;
    }
  }

  // Reads one burst from `c`; returns false when the connection is finished.
  bool read_from(connection& c, const line_handler& on_line) {
    const auto handle = [&](const raw_line& line) {
      on_line(line);
      std::uint64_t seq;
      if (!line.oversized && detail::top_level_seq(line.text, seq)) {
        c.last_seq = seq;
        c.has_seq = true;
      }
    };
    std::size_t burst = 0;
    while (burst < options.max_burst_bytes) {
      const ssize_t n = ::read(c.fd.get(), buffer.data(), buffer.size());
      if (n > 0) {
        burst += static_cast<std::size_t>(n);
        stats.bytes += static_cast<std::uint64_t>(n);
        c.splitter.feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)), c.origin, handle);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      c.splitter.finish(c.origin, handle);  // EOF or error: a cut last line is still counted
      send_ack(c);
      return false;
    }
    send_ack(c);
    return true;
  }

  void count_held(connection& c) {
    const std::size_t now = c.splitter.held_bytes();
    partial_total = partial_total - c.held + now;
    c.held = now;
  }

  // Over the budget: the connection holding the most goes (an emitter mid-line loses that
  // line, which is what a cap means; the peers that end their lines are unaffected).
  void enforce_budget() {
    while (partial_total > options.max_partial_bytes && !connections.empty()) {
      auto worst = connections.begin();
      for (auto it = connections.begin(); it != connections.end(); ++it) {
        if (it->second.held > worst->second.held) worst = it;
      }
      ++stats.over_budget;
      close_connection(worst->first);
    }
  }

  void close_connection(int fd) {
    ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
    if (auto it = connections.find(fd); it != connections.end()) partial_total -= it->second.held;
    connections.erase(fd);
    --stats.open;
    if (listener_paused) {
      take_spare();
      if (spare) arm_listener(true);
    }
  }
};

socket_source::socket_source(std::string path, socket_source_options options) : impl_(std::make_unique<impl>()) {
  auto& s = *impl_;
  s.path = std::move(path);
  s.origin = "unix://" + s.path;
  s.options = options;
  const auto slash = s.path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) create_private_directories(s.path.substr(0, slash));
  clear_stale_socket(s.path);
  s.listener.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!s.listener) throw_errno("socket");
  const auto addr = address_of(s.path);
  if (::bind(s.listener.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0) {
    throw std::system_error(errno, std::generic_category(), "bind " + s.path);
  }
  // Nobody can connect before listen(), so tightening the mode here leaves no window open.
  if (::chmod(s.path.c_str(), 0600) < 0 || ::listen(s.listener.get(), 128) < 0) {
    const int err = errno;
    ::unlink(s.path.c_str());
    throw std::system_error(err, std::generic_category(), "listen " + s.path);
  }
  s.epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!s.epoll) throw_errno("epoll_create1");
  for (const int fd : {s.listener.get(), s.waker.fd()}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(s.epoll.get(), EPOLL_CTL_ADD, fd, &ev) < 0) throw_errno("epoll_ctl");
  }
  s.take_spare();
}

socket_source::~socket_source() {
  struct stat st {};
  if (::lstat(impl_->path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(impl_->path.c_str());
}

bool socket_source::poll(std::chrono::milliseconds timeout, const line_handler& on_line) {
  auto& s = *impl_;
  if (s.listener_paused) {
    // Paused for want of descriptors: look again at most every 100 ms.
    s.take_spare();
    if (s.spare) {
      s.arm_listener(true);
    } else {
      timeout = std::min(timeout, std::chrono::milliseconds(100));
    }
  }
  epoll_event events[64];
  const int n = ::epoll_wait(s.epoll.get(), events, 64, static_cast<int>(timeout.count()));
  for (int i = 0; i < n; ++i) {
    const int fd = events[i].data.fd;
    if (fd == s.waker.fd()) {
      s.waker.drain();
    } else if (fd == s.listener.get()) {
      s.accept_all();
    } else if (auto it = s.connections.find(fd); it != s.connections.end()) {
      if (!s.read_from(it->second, on_line)) {
        s.close_connection(fd);
      } else {
        s.count_held(it->second);
      }
    }
  }
  s.enforce_budget();
  return true;
}

void socket_source::wake() noexcept { impl_->waker.wake(); }

std::string socket_source::describe() const { return impl_->origin; }

socket_source_stats socket_source::stats() const noexcept { return impl_->stats; }

std::string socket_source::stats_json() const { return nlohmann::json(impl_->stats).dump(); }

}  // namespace foxml::events::reader
