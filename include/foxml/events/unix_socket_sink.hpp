#pragma once
/// The Unix socket sink: streams JSON lines to a local listener and never waits on it.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "foxml/events/detail/unique_fd.hpp"
#include "foxml/events/sink.hpp"

namespace foxml::events {
namespace detail {
class command_inbox;
}

/// Settings of a unix_socket_sink.
struct unix_socket_options {
  /// Absolute path of the listener's socket (at most 107 bytes).
  std::string path;
  /// Bounds of the lines kept until the listener acknowledges them (see docs/protocol.md).
  std::size_t max_unacked_lines = 65536;
  std::size_t max_unacked_bytes = 16u << 20;
  /// Reconnect backoff: the first retry after a failure, doubling up to the maximum.
  std::chrono::milliseconds reconnect_min{20};
  std::chrono::milliseconds reconnect_max{1000};
  /// At close, how long to wait for the last acknowledgements of a listener that sends them.
  std::chrono::milliseconds close_linger{200};
  /// Refuses a socket file owned by another user (someone else's listener posing as ours).
  bool require_same_owner = true;
};

/// Counters of a unix_socket_sink, shared so tests and tools can read them from any thread.
struct unix_socket_counters {
  std::atomic<std::uint64_t> connects{0};     ///< connections established
  std::atomic<std::uint64_t> breaks{0};       ///< connections lost (EOF, ECONNRESET, EPIPE...)
  std::atomic<std::uint64_t> would_block{0};  ///< writes refused because the socket buffer was full
  std::atomic<std::uint64_t> acked{0};        ///< lines released by an acknowledgement
  std::atomic<std::uint64_t> released_unacked{0};  ///< lines released unacknowledged (fire-and-forget)
  std::atomic<std::uint64_t> reclaimed{0};    ///< lines handed back after a break or at close
};

/// The client side of a SOCK_STREAM Unix socket that a consumer listens on. Connects lazily and
/// reconnects with backoff; writes never block, and a line goes on the wire whole (a line cut by a
/// full buffer is finished before anything else is sent). A listener slower than a burst gets
/// every line: what the kernel buffer cannot take is buffered here, within max_unacked_lines /
/// max_unacked_bytes together with the unacknowledged lines, and only lines beyond that bound are
/// refused (a fallback chain then takes them). Lines not yet acknowledged (or not yet sent) are
/// handed back through reclaim() when the connection breaks, so a fallback chain can send them
/// elsewhere. The protocol, including the
/// fire-and-forget behaviour with a listener that never acknowledges, is in docs/protocol.md.
class unix_socket_sink final : public sink {
 public:
  /// Validates the options; throws std::invalid_argument naming the problem. Does not connect.
  explicit unix_socket_sink(unix_socket_options options);
  explicit unix_socket_sink(std::string path);
  ~unix_socket_sink() override;
  unix_socket_sink(const unix_socket_sink&) = delete;
  unix_socket_sink& operator=(const unix_socket_sink&) = delete;

  const unix_socket_options& options() const noexcept { return options_; }
  const std::shared_ptr<unix_socket_counters>& counters() const noexcept { return counters_; }
  /// Lines accepted and not yet acknowledged (or released), sent or still buffered.
  std::size_t unacked_lines() const noexcept { return held_.size(); }
  bool connected() const noexcept { return static_cast<bool>(fd_); }
  /// Bytes accepted and not yet on the wire (waiting for the kernel buffer).
  std::size_t unsent_bytes() const noexcept { return tail_; }

  std::size_t write(const line_batch& batch) noexcept override;
  void flush() noexcept override;
  void close() noexcept override;
  bool healthy() noexcept override;
  std::size_t reclaim(line_batch& out) noexcept override;
  void poll(std::chrono::steady_clock::time_point now) noexcept override;
  std::unique_ptr<sink> reopen_after_fork() const override;
  std::string describe() const override { return "unix://" + options_.path; }
  /// Takes command lines the listener writes on the connection into the emitter's inbox, and
  /// names `control/` next to the socket as the control directory (control.hpp).
  void attach_control(control_attachment& attachment) noexcept override;

 private:
  struct held_line {
    std::uint64_t seq;
    std::size_t size;
  };

  void try_connect(std::chrono::steady_clock::time_point now) noexcept;
  void schedule_retry(std::chrono::steady_clock::time_point now) noexcept;
  void drop_connection(bool keep_for_reclaim) noexcept;
  bool send_tail() noexcept;  // true when no partial line is left
  void read_acks() noexcept;
  void handle_reply(std::string_view line) noexcept;
  void release_front(std::size_t count) noexcept;
  void release_for(std::size_t add_lines, std::size_t add_bytes) noexcept;
  bool full() const noexcept;
  std::size_t sent_lines() const noexcept;  // held lines wholly on the wire
  // Lines of `batch` from `first` that fit in the bounds next to what is held.
  std::size_t fitting(const line_batch& batch, std::size_t first) const noexcept;
  std::size_t held_bytes() const noexcept { return held_text_.size() - held_head_; }

  unix_socket_options options_;
  std::shared_ptr<unix_socket_counters> counters_;
  detail::unique_fd fd_;
  bool closed_ = false;
  bool ack_seen_ = false;  // on the current connection
  std::chrono::steady_clock::time_point next_attempt_{};
  std::chrono::milliseconds backoff_{0};

  // Lines accepted and not acknowledged, in order; their text is held_text_[held_head_, end).
  // The last `tail_` bytes of it are not on the wire yet (the rest of a cut line, then lines the
  // kernel buffer had no room for): they go out before anything newer.
  std::string held_text_;
  std::size_t held_head_ = 0;
  std::deque<held_line> held_;
  std::size_t tail_ = 0;

  std::string reply_;   // bytes of an incomplete line from the listener
  line_batch reclaim_;  // lines lost with a broken connection, waiting for reclaim()
  std::size_t reclaim_untold_ = 0;  // more of those, whose text memory ran out to keep

  detail::command_inbox* inbox_ = nullptr;  // the emitter's, for commands the listener relays
};

}  // namespace foxml::events
