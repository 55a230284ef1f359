#pragma once
// Where a Python emitter's events go. The one place that turns `sink=` into a sink.

#include <memory>
#include <optional>
#include <string>

#include "foxml/events/memory_sink.hpp"
#include "foxml/events/sink.hpp"

namespace foxml::events::python {

struct chosen_sink {
  std::unique_ptr<sink> destination;
  std::shared_ptr<memory_store> memory;  ///< set for `memory://`, so tests can read the lines
};

/// Builds the sink for `spec`:
/// - empty -> make_default_sink(): $FOXML_EVENTS_SINKS, else the Unix socket then the JSONL file
///   (the seed variables FOXML_TRAINING_EVENT_SOCKET / FOXML_TRAINING_EVENT_FILE replace their
///   part; defaults in the per-user directory);
/// - `memory://` -> an in-memory sink (tests);
/// - text without `://` -> that file path (relative paths allowed);
/// - anything else -> make_sink(uri_list): a comma list is a fallback chain, `|` a tee.
/// Throws std::invalid_argument naming the URI for a malformed list (ValueError in Python) and
/// std::system_error when a file cannot be opened (OSError).
chosen_sink choose_sink(const std::optional<std::string>& spec);

/// Whether this build links the ZeroMQ sink component (zmq+tcp://, zmq+ipc:// URIs).
bool zmq_sinks_available() noexcept;

/// Registers the ZeroMQ sink factory with make_sink() when the component is linked; harmless
/// otherwise. Called once at import.
void enable_zmq_sinks();

}  // namespace foxml::events::python
