#pragma once
/// The events-bridge server: HTTP routes and WebSocket sessions over one live_reader, on one
/// asio io_context thread. The reader's pump only posts a wake-up to that thread; each WebSocket
/// session reads the reader's ring by its own cursor, so history and live events meet with no gap
/// and no duplicate, and a stalled client never slows the reader or the other clients.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <utility>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "defaults.hpp"
#include "foxml/events/reader/live_reader.hpp"

namespace events_bridge {

struct server_options {
  std::string host = defaults::host;
  std::uint16_t port = defaults::port;
  std::string token;  ///< empty: no token (only allowed on loopback)
  std::size_t client_queue = defaults::client_queue;
  std::size_t ws_history = defaults::ws_history;
  std::size_t max_points = defaults::max_points;
  std::chrono::milliseconds command_timeout = defaults::command_timeout;
  std::chrono::milliseconds ping_after = defaults::ping_after;
  std::vector<std::string> sources;  ///< descriptions, for /api/health
};

/// Counters shown by /api/health and /metrics (written on the io thread, read anywhere).
struct bridge_counters {
  std::atomic<std::uint64_t> http_requests{0};
  std::atomic<std::uint64_t> http_errors{0};  ///< 4xx/5xx answers
  std::atomic<std::uint64_t> ws_connections{0};
  std::atomic<std::uint64_t> ws_clients{0};
  std::atomic<std::uint64_t> ws_messages{0};
  std::atomic<std::uint64_t> ws_coalesced{0};
  std::atomic<std::uint64_t> slow_disconnects{0};
  std::atomic<std::uint64_t> oversize_frames{0};
  std::atomic<std::uint64_t> ws_missed{0};  ///< events a client's cursor lost to the ring
  std::atomic<std::uint64_t> commands{0};
};

class ws_session;

class server {
 public:
  /// Binds (throws std::system_error when the address is taken or invalid); the reader must be
  /// started by the caller after construction.
  server(boost::asio::io_context& io, foxml::events::reader::live_reader& reader, server_options options);
  ~server();

  /// The bound port (the chosen one for port 0).
  std::uint16_t port() const;
  /// Starts accepting; the caller runs the io_context.
  void start();
  /// Stops accepting and closes every WebSocket (on the io thread).
  void stop();

  // ---- for the sessions (io thread)
  boost::asio::io_context& io() { return io_; }
  foxml::events::reader::live_reader& reader() { return reader_; }
  const server_options& options() const { return options_; }
  bridge_counters& counters() { return counters_; }
  void add(const std::shared_ptr<ws_session>& session);
  void remove(const std::shared_ptr<ws_session>& session);
  std::chrono::steady_clock::time_point started() const { return started_; }
  /// Events per second the reader accepted, over the last few seconds.
  double events_per_s() const;
  /// Commands waiting for an answer (a bound on the threads that wait for them).
  std::atomic<std::size_t>& pending_commands() { return pending_commands_; }

 private:
  void accept();
  void on_events();  // io thread: every session reads what is new in the ring
  void sample_rate();

  boost::asio::io_context& io_;
  foxml::events::reader::live_reader& reader_;
  server_options options_;
  boost::asio::ip::tcp::acceptor acceptor_;
  bridge_counters counters_;
  std::set<std::shared_ptr<ws_session>> sessions_;
  std::uint64_t subscription_ = 0;
  std::atomic<bool> wake_posted_{false};
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::atomic<std::size_t> pending_commands_{0};
  std::atomic<std::uint64_t> events_seen_{0};
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::uint64_t>> rate_samples_;
  std::atomic<double> rate_{0.0};
  boost::asio::steady_timer rate_timer_{io_};
  bool stopped_ = false;
};

}  // namespace events_bridge
