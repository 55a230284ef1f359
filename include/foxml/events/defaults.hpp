#pragma once
/// Where events go when nothing is configured: a per-user directory, never a shared one.

#include <string>

namespace foxml::events {

/// Returns the per-user directory for event files and sockets: `$XDG_RUNTIME_DIR/foxml` when that
/// is set, else `~/.cache/foxml`. It is not created here (sinks create it with mode 0700).
std::string default_event_directory();

/// Returns `$FOXML_TRAINING_EVENT_FILE` when set, else `<default_event_directory()>/events.jsonl`.
std::string default_event_file();

}  // namespace foxml::events
