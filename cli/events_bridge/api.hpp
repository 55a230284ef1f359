#pragma once
/// The JSON (and Prometheus text) answers of the bridge's GET routes: pure functions of the
/// reader's state, so they run on the io thread without waiting on anything but its locks.

#include <cstdint>
#include <string>

#include "query.hpp"

namespace events_bridge {

class server;

/// An answer before it becomes an HTTP response.
struct reply {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
};

/// `{"error": message}` with `status`.
reply error_reply(unsigned status, const std::string& message);

reply runs_reply(server& s);
reply run_reply(server& s, const std::string& run_id);
reply run_events_reply(server& s, const std::string& run_id, const target& t);
reply training_status_reply(server& s);
reply health_reply(server& s);
reply metrics_reply(server& s);

/// One WebSocket message for an event: its wire line with `"cursor":N` as the first key (and
/// `"coalesced":K` after it when K earlier events were folded into it).
std::string event_message(const std::string& line, std::uint64_t cursor, std::uint64_t coalesced = 0);

}  // namespace events_bridge
