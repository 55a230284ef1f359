#pragma once
// Appending JSON values to a std::string: the worker's encoder is built from these.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace foxml::events::detail {

// Appends `s` as a JSON string (with quotes). Invalid UTF-8 is replaced by U+FFFD, control
// characters are escaped. At most `limit` bytes of `s` are used; a cut string ends with a marker
// saying how many bytes were left out. Returns true when it cut.
bool append_json_string(std::string& out, std::string_view s,
                        std::size_t limit = std::numeric_limits<std::size_t>::max());

// Appends a double in its shortest round-trip form, always with a fraction or exponent
// (`100.0`, not `100`). NaN and infinities become the strings "NaN", "Infinity", "-Infinity".
void append_json_number(std::string& out, double value);

void append_json_integer(std::string& out, std::int64_t value);
void append_json_unsigned(std::string& out, std::uint64_t value);

// Formats Unix nanoseconds as `2026-01-21T10:00:00.123456+00:00`, caching the date and time of
// the last second it saw (consecutive events share it).
class timestamp_formatter {
 public:
  void append(std::string& out, std::int64_t unix_ns);

 private:
  std::int64_t cached_second_ = std::numeric_limits<std::int64_t>::min();
  char prefix_[20] = {};  // "YYYY-MM-DDTHH:MM:SS"
};

}  // namespace foxml::events::detail
