#include "json_scan.hpp"

#include "foxml/events/detail/text.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__SSE2__) && !defined(FOXML_EVENTS_NO_SIMD)
#include <emmintrin.h>
#endif

namespace foxml::events::detail {
namespace {

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// Bytes that end the plain run of a string: quote, backslash, control characters (never allowed
// raw) and non-ASCII (to be UTF-8 checked).
bool is_special(unsigned char c) noexcept { return c == '"' || c == '\\' || c < 0x20 || c >= 0x80; }

// First special byte in [p, end), or end. Wide loads stay inside [p, end): the tail is scalar.
const char* find_special(const char* p, const char* end) noexcept {
#if defined(__SSE2__) && !defined(FOXML_EVENTS_NO_SIMD)  // the macro tests the portable path
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(0x20);
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    // A signed compare against 0x20 catches both control characters and bytes >= 0x80.
    const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                     _mm_cmplt_epi8(v, space));
    const int mask = _mm_movemask_epi8(hit);
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#else
  constexpr std::uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  while (end - p >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);  // memcpy: the input has no alignment to rely on
    const std::uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    // Zero-byte and less-than tests may flag bytes past the first hit but never miss one; the
    // scalar loop below finds the exact position.
    const std::uint64_t any = ((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w) | w;
    if (any & highs) break;
    p += 8;
  }
#endif
  while (p != end && !is_special(static_cast<unsigned char>(*p))) ++p;
  return p;
}

// Reads \uXXXX at p (p on the backslash); -1 when it is not one.
long read_u_escape(const char* p, const char* end) noexcept {
  if (end - p < 6 || p[0] != '\\' || p[1] != 'u') return -1;
  long v = 0;
  for (int i = 2; i < 6; ++i) {
    const int h = hex_value(p[i]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

void append_utf8(std::string& out, unsigned long cp) {
  char buf[4];
  std::size_t n;
  if (cp < 0x80) {
    buf[0] = static_cast<char>(cp);
    n = 1;
  } else if (cp < 0x800) {
    buf[0] = static_cast<char>(0xC0 | (cp >> 6));
    buf[1] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    buf[0] = static_cast<char>(0xE0 | (cp >> 12));
    buf[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    buf[2] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    buf[0] = static_cast<char>(0xF0 | (cp >> 18));
    buf[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    buf[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    buf[3] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 4;
  }
  out.append(buf, n);
}

// Reads the escape at p (on the backslash); returns the byte after it, or nullptr. `out` may be
// null when the caller only validates.
const char* scan_escape(const char* p, const char* end, std::string* out) {
  if (end - p < 2) return nullptr;
  char c;
  switch (p[1]) {
    case '"': c = '"'; break;
    case '\\': c = '\\'; break;
    case '/': c = '/'; break;
    case 'b': c = '\b'; break;
    case 'f': c = '\f'; break;
    case 'n': c = '\n'; break;
    case 'r': c = '\r'; break;
    case 't': c = '\t'; break;
    case 'u': {
      const long first = read_u_escape(p, end);
      if (first < 0 || (first >= 0xDC00 && first <= 0xDFFF)) return nullptr;  // a lone low surrogate
      if (first < 0xD800 || first > 0xDBFF) {
        if (out) append_utf8(*out, static_cast<unsigned long>(first));
        return p + 6;
      }
      const long second = read_u_escape(p + 6, end);  // a high surrogate needs its low half
      if (second < 0xDC00 || second > 0xDFFF) return nullptr;
      if (out) append_utf8(*out, 0x10000ul + ((static_cast<unsigned long>(first) - 0xD800) << 10) + (second - 0xDC00));
      return p + 12;
    }
    default: return nullptr;
  }
  if (out) out->push_back(c);
  return p + 2;
}

// Scans a string body from `run` (just after the opening quote) up to `q`, the first special
// byte already found; returns the byte after the closing quote, or nullptr.
const char* scan_string_rest(const char* run, const char* q, const char* end, std::string* out) {
  for (;;) {
    if (q == end) return nullptr;
    const auto c = static_cast<unsigned char>(*q);
    if (c == '"') {
      if (out) out->append(run, q);
      return q + 1;
    }
    if (c == '\\') {
      if (out) out->append(run, q);
      q = scan_escape(q, end, out);
      if (!q) return nullptr;
      run = q;
    } else if (c < 0x20) {
      return nullptr;
    } else {
      const std::size_t n =
          utf8_sequence_length(reinterpret_cast<const unsigned char*>(q), reinterpret_cast<const unsigned char*>(end));
      if (n == 0) return nullptr;
      q += n;  // valid UTF-8 stays in the run and is copied with it
    }
    q = find_special(q, end);
  }
}

// Whether a float the grammar accepted but from_chars found out of range is too big (true) or
// too small (false; it then reads as a signed zero, as strtod gives nlohmann).
bool overflows(const char* p, const char* end) {
  if (*p == '-') ++p;
  long long decimal_exponent = 0;  // of the first non-zero digit, as in d.ddd x 10^e
  bool found = false;
  long long position = 0;  // digits before the point count up from 0, after it count down from -1
  for (; p != end && is_digit(*p); ++p, ++position) {
    if (!found && *p != '0') decimal_exponent = -position, found = true;
  }
  const long long int_digits = position;
  if (p != end && *p == '.') {
    ++p;
    for (long long k = 1; p != end && is_digit(*p); ++p, ++k) {
      if (!found && *p != '0') decimal_exponent = 1 - int_digits - k, found = true;
    }
  }
  decimal_exponent += int_digits - 1;
  long long exponent = 0;
  if (p != end && (*p == 'e' || *p == 'E')) {
    ++p;
    const bool negative = p != end && *p == '-';
    if (p != end && (*p == '-' || *p == '+')) ++p;
    for (; p != end && is_digit(*p); ++p) exponent = std::min(exponent * 10 + (*p - '0'), 1'000'000'000ll);
    if (negative) exponent = -exponent;
  }
  return found && decimal_exponent + exponent > 0;
}

}  // namespace

bool nested_deeper_than(std::string_view s, std::size_t max_depth) noexcept {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return true;
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return false;
}

const char* type_name(value_kind kind) noexcept {
  switch (kind) {
    case value_kind::null: return "null";
    case value_kind::boolean: return "boolean";
    case value_kind::string: return "string";
    case value_kind::object: return "object";
    case value_kind::array: return "array";
    default: return "number";
  }
}

bool json_cursor::read_string(std::string& out) {
  const char* run = p_ + 1;  // p_ is on the opening quote
  const char* q = find_special(run, end_);
  if (q != end_ && *q == '"') {  // the common case: no escape, no control byte, ASCII only
    out.assign(run, q);
    p_ = q + 1;
    return true;
  }
  out.clear();
  const char* next = scan_string_rest(run, q, end_, &out);
  if (!next) return fail();
  p_ = next;
  return true;
}

bool json_cursor::read_key(std::string_view& key, std::string& scratch) {
  skip_ws();
  if (p_ == end_ || *p_ != '"') return fail();
  const char* run = p_ + 1;
  const char* q = find_special(run, end_);
  if (q != end_ && *q == '"') {
    key = std::string_view(run, static_cast<std::size_t>(q - run));
    p_ = q + 1;
    return true;
  }
  scratch.clear();
  const char* next = scan_string_rest(run, q, end_, &scratch);
  if (!next) return fail();
  p_ = next;
  key = scratch;
  return true;
}

bool json_cursor::skip_string() {
  const char* run = p_ + 1;
  const char* next = scan_string_rest(run, find_special(run, end_), end_, nullptr);
  if (!next) return fail();
  p_ = next;
  return true;
}

bool json_cursor::read_number(scanned_value& v) {
  if (p_ == end_) return fail();
  const char* const start = p_;
  const char* p = p_;
  const bool negative = *p == '-';
  if (negative) ++p;
  std::uint64_t magnitude = 0;
  bool too_big = false;
  if (p != end_ && *p == '0') {
    ++p;
  } else if (p != end_ && is_digit(*p)) {
    for (; p != end_ && is_digit(*p); ++p) {
      const auto digit = static_cast<unsigned>(*p - '0');
      if (magnitude > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) too_big = true;
      else magnitude = magnitude * 10 + digit;
    }
  } else {
    return fail();
  }
  bool fractional = false;
  if (p != end_ && *p == '.') {
    ++p;
    if (p == end_ || !is_digit(*p)) return fail();
    while (p != end_ && is_digit(*p)) ++p;
    fractional = true;
  }
  if (p != end_ && (*p == 'e' || *p == 'E')) {
    ++p;
    if (p != end_ && (*p == '+' || *p == '-')) ++p;
    if (p == end_ || !is_digit(*p)) return fail();
    while (p != end_ && is_digit(*p)) ++p;
    fractional = true;
  }
  p_ = p;
  // nlohmann's rule: integers that fit stay integers (unsigned unless negative), the rest are
  // doubles; the decoder's seq and integer rules depend on the difference.
  if (!fractional && !too_big) {
    if (!negative) {
      v.kind = value_kind::unsigned_int;
      v.u = magnitude;
      return true;
    }
    if (magnitude <= (1ull << 63)) {
      v.kind = value_kind::signed_int;
      v.i = magnitude == (1ull << 63) ? std::numeric_limits<std::int64_t>::min()
                                       : -static_cast<std::int64_t>(magnitude);
      return true;
    }
  }
  double d = 0.0;
  const auto parsed = std::from_chars(start, p, d);
  if (parsed.ec == std::errc::result_out_of_range) {
    if (overflows(start, p)) return fail();  // nlohmann: "number overflow"
    d = negative ? -0.0 : 0.0;
  } else if (parsed.ec != std::errc() || parsed.ptr != p || !std::isfinite(d)) {
    return fail();
  }
  v.kind = value_kind::floating;
  v.d = d;
  return true;
}

bool json_cursor::read_literal(scanned_value& v) {
  const auto left = end_ - p_;
  if (left >= 4 && std::memcmp(p_, "null", 4) == 0) {
    v.kind = value_kind::null;
    p_ += 4;
  } else if (left >= 4 && std::memcmp(p_, "true", 4) == 0) {
    v.kind = value_kind::boolean;
    v.boolean = true;
    p_ += 4;
  } else if (left >= 5 && std::memcmp(p_, "false", 5) == 0) {
    v.kind = value_kind::boolean;
    v.boolean = false;
    p_ += 5;
  } else {
    return fail();
  }
  return true;
}

bool json_cursor::read_value(scanned_value& v, std::string& str, std::size_t depth) {
  switch (peek()) {
    case '"':
      v.kind = value_kind::string;
      return read_string(str);
    case '{':
      v.kind = value_kind::object;
      return skip_value(depth);
    case '[':
      v.kind = value_kind::array;
      return skip_value(depth);
    case 'n':
    case 't':
    case 'f': return read_literal(v);
    default: return read_number(v);
  }
}

bool json_cursor::skip_value(std::size_t depth) {
  // Iterative, so a hostile nesting costs heap (bounded by the depth cap), never stack. Each
  // entry of `open` is the closer its container expects.
  std::string open;
  scanned_value scalar;
  for (;;) {
    const char c = peek();
    if (c == '{' || c == '[') {
      if (depth + open.size() + 1 > max_depth_) return fail(scan_error::too_deep);
      ++p_;
      open.push_back(c == '{' ? '}' : ']');
      if (consume(open.back())) {
        open.pop_back();
      } else {
        if (c == '{') {
          skip_ws();
          if (p_ == end_ || *p_ != '"' || !skip_string() || !expect(':')) return fail();
        }
        continue;  // the first member's value
      }
    } else if (c == '"') {
      if (!skip_string()) return false;
    } else if (c == 'n' || c == 't' || c == 'f') {
      if (!read_literal(scalar)) return false;
    } else if (!read_number(scalar)) {
      return false;
    }
    // A value is done: close containers that end here, or move on to the next member.
    for (;;) {
      if (open.empty()) return true;
      if (consume(open.back())) {
        open.pop_back();
        continue;
      }
      if (!expect(',')) return false;
      if (open.back() == '}') {
        skip_ws();
        if (p_ == end_ || *p_ != '"' || !skip_string() || !expect(':')) return fail();
      }
      break;
    }
  }
}

}  // namespace foxml::events::detail
