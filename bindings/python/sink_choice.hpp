#pragma once
// Where a Python emitter's events go. The one place that turns `sink=` into a sink, so the default
// chain (Unix socket, then file) can replace the file default when sink_uri.hpp lands.

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

/// Builds the sink for `spec`: empty -> the library default (today the file default_event_file()
/// names: $FOXML_TRAINING_EVENT_FILE or <per-user dir>/events.jsonl); `file:///path` or a plain
/// path -> that file; `memory://` -> an in-memory sink. Throws std::invalid_argument for schemes
/// this build does not have and std::system_error when the file cannot be opened.
chosen_sink choose_sink(const std::optional<std::string>& spec);

}  // namespace foxml::events::python
