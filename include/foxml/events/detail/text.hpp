#pragma once
// Small text helpers shared by the library, the reader, the bindings and the CLI: one UTF-8
// validator, one hex digit table, one environment lookup.

#include <cstddef>
#include <cstdlib>
#include <string>
#include <string_view>

namespace foxml::events::detail {

// Length of the well-formed UTF-8 sequence at `p` (RFC 3629: no overlongs, no surrogates, nothing
// above U+10FFFF): 1 for ASCII, 0 when the bytes up to `end` are not one.
inline std::size_t utf8_sequence_length(const unsigned char* p, const unsigned char* end) noexcept {
  if (p == end) return 0;
  const unsigned c = p[0];
  const auto cont = [](unsigned b) { return (b & 0xC0u) == 0x80u; };
  const std::ptrdiff_t left = end - p;
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;
  if (c < 0xE0) return left >= 2 && cont(p[1]) ? 2 : 0;
  if (c < 0xF0) {
    if (left < 3) return 0;
    const unsigned b = p[1];
    const bool ok = c == 0xE0 ? (b >= 0xA0 && b <= 0xBF) : c == 0xED ? (b >= 0x80 && b <= 0x9F) : cont(b);
    return ok && cont(p[2]) ? 3 : 0;
  }
  if (c < 0xF5) {
    if (left < 4) return 0;
    const unsigned b = p[1];
    const bool ok = c == 0xF0 ? (b >= 0x90 && b <= 0xBF) : c == 0xF4 ? (b >= 0x80 && b <= 0x8F) : cont(b);
    return ok && cont(p[2]) && cont(p[3]) ? 4 : 0;
  }
  return 0;
}

// The same, for the start of `s`.
inline std::size_t utf8_sequence_length(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  return utf8_sequence_length(p, p + s.size());
}

// The value of hex digit `c` (either case), -1 when it is not one.
inline int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The hex digit for `v` (0-15).
inline char hex_digit(unsigned v, bool upper = false) noexcept {
  return (upper ? "0123456789ABCDEF" : "0123456789abcdef")[v & 0xFu];
}

// The value of environment variable `name`; empty when it is unset.
inline std::string env_value(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::string(value) : std::string();
}

}  // namespace foxml::events::detail
