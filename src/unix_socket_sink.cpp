#include "foxml/events/unix_socket_sink.hpp"

#include "foxml/events/control.hpp"
#include "foxml/events/detail/command_inbox.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace foxml::events {
namespace {

using clock_type = std::chrono::steady_clock;

constexpr std::size_t max_socket_path = sizeof(sockaddr_un::sun_path) - 1;
// A reply line longer than this is not something this protocol sends; it is skipped.
constexpr std::size_t max_reply_bytes = 4096;
// Compacting the held text costs a move of what is left; do it only when it frees a lot.
constexpr std::size_t compact_threshold = 1u << 20;

bool transient(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

void skip_spaces(std::string_view& s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
}

bool take(std::string_view& s, std::string_view token) {
  skip_spaces(s);
  if (s.substr(0, token.size()) != token) return false;
  s.remove_prefix(token.size());
  return true;
}

// Parses `{"ack_seq":N}` (spaces allowed between tokens); anything else is not an ack.
bool parse_ack(std::string_view s, std::uint64_t& seq) {
  if (!take(s, "{") || !take(s, "\"ack_seq\"") || !take(s, ":")) return false;
  skip_spaces(s);
  if (s.empty() || s.front() < '0' || s.front() > '9') return false;
  std::uint64_t value = 0;
  while (!s.empty() && s.front() >= '0' && s.front() <= '9') {
    const std::uint64_t digit = static_cast<std::uint64_t>(s.front() - '0');
    if (value > (UINT64_MAX - digit) / 10) return false;
    value = value * 10 + digit;
    s.remove_prefix(1);
  }
  if (!take(s, "}")) return false;
  skip_spaces(s);
  if (!s.empty()) return false;
  seq = value;
  return true;
}

}  // namespace

unix_socket_sink::unix_socket_sink(std::string path) : unix_socket_sink(unix_socket_options{std::move(path)}) {}

unix_socket_sink::unix_socket_sink(unix_socket_options options)
    : options_(std::move(options)), counters_(std::make_shared<unix_socket_counters>()) {
  const std::string& path = options_.path;
  const auto reject = [&](const std::string& what) {
    throw std::invalid_argument("foxml::events: unix socket sink '" + path + "': " + what);
  };
  if (path.empty() || path.front() != '/') reject("the socket path must be absolute");
  if (path.size() > max_socket_path) {
    reject("the path is " + std::to_string(path.size()) + " bytes; a Unix socket path holds at most " +
           std::to_string(max_socket_path));
  }
  if (path.find('\0') != std::string::npos) reject("the path contains a NUL byte");
  if (options_.max_unacked_lines == 0 || options_.max_unacked_bytes == 0) reject("the unacked bounds must be positive");
  if (options_.reconnect_min.count() <= 0 || options_.reconnect_max < options_.reconnect_min) {
    reject("reconnect_min must be positive and at most reconnect_max");
  }
  backoff_ = options_.reconnect_min;
  // A reply line is capped; with room for the cap, reading replies never allocates.
  reply_.reserve(max_reply_bytes + 1);
}

unix_socket_sink::~unix_socket_sink() = default;

void unix_socket_sink::schedule_retry(clock_type::time_point now) noexcept {
  next_attempt_ = now + backoff_;
  backoff_ = std::min(backoff_ * 2, options_.reconnect_max);
}

void unix_socket_sink::try_connect(clock_type::time_point now) noexcept {
  if (options_.require_same_owner) {
    struct stat st{};
    // No socket file (yet) or not ours: nothing to connect to; look again after the backoff.
    if (::lstat(options_.path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_uid != ::geteuid()) {
      schedule_retry(now);
      return;
    }
  }
  detail::unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    schedule_retry(now);
    return;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, options_.path.data(), options_.path.size());
  // A non-blocking connect on a Unix socket completes or fails at once (EAGAIN: backlog full).
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    schedule_retry(now);
    return;
  }
  fd_ = std::move(fd);
  ack_seen_ = false;
  reply_.clear();
  backoff_ = options_.reconnect_min;
  counters_->connects.fetch_add(1, std::memory_order_relaxed);
}

void unix_socket_sink::drop_connection(bool keep_for_reclaim) noexcept {
  if (fd_) {
    fd_.reset();
    counters_->breaks.fetch_add(1, std::memory_order_relaxed);
  }
  // Even fire-and-forget hands back the lines the listener got only part of or none of (the
  // buffered, unsent ones): they surely were not read.
  const std::size_t sent = keep_for_reclaim ? 0 : sent_lines();
  std::size_t offset = held_head_;
  for (std::size_t i = 0; i < held_.size(); ++i) {
    if (i >= sent) {
      try {
        reclaim_.append(std::string_view(held_text_).substr(offset, held_[i].size), held_[i].seq);
      } catch (...) {
        ++reclaim_untold_;  // out of memory: handed back as a count, without the text
      }
    }
    offset += held_[i].size;
  }
  counters_->reclaimed.fetch_add(held_.size() - sent, std::memory_order_relaxed);
  counters_->released_unacked.fetch_add(sent, std::memory_order_relaxed);
  held_.clear();
  held_text_.clear();
  held_head_ = 0;
  tail_ = 0;
  ack_seen_ = false;
  reply_.clear();
  schedule_retry(clock_type::now());
}

