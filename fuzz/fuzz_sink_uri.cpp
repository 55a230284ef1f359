// libFuzzer harness: the sink URI parser behind make_sink. Malformed text is refused with
// std::invalid_argument (the documented error); nothing else may escape, and nothing crashes.
// There is no source URI parser to fuzz: readers take their sources as separate options
// (a path, a socket path, a ZeroMQ endpoint) that are passed as they are.

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "foxml/events/sink_uri.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto list = foxml::events::parse_sink_list(text);
    if (list.empty()) __builtin_trap();  // an empty list must be refused, not returned
    for (const auto& chain : list) {
      if (chain.empty()) __builtin_trap();
    }
  } catch (const std::invalid_argument&) {
  }
  try {
    (void)foxml::events::parse_sink_uri(text);
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
