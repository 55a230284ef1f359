// libFuzzer harness: the socket source's line splitter and its cheap seq scan. The first byte
// picks the line cap, the second where the input is cut into reads; the lines handed out must be
// what splitting the whole input at '\n' gives (cut at the cap, '\r' before '\n' dropped).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "line_splitter.hpp"

namespace reader = foxml::events::reader;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t cap = 1 + data[0] % 64;
  const std::size_t chunk = 1 + data[1] % 16;
  const std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);

  std::vector<std::string> got;
  std::vector<bool> oversized;
  reader::detail::line_splitter splitter(cap);
  auto on_line = [&](const reader::raw_line& line) {
    got.emplace_back(line.text);
    oversized.push_back(line.oversized);
    std::uint64_t seq = 0;
    (void)reader::detail::top_level_seq(line.text, seq);
  };
  for (std::size_t at = 0; at < input.size(); at += chunk) splitter.feed(input.substr(at, chunk), "fuzz", on_line);
  splitter.finish("fuzz", on_line);

  std::vector<std::string> expected;
  std::size_t start = 0;
  while (start < input.size()) {
    std::size_t end = input.find('\n', start);
    if (end == std::string_view::npos) end = input.size();
    std::string line(input.substr(start, std::min(end - start, cap)));
    if (!line.empty() && line.back() == '\r') line.pop_back();
    expected.push_back(std::move(line));
    start = end + 1;
  }
  if (got != expected) __builtin_trap();
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (got[i].size() > cap) __builtin_trap();
  }
  return 0;
}
