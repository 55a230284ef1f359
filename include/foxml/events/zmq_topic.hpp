#pragma once
/// ZeroMQ topic frames, for publishers and subscribers alike. Needs no libzmq: a subscriber built
/// on any ZeroMQ binding includes this to compute its subscription prefixes.
///
/// Every message is two frames: the topic `<event_type>\x1f<run_id>\x1f`, then the JSON line
/// without its `\n`. `run_id` appears as it does between the quotes of the JSON line (JSON string
/// escapes applied; identical to the run id for plain text). 0x1F (unit separator) never occurs
/// unescaped in either part, so prefix matching cannot confuse `run1` with `run10`.

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "foxml/events/event.hpp"

namespace foxml::events {

/// The separator after each topic part.
inline constexpr char zmq_topic_separator = '\x1f';

/// Replaces `topic` with the topic frame of an encoded line, read from its leading bytes (the
/// encoder always writes `{"event_type":"...","run_id":"...",` first). Returns false, leaving
/// `topic` as `\x1f\x1f`, for a line that does not start that way.
bool zmq_topic_of_line(std::string_view line, std::string& topic);

/// Returns the subscription prefix for every event of one type: `error\x1f`.
std::string zmq_type_subscription(event_type type);

/// Returns the subscription prefix for one type of one run: `error\x1f<run_id>\x1f`.
std::string zmq_topic(event_type type, std::string_view run_id);

/// Returns the prefixes that select every event of one run, one per event type (ZeroMQ matches
/// prefixes, and the type comes first, so a run takes one subscription per type).
std::vector<std::string> zmq_run_subscriptions(std::string_view run_id);

/// Returns the prefixes a subscriber sets for the events of `types` of `runs` (an empty set
/// means all): every type's prefix, or one per type and run, or the empty prefix for everything.
std::vector<std::string> zmq_subscriptions(const std::set<event_type>& types, const std::set<std::string>& runs);

/// Returns the command endpoint that goes with a ZeroMQ event endpoint (the control back-channel,
/// docs/protocol.md "Control"): the same transport with the port + 1 (`tcp://h:5556` ->
/// `tcp://h:5557`), or the ipc path / inproc name + `.commands` (`ipc:///r/ev` ->
/// `ipc:///r/ev.commands`); a wildcard port (`tcp://h:*`, bind only) stays a wildcard. Throws std::invalid_argument for an endpoint it cannot derive from (no
/// port, port 65535, another transport).
std::string zmq_command_endpoint(std::string_view event_endpoint);

/// Returns the topic frame (and subscription prefix) of commands for `run_id`: `<run_id>\x1f`.
std::string zmq_command_topic(std::string_view run_id);

}  // namespace foxml::events
