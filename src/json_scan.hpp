#pragma once
// A strict RFC 8259 scanner for the decoder's hot path: strings are unescaped and UTF-8 checked
// straight into their destination, numbers keep nlohmann's integer/unsigned/float distinction
// (the decoder's rules depend on it), and values nobody asked for are validated without building
// anything. Internal to the library.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace foxml::events::detail {

enum class scan_error : std::uint8_t { none, malformed, too_deep };

// What a scalar read left behind; objects and arrays read as `object`/`array` after being skipped.
enum class value_kind : std::uint8_t { null, boolean, string, unsigned_int, signed_int, floating, object, array };

struct scanned_value {
  value_kind kind = value_kind::null;
  bool boolean = false;
  std::uint64_t u = 0;  // unsigned_int
  std::int64_t i = 0;   // signed_int (only negative numbers and -0, as nlohmann)
  double d = 0.0;       // floating
};

// nlohmann's type_name() of a value of this kind, for the decoder's error messages.
const char* type_name(value_kind kind) noexcept;

// Whether the arrays/objects of JSON text `s` nest deeper than `max_depth` (brackets inside
// strings do not count). Linear and without recursion, so hostile text costs one pass.
bool nested_deeper_than(std::string_view s, std::size_t max_depth) noexcept;

class json_cursor {
 public:
  json_cursor(const char* first, const char* last, std::size_t max_depth) noexcept
      : p_(first), end_(last), max_depth_(max_depth) {}

  bool failed() const noexcept { return error_ != scan_error::none; }
  scan_error error() const noexcept { return error_; }
  bool fail(scan_error e = scan_error::malformed) noexcept {
    if (error_ == scan_error::none) error_ = e;
    p_ = end_;  // every later read sees the end and fails fast
    return false;
  }

  bool at_end() const noexcept { return p_ == end_; }
  std::size_t max_depth() const noexcept { return max_depth_; }

  void skip_ws() noexcept {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  // Skips whitespace and returns the next byte without consuming it (0 at the end).
  char peek() noexcept {
    skip_ws();
    return p_ != end_ ? *p_ : '\0';
  }
  // Skips whitespace, then consumes `c` or fails.
  bool expect(char c) noexcept {
    skip_ws();
    if (p_ != end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return fail();
  }
  // After whitespace, consumes `c` when it is next.
  bool consume(char c) noexcept {
    skip_ws();
    if (p_ != end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }

  // Reads a string (the cursor on its opening quote) into `out`, replacing its content.
  bool read_string(std::string& out);
  // Reads a string whose text is usually its own bytes (an object key): a view of the input when
  // it holds no escape, else of `scratch`, which then holds the unescaped text.
  bool read_key(std::string_view& key, std::string& scratch);
  // Reads any value. A string lands in `str`; an object or array at `depth` + 1 is validated and
  // skipped (the caller's container is at `depth`).
  bool read_value(scanned_value& v, std::string& str, std::size_t depth);
  // Validates and skips any value whose container is at `depth`.
  bool skip_value(std::size_t depth);

  const char* position() const noexcept { return p_; }

 private:
  bool read_number(scanned_value& v);
  bool read_literal(scanned_value& v);
  bool skip_string();
  bool append_escape(std::string& out);
  bool string_slow(std::string& out, const char* run_start);

  const char* p_;
  const char* end_;
  std::size_t max_depth_;
  scan_error error_ = scan_error::none;
};

}  // namespace foxml::events::detail
