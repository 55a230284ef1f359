#pragma once
// A real Unix socket listener for tests: accepts one connection at a time on its own thread,
// keeps every complete line it reads and, when asked, acknowledges with {"ack_seq":N}.

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "foxml/events/unix_socket_sink.hpp"

namespace foxml::events::testing {

// Sink options for `path` that reconnect within milliseconds, so tests need not wait long.
inline unix_socket_options fast_options(const std::string& path) {
  unix_socket_options o;
  o.path = path;
  o.reconnect_min = std::chrono::milliseconds(2);
  o.reconnect_max = std::chrono::milliseconds(20);
  return o;
}

// Returns the seq of a line (its `"seq":N` field), or -1.
// `count` log lines with seqs from `first` on, as the worker hands them to a sink; `pad` bytes of
// padding make each line that much longer.
inline line_batch numbered_lines(std::uint64_t first, std::size_t count, std::size_t pad = 0) {
  line_batch batch;
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint64_t seq = first + i;
    batch.append("{\"event_type\":\"log\",\"run_id\":\"r\",\"seq\":" + std::to_string(seq) + ",\"pad\":\"" +
                     std::string(pad, 'x') + "\"}\n",
                 seq);
  }
  return batch;
}

inline long long seq_of(const std::string& line) {
  const auto at = line.find("\"seq\":");
  if (at == std::string::npos) return -1;
  return std::strtoll(line.c_str() + at + 6, nullptr, 10);
}

// A private temporary directory, removed (with its files) at the end of the test.
class temp_dir {
 public:
  temp_dir() {
    char pattern[] = "/tmp/foxml-test-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~temp_dir() { (void)!std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

class unix_listener {
 public:
  enum class mode { ack, no_ack, no_read };

  unix_listener(std::string path, mode m) : path_(std::move(path)), mode_(m) {
    ::unlink(path_.c_str());
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    const mode_t old = ::umask(077);  // the socket file is created 0600
    const int rc = ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::umask(old);
    if (rc != 0 || ::listen(listen_fd_, 4) != 0) throw std::runtime_error("listener bind failed: " + path_);
    thread_ = std::thread([this] { run(); });
  }
  ~unix_listener() { kill(); }

  // Closes everything at once, like a process that dies: what it has not read is lost with it.
  void kill() {
    if (!thread_.joinable()) return;
    stop_ = true;
    thread_.join();
    if (conn_fd_ >= 0) ::close(conn_fd_);
    ::close(listen_fd_);
    ::unlink(path_.c_str());
  }
  // Switches a no_read listener to reading (and keeps not acknowledging).
  void start_reading() { mode_ = mode::no_ack; }
  // Waits until the peer closed the connection and every byte was read (deadline in seconds).
  bool wait_for_eof(double seconds) { return wait([&] { return eof_seen_.load(); }, seconds); }

  std::vector<std::string> lines() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }
  std::size_t count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_.size();
  }
  bool connected() const { return accepted_.load() > 0; }
  // Writes raw bytes back to the sink on the current connection.
  bool send_raw(const std::string& bytes) {
    return ::send(conn_fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }

  template <class Pred>
  static bool wait(Pred pred, double seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }

 private:
  void run() {
    std::string pending;
    char buffer[65536];
    while (!stop_) {
      pollfd p{conn_fd_ >= 0 ? conn_fd_.load() : listen_fd_, POLLIN, 0};
      if (mode_ == mode::no_read && conn_fd_ >= 0) p.events = 0;
      ::poll(&p, 1, 5);
      if (conn_fd_ < 0) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
          conn_fd_ = fd;
          pending.clear();
          accepted_.fetch_add(1);
        }
        continue;
      }
      if (mode_ == mode::no_read) continue;
      const ssize_t n = ::recv(conn_fd_, buffer, sizeof(buffer), MSG_DONTWAIT);
      if (n == 0) {  // the sink closed: a cut last line is not a line
        ::close(conn_fd_);
        conn_fd_ = -1;
        eof_seen_ = true;
        continue;
      }
      if (n < 0) continue;
      pending.append(buffer, static_cast<std::size_t>(n));
      long long last = -1;
      std::size_t start = 0;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
          lines_.push_back(pending.substr(start, nl - start));
          last = seq_of(lines_.back());
        }
      }
      pending.erase(0, start);
      if (mode_ == mode::ack && last >= 0) {
        const std::string ack = "{\"ack_seq\":" + std::to_string(last) + "}\n";
        (void)!::send(conn_fd_, ack.data(), ack.size(), MSG_NOSIGNAL);
      }
    }
  }

  std::string path_;
  std::atomic<mode> mode_;
  int listen_fd_ = -1;
  std::atomic<int> conn_fd_{-1};
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> eof_seen_{false};
  std::atomic<int> accepted_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

}  // namespace foxml::events::testing
