#pragma once
/// Decoding JSON lines into events (the reader's side of the codec; the emitter's worker encodes).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "foxml/events/event.hpp"

namespace foxml::events {

/// The deepest nesting of arrays and objects a line may have by default (the line's own object is
/// level 1). The emitter writes nothing deeper, so the reader accepts every line it writes.
inline constexpr std::size_t max_json_depth = 32;
/// The deepest run config the emitter writes as is (the config object is level 1; it sits one
/// level below the line's object). A deeper one is replaced by a `_too_deep_config` marker.
inline constexpr std::size_t max_config_depth = max_json_depth - 1;

/// Limits that keep a hostile or broken line from costing more than it should.
struct decode_limits {
  std::size_t max_line_bytes = (1u << 20) + 4096;  ///< a little over the emitter's default cap
  std::size_t max_depth = max_json_depth;          ///< nesting of arrays and objects
};

/// The outcome of decoding one line: an event, or an error saying what is wrong with the line.
struct decode_result {
  std::optional<event> value;
  std::string error;

  explicit operator bool() const noexcept { return value.has_value(); }
};

/// Decodes one line (a trailing `\n` or `\r\n` is allowed). Never throws for bad input: malformed
/// JSON, a missing `event_type` or `run_id`, a wrong type for a known field, a line over the size
/// cap or nested deeper than the depth cap all come back as an error.
decode_result decode_line(std::string_view line, const decode_limits& limits = {});

/// Parses `2026-01-21T10:00:00.123456+00:00` (any offset, fraction optional) into microseconds
/// since the epoch.
std::optional<std::int64_t> parse_timestamp_us(std::string_view text);

}  // namespace foxml::events
