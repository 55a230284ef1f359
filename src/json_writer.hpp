#pragma once
// Writing JSON values straight into a line_batch's buffer through a raw cursor: the worker's
// encoder is built from these. Callers reserve room with ensure() before unchecked writes.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

#include "foxml/events/sink.hpp"

namespace foxml::events::detail {

class json_out {
 public:
  explicit json_out(line_batch& batch) : batch_(batch), storage_(batch.storage()) {
    pos_ = batch.bytes();
    if (storage_.size() < pos_ + 4096) storage_.resize(pos_ + 4096);
  }
  json_out(const json_out&) = delete;
  json_out& operator=(const json_out&) = delete;

  // Makes room for `n` more bytes.
  void ensure(std::size_t n) {
    if (storage_.size() - pos_ < n) storage_.resize(std::max(storage_.size() * 2, pos_ + n));
  }
  void put(char c) { storage_[pos_++] = c; }  // after ensure()
  void push(char c) {
    ensure(1);
    put(c);
  }
  void raw(std::string_view s) {
    ensure(s.size());
    std::memcpy(storage_.data() + pos_, s.data(), s.size());
    pos_ += s.size();
  }
  template <std::size_t N>
  void literal(const char (&s)[N]) {
    raw(std::string_view(s, N - 1));
  }
  char* cursor() { return storage_.data() + pos_; }
  void advance_to(char* p) { pos_ = static_cast<std::size_t>(p - storage_.data()); }

  std::size_t position() const noexcept { return pos_; }
  void rewind(std::size_t pos) noexcept { pos_ = pos; }
  // Makes everything written so far part of the batch's bytes.
  void finish() noexcept { batch_.set_bytes(pos_); }

 private:
  line_batch& batch_;
  std::string& storage_;
  std::size_t pos_;
};

// Writes `s` as a JSON string (with quotes). Invalid UTF-8 is replaced by U+FFFD, control
// characters are escaped. At most `limit` bytes of `s` are used; a cut string ends with a marker
// saying how many bytes were left out. Returns true when it cut.
bool write_json_string(json_out& out, std::string_view s, std::size_t limit = std::numeric_limits<std::size_t>::max());

// Writes a double in its shortest round-trip form, always with a fraction or exponent (`100.0`,
// not `100`). NaN and infinities become the strings "NaN", "Infinity", "-Infinity".
void write_json_number(json_out& out, double value);

void write_json_integer(json_out& out, std::int64_t value);
void write_json_unsigned(json_out& out, std::uint64_t value);

// Appends a JSON string to a std::string (for headers built once, not per event).
void append_json_string(std::string& out, std::string_view s);
void append_json_integer(std::string& out, std::int64_t value);

// Formats Unix nanoseconds as `2026-01-21T10:00:00.123456+00:00`, caching the date and time of
// the last second it saw (consecutive events share it).
class timestamp_formatter {
 public:
  void write(json_out& out, std::int64_t unix_ns);

 private:
  std::int64_t cached_second_ = std::numeric_limits<std::int64_t>::min();
  char prefix_[20] = {};  // "YYYY-MM-DDTHH:MM:SS"
};

}  // namespace foxml::events::detail
