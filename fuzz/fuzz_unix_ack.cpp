// libFuzzer harness: the Unix socket sink's acknowledgement parser. parse_ack is internal to
// unix_socket_sink.cpp, so this harness compiles that file into itself (and so does not need the
// library's copy of it). Oracle: a line is an ack exactly when it is `{"ack_seq":N}` with optional
// blanks (space, tab, CR) around tokens and N a decimal that fits in 64 bits; the value must round-trip.

#include "../src/unix_socket_sink.cpp"  // NOLINT(bugprone-suspicious-include)

#include <cstdint>
#include <regex>
#include <string>

namespace {

// The reference: the grammar written as a regular expression, then the 64-bit range.
bool reference_ack(std::string_view s, std::uint64_t& value) {
  static const std::regex grammar(R"(^[ \t\r]*\{[ \t\r]*"ack_seq"[ \t\r]*:[ \t\r]*([0-9]+)[ \t\r]*\}[ \t\r]*$)");
  std::match_results<std::string_view::const_iterator> match;
  if (!std::regex_match(s.begin(), s.end(), match, grammar)) return false;
  unsigned __int128 v = 0;
  for (char c : std::string_view(&*match[1].first, static_cast<std::size_t>(match[1].length()))) {
    v = v * 10 + static_cast<unsigned>(c - '0');
    if (v > UINT64_MAX) return false;
  }
  value = static_cast<std::uint64_t>(v);
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  std::uint64_t got = 0, want = 0;
  const bool is_ack = foxml::events::parse_ack(line, got);
  const bool should = reference_ack(line, want);
  if (is_ack != should || (is_ack && got != want)) __builtin_trap();
  return 0;
}
