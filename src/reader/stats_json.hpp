#pragma once
// The reader's counters as JSON, each struct's fields listed once, here, in declaration order: the
// names in Python's stats() and a bridge's reports are the C++ member names.

#include <nlohmann/json.hpp>

#include "foxml/events/reader/event_stream.hpp"
#include "foxml/events/reader/file_source.hpp"
#include "foxml/events/reader/socket_source.hpp"
#include "foxml/events/reader/zmq_source.hpp"

namespace foxml::events::reader {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(event_stream_stats, lines, bytes, events, malformed, blank, duplicates, gaps,
                                   missing, reported_drops, late, emitters, evicted)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(file_source_stats, bytes, rotations, truncations, not_regular)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(socket_source_stats, accepted, open, rejected, refused_no_fds, over_budget, bytes,
                                   acks, control_clients, commands_relayed, commands_unknown_run, commands_refused,
                                   commands_dropped, acks_forwarded, control_dropped)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(zmq_source_stats, messages, bad_frames)

}  // namespace foxml::events::reader