bool unix_socket_sink::send_tail() noexcept {
  while (tail_ > 0 && fd_) {
    const ssize_t n = ::send(fd_.get(), held_text_.data() + held_text_.size() - tail_, tail_, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (!transient(errno)) drop_connection(true);
      return false;
    }
    tail_ -= static_cast<std::size_t>(n);
  }
  return tail_ == 0;
}

std::size_t unix_socket_sink::sent_lines() const noexcept {
  // The unsent bytes are the last tail_ of the held text: count the lines wholly before them.
  std::size_t on_wire = held_bytes() - tail_;
  std::size_t n = 0;
  while (n < held_.size() && held_[n].size <= on_wire) {
    on_wire -= held_[n].size;
    ++n;
  }
  return n;
}

bool unix_socket_sink::full() const noexcept {
  return held_.size() >= options_.max_unacked_lines || held_bytes() >= options_.max_unacked_bytes;
}

void unix_socket_sink::release_front(std::size_t count) noexcept {
  for (std::size_t i = 0; i < count && !held_.empty(); ++i) {
    held_head_ += held_.front().size;
    held_.pop_front();
  }
  if (held_.empty()) {
    held_text_.clear();
    held_head_ = 0;
  } else if (held_head_ >= compact_threshold && held_head_ * 2 >= held_text_.size()) {
    held_text_.erase(0, held_head_);
    held_head_ = 0;
  }
}

void unix_socket_sink::release_for(std::size_t add_lines, std::size_t add_bytes) noexcept {
  // Only a listener that has not acknowledged on this connection lands here: its lines are
  // presumed read once sent (fire-and-forget); the oldest sent ones are let go to make room for
  // `add_lines` / `add_bytes` within the bounds. Lines not wholly sent are never let go.
  const std::size_t sent = sent_lines();
  std::size_t count = 0;
  std::size_t lines = held_.size() + add_lines;
  std::size_t bytes = held_bytes() + add_bytes;
  while ((lines > options_.max_unacked_lines || bytes > options_.max_unacked_bytes) && count < sent) {
    bytes -= held_[count].size;
    --lines;
    ++count;
  }
  counters_->released_unacked.fetch_add(count, std::memory_order_relaxed);
  release_front(count);
}

