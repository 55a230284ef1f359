#pragma once
/// A Unix socket server that many emitters connect to at once; it reads newline-delimited JSON
/// lines and acknowledges the seqs it handled on each connection.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "foxml/events/reader/defaults.hpp"
#include "foxml/events/reader/source.hpp"

namespace foxml::events::reader {

/// Settings of a socket_source.
struct socket_source_options {
  std::size_t max_line_bytes = defaults::max_line_bytes;
  std::size_t max_connections = 1024;  ///< further connections are accepted and closed at once
  /// Most bytes read from one connection per wake-up, so one busy emitter cannot starve the rest.
  std::size_t max_burst_bytes = 1u << 20;
  /// Most bytes held for partial lines (sent without their `\n` yet) across all connections.
  /// Past it, the connection holding the most is closed and counted in `over_budget` until the
  /// total fits again; a well-behaved emitter ends each line within one write, so it holds
  /// almost nothing. 64 MiB: 60 peers at the line cap, far below what a hostile crowd could pin.
  std::size_t max_partial_bytes = 64u << 20;
  /// Most bytes waiting to be written on one connection (relayed commands, forwarded
  /// acknowledgements). Past it, a command for an emitter is dropped and a control client is
  /// closed (both counted): the listener never waits on a peer that does not read.
  std::size_t max_pending_write_bytes = 256u << 10;
  /// How long a control client is kept after its last command, for the forwarded
  /// `command_received` lines.
  std::chrono::milliseconds control_linger{10000};
};

/// Counters of a socket_source.
struct socket_source_stats {
  std::uint64_t accepted = 0;
  std::uint64_t open = 0;
  std::uint64_t rejected = 0;  ///< over max_connections
  /// Accepted and closed at once because the process ran out of file descriptors (EMFILE).
  std::uint64_t refused_no_fds = 0;
  /// Closed for holding the most partial-line bytes when the total was over max_partial_bytes.
  std::uint64_t over_budget = 0;
  std::uint64_t bytes = 0;
  std::uint64_t acks = 0;
  // ---- the command relay (docs/protocol.md, "Control: the consumer side")
  std::uint64_t control_clients = 0;    ///< connections whose first line was a command
  std::uint64_t commands_relayed = 0;   ///< command lines written on emitter connections
  std::uint64_t commands_unknown_run = 0;  ///< commands for a run no connection has sent
  std::uint64_t commands_refused = 0;   ///< control lines that were not a valid command
  std::uint64_t commands_dropped = 0;   ///< not written: the emitter's connection was backed up
  std::uint64_t acks_forwarded = 0;     ///< `command_received` lines forwarded to control clients
  std::uint64_t control_dropped = 0;    ///< control clients closed for not reading their answers
};

/// Listens on a SOCK_STREAM Unix socket. Protocol: an emitter writes `\n`-terminated JSON lines;
/// after each burst of lines read from a connection, the server writes back `{"ack_seq":N}\n` on
/// that connection, N being the `seq` of the last line it handled there (in stream order).
/// A connection whose first line is a command (`"command"` and `"run_id"`, no `"event_type"`) is
/// a control client: each command it sends is written on every emitter connection that has sent
/// lines of its run, the client gets `{"ok":true,"delivered":N}` or `{"ok":false,"error":...}`,
/// then each `command_received` line with the command's id, until it closes or `control_linger`
/// passes. Commands are not events: they never reach the line handler. The
/// socket file is made 0600 (its directory 0700 when created here); an existing socket file is
/// replaced only when nothing listens on it. The file is removed on destruction.
class socket_source final : public source {
 public:
  /// Binds and listens at `path`. Throws std::system_error when it cannot (another listener, a
  /// non-socket file in the way, a path too long...).
  explicit socket_source(std::string path, socket_source_options options = {});
  ~socket_source() override;
  socket_source(const socket_source&) = delete;
  socket_source& operator=(const socket_source&) = delete;

  bool poll(std::chrono::milliseconds timeout, const line_handler& on_line) override;
  void wake() noexcept override;
  std::string describe() const override;
  std::string stats_json() const override;

  socket_source_stats stats() const noexcept;
  /// The socket file's path (what send_command_relay() connects to).
  const std::string& path() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace foxml::events::reader
