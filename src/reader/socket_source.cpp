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

#include <nlohmann/json.hpp>

#include "fd.hpp"
#include "foxml/events/file_sink.hpp"
#include "foxml/events/control.hpp"
#include "foxml/events/reader/commands.hpp"
#include "foxml/events/schema_keys.hpp"
#include "foxml/events/zmq_topic.hpp"
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

// A run id as it appears between the quotes of an event line (the encoder's JSON escapes), so a
// command's run id compares byte for byte with what zmq_topic_of_line() reads from the lines.
std::string as_in_line(const std::string& run_id) {
  const std::string quoted = nlohmann::json(run_id).dump();
  return quoted.substr(1, quoted.size() - 2);
}

// Run ids remembered per emitter connection (one in practice; a bound, not a working limit).
constexpr std::size_t max_runs_per_connection = 64;
// Command ids a control client waits on at once.
constexpr std::size_t max_waiting_ids = 256;

}  // namespace

struct socket_source::impl {
  struct connection {
    connection(unique_fd f, std::string o, std::size_t max_line_bytes)
        : fd(std::move(f)), origin(std::move(o)), splitter(max_line_bytes) {}
    unique_fd fd;
    std::string origin;
    detail::line_splitter splitter;
    std::uint64_t last_seq = 0;
    bool has_seq = false;
    std::uint64_t acked_seq = 0;
    bool acked = false;
    std::size_t held = 0;  // partial-line bytes, as last counted into `partial_total`
    // ---- the command relay
    enum class role : std::uint8_t { unknown, emitter, control } kind = role::unknown;
    std::vector<std::string> runs;     // emitter: run ids its lines carried (as in the lines)
    std::string out;                   // bytes the socket has not taken yet (EPOLLOUT armed)
    std::vector<std::string> waiting;  // control: command ids whose command_received it gets
    std::chrono::steady_clock::time_point linger_until;
    bool doomed = false;               // closed at the end of this poll (a peer not reading)
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
  std::size_t control_count = 0;
  std::string topic;  // scratch for zmq_topic_of_line
  // A descriptor kept in reserve: when the process runs out (EMFILE), it is given up for the
  // moment it takes to accept and close the pending connection. Without that, the connection
  // stays pending and level-triggered epoll wakes us at once, forever (100 % CPU).
  unique_fd spare;
  bool listener_paused = false;  // out of descriptors with no spare: stop listening for a while

