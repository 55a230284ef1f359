// The socket server's acknowledgement scan (line_splitter.hpp, top_level_seq) against the plain
// byte-by-byte scan it replaced, over emitter lines and mutations that put quotes, backslash runs,
// nested "seq" keys and "seq" strings where they can fool a scanner: the same verdict and value.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <string_view>

#include "reader/line_splitter.hpp"

namespace {

// The former scanner, kept as the reference: each backslash skips the byte after it.
bool reference_seq(std::string_view s, std::uint64_t& out) {
  int depth = 0;
  bool in_string = false, key_is_seq = false;
  std::size_t string_start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
        key_is_seq = depth == 1 && s.substr(string_start, i - string_start) == "seq";
      }
      continue;
    }
    switch (c) {
      case '"': in_string = true; string_start = i + 1; break;
      case '{': case '[': ++depth; key_is_seq = false; break;
      case '}': case ']': --depth; key_is_seq = false; break;
      case ',': key_is_seq = false; break;
      case ':':
        if (key_is_seq) {
          std::size_t j = i + 1;
          while (j < s.size() && s[j] == ' ') ++j;
          std::uint64_t v = 0;
          std::size_t digits = 0;
          for (; j < s.size() && s[j] >= '0' && s[j] <= '9' && digits < 19; ++j, ++digits) v = v * 10 + (s[j] - '0');
          if (digits == 0) return false;
          out = v;
          return true;
        }
        break;
      default: break;
    }
  }
  return false;
}

void check_same(const std::string& line) {
  std::uint64_t a = 0, b = 0;
  const bool found = foxml::events::reader::detail::top_level_seq(line, a);
  const bool expected = reference_seq(line, b);
  INFO(line);
  CHECK(found == expected);
  if (found && expected) CHECK(a == b);
}

}  // namespace

TEST_CASE("ack seq scan: emitter lines and the tricky spots agree with the byte-by-byte scan") {
  const std::string base =
      R"({"event_type":"log","run_id":"r\"seq\":1","timestamp":"2026-11-24T06:00:00.000000+00:00",)"
      R"("seq":42,"pid":7,"host":"h","message":"a \\\" b \\\\","seq_note":{"seq":9}})";
  check_same(base);
  check_same(R"({"a":"x\\","seq":5})");           // an even backslash run: the quote closes the string
  check_same(R"({"a":"x\\\","seq":5"})");         // an odd run: it does not
  check_same(R"({"nested":{"seq":3},"seq":4})");  // only the top level counts
  check_same(R"({"seq":"7"})");
  check_same(R"({"a":"unterminated)");
  check_same(R"({"a":"ends in a backslash\)");
  check_same("");

  // Mutations: bytes that matter to the scanner put anywhere, many times over.
  std::mt19937 rng(15);
  const std::string alphabet = "\"\\{}[],: seq0123456789";
  for (int round = 0; round < 20000; ++round) {
    std::string line = base;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = rng() % (line.size() + 1);
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0: line.insert(line.begin() + static_cast<std::ptrdiff_t>(at), c); break;
        case 1: if (at < line.size()) line[at] = c; break;
        default: if (at < line.size()) line.erase(at, 1); break;
      }
    }
    check_same(line);
  }
}
