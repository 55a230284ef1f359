#pragma once
// A raw client of a per-run control endpoint (docs/protocol.md, "Control"): what events-ctl does,
// written with plain sockets so the emitter side is tested without the consumer library.

#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>

namespace foxml::events::testing {

class control_client {
 public:
  explicit control_client(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    error_ = connected_ ? 0 : errno;
  }
  ~control_client() {
    if (fd_ >= 0) ::close(fd_);
  }
  control_client(const control_client&) = delete;
  control_client& operator=(const control_client&) = delete;

  bool connected() const { return connected_; }
  int error() const { return error_; }

  // Sends `line` (a `\n` is added) and returns the reply line without its `\n` ("" on EOF/timeout).
  std::string ask(const std::string& line, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const std::string out = line + "\n";
    // A server that refuses the connection answers and closes at once, maybe before this send
    // (which then fails): its answer is still there to read.
    (void)!::send(fd_, out.data(), out.size(), MSG_NOSIGNAL);
    return read_line(timeout);
  }

  std::string read_line(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const std::size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return "";
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return "";
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) return "";
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  int error_ = 0;
  std::string buffer_;
};

inline std::string command_line(const std::string& name, const std::string& id, const std::string& run_id,
                                const std::string& arg = "") {
  std::string line = "{\"command\":\"" + name + "\",\"id\":\"" + id + "\",\"run_id\":\"" + run_id +
                     "\",\"sender\":\"test@host:1\"";
  if (!arg.empty()) line += ",\"arg\":" + arg;
  return line + "}";
}

}  // namespace foxml::events::testing
