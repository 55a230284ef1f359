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

namespace foxml::events {

/// Creates `dir` (mode 0700) when missing, then checks it as check_private_directory() does.
void ensure_private_directory(const std::string& dir);

/// Refuses (std::system_error naming the path and the reason) a per-user directory that someone
/// else could have planted or can write into: it must be a real directory (lstat: a symlink is
/// refused, not followed), owned by the effective uid, and not group- or world-writable.
void check_private_directory(const std::string& dir);

/// Refuses an existing file in the per-user directory that is not a regular file owned by the
/// effective uid and private from group and world writes. A missing file is fine.
void check_private_file(const std::string& path);

}  // namespace foxml::events
