#pragma once
/// The dashboard's files and Chart.js, embedded in the program at build time (embed_assets.cmake):
/// served offline, with no file lookups at run time.

#include <string_view>
#include <vector>

namespace events_bridge {

struct asset {
  std::string_view path;          ///< URL path (`/index.html`, `/vendor/chart.min.js`)
  std::string_view content_type;
  std::string_view etag;          ///< quoted SHA-1 of the bytes
  std::string_view body;
};

/// Every embedded file.
const std::vector<asset>& assets();

}  // namespace events_bridge
