#include "json_writer.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>

namespace foxml::events::detail {
namespace {

// 1 for bytes that can be copied into a JSON string as they are: printable ASCII but `"` and `\`.
constexpr auto make_plain_table() {
  struct table_t {
    bool plain[256];
  } table{};
  for (int c = 0x20; c < 0x80; ++c) table.plain[c] = (c != '"' && c != '\\');
  return table;
}
constexpr auto plain_table = make_plain_table();

constexpr char hex_digits[] = "0123456789abcdef";

void append_escaped_control(std::string& out, unsigned char c) {
  switch (c) {
    case '"': out.append("\\\""); return;
    case '\\': out.append("\\\\"); return;
    case '\n': out.append("\\n"); return;
    case '\r': out.append("\\r"); return;
    case '\t': out.append("\\t"); return;
    case '\b': out.append("\\b"); return;
    case '\f': out.append("\\f"); return;
    default: {
      const char esc[6] = {'\\', 'u', '0', '0', hex_digits[c >> 4], hex_digits[c & 0xF]};
      out.append(esc, 6);
    }
  }
}

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF), or 0 when it is not well formed.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  const std::size_t left = s.size() - i;
  auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  if (b0 >= 0xC2 && b0 <= 0xDF) return (left >= 2 && is_continuation(at(1))) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (left < 3) return 0;
    const unsigned char b1 = at(1);
    const bool second_ok = b0 == 0xE0 ? (b1 >= 0xA0 && b1 <= 0xBF)
                           : b0 == 0xED ? (b1 >= 0x80 && b1 <= 0x9F)
                                        : is_continuation(b1);
    return (second_ok && is_continuation(at(2))) ? 3 : 0;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (left < 4) return 0;
    const unsigned char b1 = at(1);
    const bool second_ok = b0 == 0xF0 ? (b1 >= 0x90 && b1 <= 0xBF)
                           : b0 == 0xF4 ? (b1 >= 0x80 && b1 <= 0x8F)
                                        : is_continuation(b1);
    return (second_ok && is_continuation(at(2)) && is_continuation(at(3))) ? 4 : 0;
  }
  return 0;
}

constexpr char replacement_character[] = "\xEF\xBF\xBD";

void append_two_digits(char* out, unsigned v) {
  out[0] = static_cast<char>('0' + v / 10);
  out[1] = static_cast<char>('0' + v % 10);
}

}  // namespace

bool append_json_string(std::string& out, std::string_view s, std::size_t limit) {
  bool cut = false;
  std::size_t end = s.size();
  if (end > limit) {
    cut = true;
    end = limit;
  }
  out.push_back('"');
  std::size_t i = 0;
  while (i < end) {
    std::size_t run = i;
    while (run < end && plain_table.plain[static_cast<unsigned char>(s[run])]) ++run;
    out.append(s.data() + i, run - i);
    i = run;
    if (i >= end) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      append_escaped_control(out, c);
      ++i;
      continue;
    }
    const std::size_t len = utf8_sequence_length(s, i);
    if (len == 0) {
      out.append(replacement_character, 3);
      ++i;
    } else if (i + len > end) {
      break;  // the cut falls inside this character: leave it out whole
    } else {
      out.append(s.data() + i, len);
      i += len;
    }
  }
  if (cut) {
    out.append("\xE2\x80\xA6[truncated ");  // "…[truncated N bytes]"
    append_json_unsigned(out, s.size() - i);
    out.append(" bytes]");
  }
  out.push_back('"');
  return cut;
}

void append_json_number(std::string& out, double value) {
  if (std::isnan(value)) {
    out.append("\"NaN\"");
    return;
  }
  if (std::isinf(value)) {
    out.append(value > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    return;
  }
  char buf[32];
  const auto result = std::to_chars(buf, buf + sizeof(buf), value);
  const std::size_t n = static_cast<std::size_t>(result.ptr - buf);
  out.append(buf, n);
  // Keep floats visibly floats for consumers that type by the token (Python's json, serde).
  if (std::memchr(buf, '.', n) == nullptr && std::memchr(buf, 'e', n) == nullptr) out.append(".0");
}

void append_json_integer(std::string& out, std::int64_t value) {
  char buf[24];
  const auto result = std::to_chars(buf, buf + sizeof(buf), value);
  out.append(buf, static_cast<std::size_t>(result.ptr - buf));
}

void append_json_unsigned(std::string& out, std::uint64_t value) {
  char buf[24];
  const auto result = std::to_chars(buf, buf + sizeof(buf), value);
  out.append(buf, static_cast<std::size_t>(result.ptr - buf));
}

void timestamp_formatter::append(std::string& out, std::int64_t unix_ns) {
  if (unix_ns < 0) unix_ns = 0;
  const std::int64_t second = unix_ns / 1'000'000'000;
  const auto micros = static_cast<unsigned>((unix_ns % 1'000'000'000) / 1000);
  if (second != cached_second_) {
    const auto t = static_cast<std::time_t>(second);
    std::tm tm{};
    gmtime_r(&t, &tm);
    const unsigned year = static_cast<unsigned>(tm.tm_year + 1900);
    append_two_digits(prefix_, year / 100);
    append_two_digits(prefix_ + 2, year % 100);
    prefix_[4] = '-';
    append_two_digits(prefix_ + 5, static_cast<unsigned>(tm.tm_mon + 1));
    prefix_[7] = '-';
    append_two_digits(prefix_ + 8, static_cast<unsigned>(tm.tm_mday));
    prefix_[10] = 'T';
    append_two_digits(prefix_ + 11, static_cast<unsigned>(tm.tm_hour));
    prefix_[13] = ':';
    append_two_digits(prefix_ + 14, static_cast<unsigned>(tm.tm_min));
    prefix_[16] = ':';
    append_two_digits(prefix_ + 17, static_cast<unsigned>(tm.tm_sec));
    cached_second_ = second;
  }
  char buf[32];
  std::memcpy(buf, prefix_, 19);
  buf[19] = '.';
  unsigned rest = micros;
  for (int k = 25; k >= 20; --k) {
    buf[k] = static_cast<char>('0' + rest % 10);
    rest /= 10;
  }
  std::memcpy(buf + 26, "+00:00", 6);
  out.append(buf, 32);
}

}  // namespace foxml::events::detail
