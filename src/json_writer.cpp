#include "json_writer.hpp"

#include "foxml/events/detail/text.hpp"

#include "civil_date.hpp"

#include <fmt/compile.h>
#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstring>

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

char* write_escaped_control(char* p, unsigned char c) {
  char second = 0;
  switch (c) {
    case '"': second = '"'; break;
    case '\\': second = '\\'; break;
    case '\n': second = 'n'; break;
    case '\r': second = 'r'; break;
    case '\t': second = 't'; break;
    case '\b': second = 'b'; break;
    case '\f': second = 'f'; break;
    default: {
      const char esc[6] = {'\\', 'u', '0', '0', hex_digit(c >> 4), hex_digit(c)};
      std::memcpy(p, esc, 6);
      return p + 6;
    }
  }
  p[0] = '\\';
  p[1] = second;
  return p + 2;
}

constexpr char replacement_character[] = "\xEF\xBF\xBD";

void append_two_digits(char* out, unsigned v) {
  out[0] = static_cast<char>('0' + v / 10);
  out[1] = static_cast<char>('0' + v % 10);
}

}  // namespace

bool write_json_string(json_out& out, std::string_view s, std::size_t limit) {
  bool cut = false;
  std::size_t end = s.size();
  if (end > limit) {
    cut = true;
    end = limit;
  }
  // Worst case: every byte becomes \u00XX (6 bytes); plus quotes and the cut marker.
  out.ensure(end * 6 + 64);
  char* p = out.cursor();
  *p++ = '"';
  std::size_t i = 0;
  while (i < end) {
    std::size_t run = i;
    while (run < end && plain_table.plain[static_cast<unsigned char>(s[run])]) ++run;
    std::memcpy(p, s.data() + i, run - i);
    p += run - i;
    i = run;
    if (i >= end) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      p = write_escaped_control(p, c);
      ++i;
      continue;
    }
    const auto* bytes = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t len = utf8_sequence_length(bytes + i, bytes + s.size());
    if (len == 0) {
      std::memcpy(p, replacement_character, 3);
      p += 3;
      ++i;
    } else if (i + len > end) {
      break;  // the cut falls inside this character: leave it out whole
    } else {
      std::memcpy(p, s.data() + i, len);
      p += len;
      i += len;
    }
  }
  if (cut) {
    constexpr std::string_view marker = "\xE2\x80\xA6[truncated ";  // "…[truncated N bytes]"
    std::memcpy(p, marker.data(), marker.size());
    p += marker.size();
    p = std::to_chars(p, p + 24, s.size() - i).ptr;
    std::memcpy(p, " bytes]", 7);
    p += 7;
  }
  *p++ = '"';
  out.advance_to(p);
  return cut;
}

void write_json_number(json_out& out, double value) {
  if (std::isnan(value)) {
    out.literal("\"NaN\"");
    return;
  }
  if (std::isinf(value)) {
    value > 0 ? out.literal("\"Infinity\"") : out.literal("\"-Infinity\"");
    return;
  }
  out.ensure(40);
  char* begin = out.cursor();
  // fmt's Dragonbox: the shortest representation that reads back to the same double.
  char* end = fmt::format_to(begin, FMT_COMPILE("{}"), value);
  bool has_fraction_or_exponent = false;
  for (const char* c = begin; c != end; ++c) {
    if (*c == '.' || *c == 'e') {
      has_fraction_or_exponent = true;
      break;
    }
  }
  // Keep floats visibly floats for consumers that type by the token (Python's json, serde).
  if (!has_fraction_or_exponent) {
    end[0] = '.';
    end[1] = '0';
    end += 2;
  }
  out.advance_to(end);
}

void write_json_integer(json_out& out, std::int64_t value) {
  out.ensure(24);
  out.advance_to(std::to_chars(out.cursor(), out.cursor() + 24, value).ptr);
}

void write_json_unsigned(json_out& out, std::uint64_t value) {
  out.ensure(24);
  out.advance_to(std::to_chars(out.cursor(), out.cursor() + 24, value).ptr);
}

void append_json_string(std::string& out, std::string_view s) {
  line_batch scratch;
  json_out writer(scratch);
  write_json_string(writer, s);
  writer.finish();
  out.append(scratch.text());
}

void append_json_integer(std::string& out, std::int64_t value) {
  char buf[24];
  out.append(buf, static_cast<std::size_t>(std::to_chars(buf, buf + sizeof(buf), value).ptr - buf));
}

void timestamp_formatter::write(json_out& out, std::int64_t unix_ns) {
  if (unix_ns < 0) unix_ns = 0;
  const std::int64_t second = unix_ns / 1'000'000'000;
  const auto micros = static_cast<unsigned>((unix_ns % 1'000'000'000) / 1000);
  if (second != cached_second_) {
    // Not gmtime_r: it takes glibc's tzset lock, which a forked child can inherit held by a
    // parent thread, and then the child's worker never writes a line.
    const civil_date date = civil_from_days(second / 86400);
    const auto in_day = static_cast<unsigned>(second % 86400);
    const auto year = static_cast<unsigned>(date.year);
    append_two_digits(prefix_, year / 100);
    append_two_digits(prefix_ + 2, year % 100);
    prefix_[4] = '-';
    append_two_digits(prefix_ + 5, date.month);
    prefix_[7] = '-';
    append_two_digits(prefix_ + 8, date.day);
    prefix_[10] = 'T';
    append_two_digits(prefix_ + 11, in_day / 3600);
    prefix_[13] = ':';
    append_two_digits(prefix_ + 14, in_day / 60 % 60);
    prefix_[16] = ':';
    append_two_digits(prefix_ + 17, in_day % 60);
    cached_second_ = second;
  }
  out.ensure(32);
  char* buf = out.cursor();
  std::memcpy(buf, prefix_, 19);
  buf[19] = '.';
  unsigned rest = micros;
  for (int k = 25; k >= 20; --k) {
    buf[k] = static_cast<char>('0' + rest % 10);
    rest /= 10;
  }
  std::memcpy(buf + 26, "+00:00", 6);
  out.advance_to(buf + 32);
}

}  // namespace foxml::events::detail
