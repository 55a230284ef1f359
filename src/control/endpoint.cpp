#include "endpoint.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <pthread.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "foxml/events/defaults.hpp"

namespace foxml::events::detail {
namespace {

using clock_type = std::chrono::steady_clock;
constexpr std::size_t max_clients = 16;
constexpr auto idle_limit = std::chrono::seconds(5);
constexpr std::string_view query_key = "query";
constexpr std::string_view status_query = "status";

[[noreturn]] void fail(const std::string& path, const char* what) {
  throw std::system_error(errno, std::generic_category(), "foxml::events: control endpoint " + path + ": " + what);
}

struct client {
  unique_fd fd;
  std::string buffer;
  clock_type::time_point last_active;
};

// Replies are small; a client that does not read them is dropped rather than waited for.
bool reply(int fd, std::string line) noexcept {
  line += '\n';
  std::size_t sent = 0;
  while (sent < line.size()) {
    const ssize_t n = ::send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

std::string error_reply(std::string_view why) {
  nlohmann::json j = nlohmann::json::object();
  j["ok"] = false;
  j["error"] = why;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool same_user(int fd, uid_t& peer) noexcept {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  peer = cred.uid;
  return cred.uid == ::geteuid();
}

}  // namespace

control_endpoint::control_endpoint(const std::string& directory, std::string path, command_inbox& inbox,
                                   std::function<std::string()> status)
    : path_(std::move(path)), inbox_(inbox), status_(std::move(status)) {
  sockaddr_un addr{};
  if (path_.size() >= sizeof(addr.sun_path)) {
    throw std::invalid_argument("foxml::events: control endpoint " + path_ + ": the path is over " +
                                std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  }
  ensure_private_directory(directory);
  // A socket left by a process of this pid that died without closing: ours to replace.
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode) || st.st_uid != ::geteuid()) {
      errno = EEXIST;
      fail(path_, "exists and is not this user's socket");
    }
    ::unlink(path_.c_str());
  }
  listener_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listener_) fail(path_, "socket()");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path_.data(), path_.size());
  if (::bind(listener_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) fail(path_, "bind()");
  // The directory is 0700 already, so the moment between bind and chmod exposes nothing.
  if (::chmod(path_.c_str(), 0600) != 0 || ::listen(listener_.get(), 16) != 0) {
    const int saved = errno;
    ::unlink(path_.c_str());
    errno = saved;
    fail(path_, "chmod()/listen()");
  }
  wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_) {
    const int saved = errno;
    ::unlink(path_.c_str());
    errno = saved;
    fail(path_, "eventfd()");
  }
  try {
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "foxml-control");
      run();
    });
  } catch (...) {
    ::unlink(path_.c_str());
    throw;
  }
}

control_endpoint::~control_endpoint() { stop(); }

void control_endpoint::stop() noexcept {
  if (stopped_.exchange(true)) return;
  if (thread_.joinable()) {
    const std::uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof(one));
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();
    } else {
      thread_.join();
    }
  }
  listener_.reset();
  wake_.reset();
  ::unlink(path_.c_str());
}

void control_endpoint::forget_after_fork() noexcept {
  stopped_.store(true);
  // The std::thread names a thread this process does not have: it is left alone (the state that
  // holds this endpoint is never destroyed in the child).
  listener_.reset();
  wake_.reset();
}

void control_endpoint::run() noexcept {
  std::vector<client> clients;
  std::vector<pollfd> fds;
  for (;;) {
    try {
      fds.clear();
      fds.push_back(pollfd{wake_.get(), POLLIN, 0});
      fds.push_back(pollfd{listener_.get(), POLLIN, 0});
      for (const client& c : clients) fds.push_back(pollfd{c.fd.get(), POLLIN, 0});
      // Wake at least once a second to close idle clients.
      const int n = ::poll(fds.data(), fds.size(), clients.empty() ? -1 : 1000);
      if (n < 0 && errno != EINTR) return;
      if (fds[0].revents != 0) return;
      const auto now = clock_type::now();
      for (std::size_t i = 0; i < clients.size(); ++i) {
        client& c = clients[i];
        const short events = fds[i + 2].revents;
        bool keep = true;
        if (events & (POLLIN | POLLHUP | POLLERR)) {
          char chunk[4096];
          const ssize_t got = ::recv(c.fd.get(), chunk, sizeof(chunk), MSG_DONTWAIT);
          if (got <= 0 && !(got < 0 && (errno == EAGAIN || errno == EINTR))) {
            keep = false;
          } else if (got > 0) {
            c.last_active = now;
            c.buffer.append(chunk, static_cast<std::size_t>(got));
            std::size_t end;
            while (keep && (end = c.buffer.find('\n')) != std::string::npos) {
              std::string line = c.buffer.substr(0, end);
              c.buffer.erase(0, end + 1);
              std::string answer;
              const auto query = nlohmann::json::parse(line, nullptr, false);
              if (query.is_object() && query.size() == 1 && query.contains(query_key) &&
                  query[std::string(query_key)] == status_query) {
                answer = status_();
              } else {
                command_parse parsed = parse_command(line);
                if (!parsed.value) {
                  inbox_.offer_line(line);  // counts and reports the refusal
                  answer = error_reply(parsed.error);
                } else {
                  const std::string id = parsed.value->id;
                  const auto result = inbox_.offer(std::move(*parsed.value));
                  if (result.what == command_inbox::verdict::refused) {
                    answer = error_reply(result.error);
                  } else {
                    nlohmann::json j = nlohmann::json::object();
                    j["ok"] = true;
                    j["id"] = id;
                    j["duplicate"] = result.what == command_inbox::verdict::duplicate;
                    answer = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
                  }
                }
              }
              keep = reply(c.fd.get(), std::move(answer));
            }
            if (keep && c.buffer.size() > max_command_bytes) {
              inbox_.offer_line(std::string_view(c.buffer).substr(0, max_command_bytes + 1));
              reply(c.fd.get(), error_reply("line over " + std::to_string(max_command_bytes) + " bytes"));
              keep = false;
            }
          }
        }
        if (keep && now - c.last_active >= idle_limit) keep = false;
        if (!keep) c.fd.reset();
      }
      clients.erase(std::remove_if(clients.begin(), clients.end(), [](const client& c) { return !c.fd; }),
                    clients.end());
      if (fds[1].revents & POLLIN) {
        for (;;) {
          unique_fd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
          if (!fd) break;
          uid_t peer = 0;
          if (!same_user(fd.get(), peer)) {
            inbox_.refuse_peer("control connection from uid " + std::to_string(peer) + " refused");
            reply(fd.get(), error_reply("permission denied: not the run's user"));
            continue;
          }
          if (clients.size() >= max_clients) {
            reply(fd.get(), error_reply("too many control clients"));
            continue;
          }
          clients.push_back(client{std::move(fd), {}, now});
        }
      }
    } catch (...) {
      // Out of memory: drop the clients, keep serving.
      clients.clear();
    }
  }
}

}  // namespace foxml::events::detail
