#pragma once
/// One `/ws/training` client: reads the reader's ring by its own cursor (history, then live, with
/// nothing missed or doubled between them), filters, coalesces when asked, and writes through a
/// bounded queue. All of it runs on the io thread.

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "foxml/events/event.hpp"
#include "foxml/events/reader/live_reader.hpp"

namespace events_bridge {

class server;

/// What the client asked for in its upgrade request's query.
struct ws_params {
  std::optional<std::uint64_t> since;
  std::set<foxml::events::event_type> types;
  std::string run;
  double max_hz = 0;  ///< 0: no coalescing
};

class ws_session : public std::enable_shared_from_this<ws_session> {
 public:
  ws_session(server& owner, boost::asio::ip::tcp::socket socket, ws_params params);
  /// Completes the upgrade `request` and starts streaming.
  void run(boost::beast::http::request<boost::beast::http::string_body> request);
  /// Reads what the ring gained since the last call (the server calls it when events arrive).
  void pump();
  /// Closes with `going away` (server shutdown).
  void shutdown();

 private:
  using clock = std::chrono::steady_clock;
  struct held_event {  // the latest coalesced event of one (run, rank, type), not yet sent
    std::string line;
    std::uint64_t cursor = 0;
    std::uint64_t folded = 0;  // events replaced by a later one of the same key
    bool present = false;
    clock::time_point next_send{};
  };

  void on_accept(boost::beast::error_code ec);
  void send_history();
  void offer(const foxml::events::reader::shared_event& e, std::uint64_t cursor);
  void flush_held(const std::string& run_id, bool all_due);
  void arm_coalesce_timer();
  void enqueue(std::string message);
  void write_next();
  void read_next();
  void arm_ping();
  void too_slow();
  void close_with(boost::beast::websocket::close_code code);
  void finish();

  server& owner_;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  ws_params params_;
  std::chrono::nanoseconds period_{0};
  std::uint64_t cursor_ = 0;
  std::deque<std::string> queue_;
  bool writing_ = false;
  bool open_ = false;     // accepted and registered with the server
  bool closing_ = false;  // no more messages: a close is under way
  bool backlogged_ = false;  // the queue was full: events wait in the ring past cursor_
  std::optional<boost::beast::websocket::close_code> close_after_write_;
  boost::beast::flat_buffer incoming_;
  boost::asio::steady_timer ping_timer_;
  boost::asio::steady_timer coalesce_timer_;
  boost::asio::steady_timer grace_timer_;
  bool coalesce_armed_ = false;
  clock::time_point last_sent_ = clock::now();
  std::map<std::string, held_event> held_;  // by run \x1f rank \x1f type
};

}  // namespace events_bridge
