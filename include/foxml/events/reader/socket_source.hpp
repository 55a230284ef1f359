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
};

/// Listens on a SOCK_STREAM Unix socket. Protocol: an emitter writes `\n`-terminated JSON lines;
/// after each burst of lines read from a connection, the server writes back `{"ack_seq":N}\n` on
/// that connection, N being the `seq` of the last line it handled there (in stream order). The
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

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace foxml::events::reader