  void take_spare() noexcept { spare.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC)); }

  void arm_listener(bool on) noexcept {
    epoll_event ev{};
    ev.events = on ? static_cast<std::uint32_t>(EPOLLIN) : 0u;
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
      connections.emplace(fd, connection(std::move(accepted), origin + "#" + std::to_string(++next_id),
                                         options.max_line_bytes));
      ++stats.open;
    }
  }

  void send_ack(connection& c) {
    if (!c.has_seq || (c.acked && c.acked_seq == c.last_seq)) return;
    const std::string ack = "{\"ack_seq\":" + std::to_string(c.last_seq) + "}\n";
    // Acks are cumulative: when the emitter does not read them and the buffer is full, this one
    // is skipped and the next one says the same and more.
    if (write_line(c, ack, /*skip_when_blocked=*/true)) {
      c.acked = true;
      c.acked_seq = c.last_seq;
      ++stats.acks;
    }
  }

  void arm_write(connection& c, bool on) noexcept {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0u);
    ev.data.fd = c.fd.get();
    ::epoll_ctl(epoll.get(), EPOLL_CTL_MOD, c.fd.get(), &ev);
  }

  // Writes a whole line or nothing of it, never waiting: what the socket does not take now waits
  // in `out` (bounded) so acks and relayed commands never interleave mid-line. Returns false when
  // nothing was written: the bound was reached, or (`skip_when_blocked`) the socket took nothing.
  bool write_line(connection& c, std::string_view line, bool skip_when_blocked = false) {
    if (!c.out.empty()) {
      if (c.out.size() + line.size() > options.max_pending_write_bytes) return false;
      c.out.append(line);
      return true;
    }
    ssize_t n;
    do {
      n = ::send(c.fd.get(), line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(line.size())) return true;
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) return false;  // the peer is gone: its read ends it
      if (skip_when_blocked) return false;
      n = 0;
    }
    if (line.size() - static_cast<std::size_t>(n) > options.max_pending_write_bytes) return false;
    c.out.assign(line.substr(static_cast<std::size_t>(n)));
    arm_write(c, true);
    return true;
  }

  void flush(connection& c) {
    while (!c.out.empty()) {
      const ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        c.out.erase(0, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      c.out.clear();  // the peer is gone: its read ends it
    }
    arm_write(c, false);
  }

  // ---- the command relay

  // A connection's first line decides: a command makes it a control client. The emitter always
  // writes `{"event_type"` first, so its lines are told apart without parsing.
  static connection::role classify(const raw_line& line) {
    return !line.oversized && looks_like_command(line.text) ? connection::role::control : connection::role::emitter;
  }

  void answer(connection& c, const nlohmann::json& reply) {
    if (!write_line(c, reply.dump() + "\n")) {
      ++stats.control_dropped;
      c.doomed = true;
    }
  }

  void refuse(connection& c, const std::string& why) {
    ++stats.commands_refused;
    answer(c, {{"ok", false}, {"error", why}});
  }

  void on_control_line(connection& c, const raw_line& line) {
    c.linger_until = std::chrono::steady_clock::now() + options.control_linger;
    if (line.oversized || line.text.size() > max_command_bytes) {
      return refuse(c, "a command line is at most " + std::to_string(max_command_bytes) + " bytes");
    }
    const command_parse parsed = parse_command(line.text);
    if (!parsed.value) return refuse(c, parsed.error);
    const std::string& run_id = parsed.value->run_id;
    const std::string& id = parsed.value->id;
    const std::string wanted = as_in_line(run_id);
    const std::string text = command_to_json(*parsed.value) + "\n";
    std::uint64_t delivered = 0, backed_up = 0;
    for (auto& [fd, e] : connections) {
      if (e.kind != connection::role::emitter || e.doomed) continue;
      if (std::find(e.runs.begin(), e.runs.end(), wanted) == e.runs.end()) continue;
      if (write_line(e, text)) {
        ++delivered;
        ++stats.commands_relayed;
      } else {
        ++backed_up;
        ++stats.commands_dropped;
      }
    }
    if (delivered == 0 && backed_up == 0) {
      ++stats.commands_unknown_run;
      return answer(c, {{"ok", false}, {"error", "unknown run " + run_id}});
    }
    if (delivered == 0) {
      return answer(c, {{"ok", false}, {"error", "run " + run_id + ": its connection(s) are not reading; command dropped"}});
    }
    if (c.waiting.size() >= max_waiting_ids) c.waiting.erase(c.waiting.begin());
    c.waiting.push_back(id);
    answer(c, {{"ok", true}, {"delivered", delivered}});
  }

  // Remembers the run of an emitter's line; forwards a command_received to the clients waiting.
  void note_emitter_line(connection& c, std::string_view text) {
    if (!zmq_topic_of_line(text, topic)) return;
    const std::size_t sep = topic.find(zmq_topic_separator);
    const std::string_view type(topic.data(), sep);
    const std::string_view run(topic.data() + sep + 1, topic.size() - sep - 2);
    if (c.runs.empty() || c.runs.back() != run) {
      if (std::find(c.runs.begin(), c.runs.end(), run) == c.runs.end()) {
        if (c.runs.size() >= max_runs_per_connection) c.runs.erase(c.runs.begin());
        c.runs.emplace_back(run);
      }
    }
    if (control_count == 0 || type != "command_received") return;
    const auto event = nlohmann::json::parse(text, nullptr, false);
    const std::string id_key(schema::names::command_id);
    if (!event.is_object() || !event.contains(id_key) || !event[id_key].is_string()) return;
    const std::string id = event[id_key].get<std::string>();
    std::string line(text);
    line += '\n';
    for (auto& [fd, client] : connections) {
      if (client.kind != connection::role::control || client.doomed) continue;
      if (std::find(client.waiting.begin(), client.waiting.end(), id) == client.waiting.end()) continue;
      if (write_line(client, line)) {
        ++stats.acks_forwarded;
      } else {
        ++stats.control_dropped;
        client.doomed = true;
      }
    }
  }

  // Closes clients that did not read (doomed) and control clients past their linger; returns
  // how long until the next linger ends (for the wait), or `cap`.
  std::chrono::milliseconds sweep(std::chrono::milliseconds cap) {
    const auto now = std::chrono::steady_clock::now();
    std::vector<int> closing;
    for (auto& [fd, c] : connections) {
      if (c.doomed || (c.kind == connection::role::control && now >= c.linger_until)) {
        closing.push_back(fd);
      } else if (c.kind == connection::role::control) {
        cap = std::min(cap, std::chrono::duration_cast<std::chrono::milliseconds>(c.linger_until - now) +
                                std::chrono::milliseconds(1));
      }
    }
    for (const int fd : closing) close_connection(fd);
    return cap;
  }

  // Reads one burst from `c`; returns false when the connection is finished.
  bool read_from(connection& c, const line_handler& on_line) {
    const auto handle = [&](const raw_line& line) {
      if (c.kind == connection::role::unknown) {
        c.kind = classify(line);
        if (c.kind == connection::role::control) {
          ++stats.control_clients;
          ++control_count;
        }
      }
      if (c.kind == connection::role::control) return on_control_line(c, line);
      on_line(line);
      std::uint64_t seq;
      if (!line.oversized && detail::top_level_seq(line.text, seq)) {
        c.last_seq = seq;
        c.has_seq = true;
      }
      if (!line.oversized) note_emitter_line(c, line.text);
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
    if (auto it = connections.find(fd); it != connections.end()) {
      partial_total -= it->second.held;
      if (it->second.kind == connection::role::control) --control_count;
    }
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
  if (s.control_count > 0) timeout = s.sweep(timeout);
  epoll_event events[64];
  const int n = ::epoll_wait(s.epoll.get(), events, 64, static_cast<int>(timeout.count()));
  for (int i = 0; i < n; ++i) {
    const int fd = events[i].data.fd;
    if (fd == s.waker.fd()) {
      s.waker.drain();
    } else if (fd == s.listener.get()) {
      s.accept_all();
    } else if (auto it = s.connections.find(fd); it != s.connections.end() && !it->second.doomed) {
      if (events[i].events & EPOLLOUT) s.flush(it->second);
      if ((events[i].events & ~static_cast<std::uint32_t>(EPOLLOUT)) == 0) continue;
      if (!s.read_from(it->second, on_line)) {
        s.close_connection(fd);
      } else {
        s.count_held(it->second);
      }
    }
  }
  s.enforce_budget();
  if (s.control_count > 0) s.sweep(timeout);
  return true;
}

void socket_source::wake() noexcept { impl_->waker.wake(); }

std::string socket_source::describe() const { return impl_->origin; }

const std::string& socket_source::path() const noexcept { return impl_->path; }

socket_source_stats socket_source::stats() const noexcept { return impl_->stats; }

std::string socket_source::stats_json() const { return nlohmann::json(impl_->stats).dump(); }

}  // namespace foxml::events::reader
