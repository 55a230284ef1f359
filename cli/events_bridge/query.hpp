#pragma once
/// Splitting a request target into its path and decoded query parameters.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace events_bridge {

struct target {
  std::string path;                          ///< percent-decoded
  std::map<std::string, std::string> query;  ///< decoded; a repeated key keeps its last value
};

/// Parses `/path?a=1&b=x%20y`; empty when the target is not origin-form or its escapes are bad.
std::optional<target> parse_target(std::string_view text);

/// Splits `a,b,,c` into its non-empty parts.
std::vector<std::string> split_list(std::string_view text);

/// Parses a whole unsigned decimal number; empty for anything else (sign, spaces, overflow).
std::optional<std::uint64_t> parse_count(std::string_view text);

/// Returns the value of cookie `name` in a Cookie header, if present.
std::optional<std::string> cookie_value(std::string_view header, std::string_view name);

/// Compares without an early exit, so a token's prefix cannot be found by timing.
bool same_secret(std::string_view a, std::string_view b);

}  // namespace events_bridge