std::size_t unix_socket_sink::write(const line_batch& batch) noexcept {
  if (closed_ || batch.empty()) return 0;
  if (!fd_) {
    // Connect here too, not only in poll(): otherwise the first batch (run_start) would always
    // find the sink unconnected, and in a tee the listener would never see the start of a run.
    const auto now = clock_type::now();
    if (now >= next_attempt_) try_connect(now);
    if (!fd_) return 0;
  }
  // A listener that reads slower than a burst still gets every line: what the kernel buffer
  // cannot take now waits in ours, up to the unacked bounds (16 MiB by default), and goes out on
  // later writes and polls, in order. Only past the bounds are lines refused (a fallback chain
  // then routes them on). Lines a fire-and-forget listener was sent are let go to make room.
  send_tail();
  if (!fd_) return 0;
  std::size_t accepted = 0;
  if (tail_ == 0) {
    // Straight from the batch to the kernel: the common case, with no copy held back.
    const std::size_t count = ack_seen_ ? fitting(batch, 0) : batch.size();
    if (count != 0) {
      const std::string_view text = batch.text(0, count);
      ssize_t sent;
      do {
        sent = ::send(fd_.get(), text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      } while (sent < 0 && errno == EINTR);
      if (sent < 0 && !transient(errno)) {
        drop_connection(true);
        return 0;
      }
      // Every line the kernel took at least a byte of is accepted: a cut line's rest is kept in
      // tail_ and sent before anything else, so the listener never sees two lines interleaved.
      const std::size_t done = sent < 0 ? 0 : static_cast<std::size_t>(sent);
      std::size_t covered = 0;
      try {
        while (accepted < count && covered < done) {
          const std::string_view line = batch.line(accepted);
          held_.push_back(held_line{batch.seq(accepted), line.size()});
          try {
            held_text_.append(line);
          } catch (...) {
            held_.pop_back();
            throw;
          }
          covered += line.size();
          ++accepted;
        }
      } catch (...) {
        // Out of memory with bytes on the wire that cannot be kept track of: end the connection
        // (the held lines come back through reclaim()); the lines not recorded count as refused.
        drop_connection(true);
        return accepted;
      }
      tail_ = covered - done;
    }
  }
  if (accepted < batch.size()) {
    // The rest waits here for the kernel buffer to drain, within the bounds.
    if (!ack_seen_) {
      const std::size_t rest = std::min(batch.size() - accepted, options_.max_unacked_lines);
      release_for(rest, batch.text(accepted, accepted + rest).size());
    }
    const std::size_t count = fitting(batch, accepted);
    const std::string_view text = batch.text(accepted, accepted + count);
    std::size_t recorded = 0;
    try {
      for (; recorded < count; ++recorded) {
        held_.push_back(held_line{batch.seq(accepted + recorded), batch.line(accepted + recorded).size()});
      }
      held_text_.append(text);
    } catch (...) {
      // Out of memory: nothing of the rest is kept; it counts as refused (the worker retries it).
      for (; recorded > 0; --recorded) held_.pop_back();
      return accepted;
    }
    tail_ += text.size();
    accepted += count;
    counters_->would_block.fetch_add(1, std::memory_order_relaxed);
  }
  if (!ack_seen_) release_for(0, 0);
  return accepted;
}

std::size_t unix_socket_sink::fitting(const line_batch& batch, std::size_t first) const noexcept {
  std::size_t lines = held_.size();
  std::size_t bytes = held_bytes();
  std::size_t count = 0;
  while (first + count < batch.size() && lines < options_.max_unacked_lines &&
         bytes + batch.line(first + count).size() <= options_.max_unacked_bytes) {
    bytes += batch.line(first + count).size();
    ++lines;
    ++count;
  }
  return count;
}

void unix_socket_sink::handle_reply(std::string_view line) noexcept {
  std::uint64_t seq = 0;
  if (!parse_ack(line, seq)) {
    // A control command the listener relays: into the emitter's inbox, which acknowledges it
    // with command_received in the stream. Other lines are ignored.
    if (inbox_ != nullptr && looks_like_command(line)) inbox_->offer_line(line);
    return;
  }
  ack_seen_ = true;
  // Seqs are not monotonic in send order (lifecycle events take a side lane), so look the seq up.
  for (std::size_t i = 0; i < held_.size(); ++i) {
    if (held_[i].seq != seq) continue;
    // A line not wholly sent cannot have been read: an ack naming it is a listener bug.
    if (i >= sent_lines()) return;
    counters_->acked.fetch_add(i + 1, std::memory_order_relaxed);
    release_front(i + 1);
    return;
  }
}

void unix_socket_sink::read_acks() noexcept {
  char buffer[4096];
  while (fd_) {
    const ssize_t n = ::recv(fd_.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n == 0) {
      drop_connection(true);  // the listener closed: what it did not acknowledge may be lost
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (!transient(errno)) drop_connection(true);
      return;
    }
    std::string_view in(buffer, static_cast<std::size_t>(n));
    while (!in.empty()) {
      const std::size_t newline = in.find('\n');
      if (newline == std::string_view::npos) {
        if (reply_.size() + in.size() <= max_reply_bytes) {
          reply_.append(in);
        } else {
          reply_.assign(max_reply_bytes + 1, ' ');  // poisoned: skipped at its newline
        }
        break;
      }
      if (reply_.size() <= max_reply_bytes) {
        reply_.append(in.substr(0, newline));
        handle_reply(reply_);
      }
      reply_.clear();
      in.remove_prefix(newline + 1);
    }
  }
}

void unix_socket_sink::poll(clock_type::time_point now) noexcept {
  if (closed_) return;
  if (!fd_) {
    if (now >= next_attempt_) try_connect(now);
    return;
  }
  read_acks();
  if (fd_ && tail_ > 0) send_tail();
}

void unix_socket_sink::flush() noexcept {
  if (!fd_) return;
  read_acks();
  send_tail();
}

bool unix_socket_sink::healthy() noexcept {
  return !closed_ && fd_ && !full();
}

void unix_socket_sink::close() noexcept {
  if (closed_) return;
  closed_ = true;
  if (!fd_) return;
  // Give the listener a moment to finish the cut line and acknowledge what it read: lines it
  // acknowledges need not go to the fallback. Bounded by close_linger; the worker is closing.
  const auto deadline = clock_type::now() + options_.close_linger;
  while (fd_ && (tail_ > 0 || (ack_seen_ && !held_.empty()))) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
    if (left.count() <= 0) break;
    pollfd p{fd_.get(), static_cast<short>(POLLIN | (tail_ > 0 ? POLLOUT : 0)), 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    if (tail_ > 0) send_tail();
    read_acks();
  }
  // A listener that acknowledges gets its unacknowledged lines re-routed; one that never does is
  // fire-and-forget, and its lines are presumed read (re-routing them would duplicate every run's
  // last lines into the fallback).
  drop_connection(ack_seen_);
}

std::size_t unix_socket_sink::reclaim(line_batch& out) noexcept {
  const std::size_t n = reclaim_.size() + reclaim_untold_;
  out.append_lines(reclaim_, 0, reclaim_.size());  // out of memory, the rest is still in the count
  reclaim_.clear();
  reclaim_untold_ = 0;
  return n;
}

void unix_socket_sink::attach_control(control_attachment& attachment) noexcept {
  inbox_ = attachment.inbox;
  try {
    if (attachment.socket_directory.empty()) attachment.socket_directory = control_directory_for(options_.path);
  } catch (...) {
    // Out of memory: no control endpoint named by this sink.
  }
}

std::unique_ptr<sink> unix_socket_sink::reopen_after_fork() const {
  try {
    return std::make_unique<unix_socket_sink>(options_);
  } catch (...) {
    return nullptr;
  }
}

}  // namespace foxml::events
