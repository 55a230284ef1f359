// libFuzzer harness: the reader's line decoder. Any bytes decode to an event or an error, within
// the line cap and depth cap, never a crash, a leak or undefined behaviour.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "foxml/events/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  const auto result = foxml::events::decode_line(line);
  if (!result && result.error.empty()) __builtin_trap();  // every refusal says why
  // Tight limits reach the cap checks with small inputs.
  foxml::events::decode_limits tight;
  tight.max_line_bytes = 64;
  tight.max_depth = 3;
  const auto capped = foxml::events::decode_line(line, tight);
  if (capped && size > tight.max_line_bytes + 2) __builtin_trap();  // +2: a trailing \r\n is allowed
  return 0;
}
