#pragma once
/// The source interface: something that yields raw JSON lines (a followed file, a socket server, a
/// ZeroMQ subscriber). Sources only split bytes into lines; decoding happens in event_stream.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace foxml::events::reader {

/// Where a line came from, so a malformed one can be reported precisely.
struct line_position {
  std::string_view origin;   ///< the source's description (`file:///...`, `unix:///...#3`...)
  std::uint64_t line = 0;    ///< 1-based line (or message) number within the origin
  std::uint64_t offset = 0;  ///< byte offset of the line's start within the origin
};

/// One line handed out by a source, without its `\n`. Valid only during the handler call.
struct raw_line {
  std::string_view text;
  line_position position;
  /// The line was longer than the source's cap; `text` holds only its first cap bytes and the
  /// rest was skipped.
  bool oversized = false;
};

using line_handler = std::function<void(const raw_line&)>;

/// A producer of lines. poll() is called from one thread; wake() may be called from any thread
/// (and from a signal handler: it only writes to an eventfd).
class source {
 public:
  virtual ~source() = default;

  /// Hands every complete line available now to `on_line`, waiting up to `timeout` for input when
  /// there is none (blocked in epoll/inotify, never spinning). Returns false once the source has
  /// nothing more to give (a file read without following, at its end); true otherwise.
  virtual bool poll(std::chrono::milliseconds timeout, const line_handler& on_line) = 0;

  /// Makes a poll() blocked in another thread return early.
  virtual void wake() noexcept = 0;

  /// Returns a short description such as `file:///tmp/events.jsonl`.
  virtual std::string describe() const = 0;

  /// Returns the source's own counters as one JSON object (`{"bytes":..,"rotations":..}`), named
  /// as in its stats struct, for reports (Python's `stats()["source"]`, a bridge's stats). Call it
  /// from the thread that polls.
  virtual std::string stats_json() const = 0;
};

}  // namespace foxml::events::reader
