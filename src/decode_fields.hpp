#pragma once
// The decoder's map from wire keys to `event` members, and the state one line's decode keeps.
// Internal to the library (decode.cpp reads the top-level object, decode_fields.cpp the values).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "foxml/events/event.hpp"
#include "foxml/events/schema.hpp"
#include "json_scan.hpp"

namespace foxml::events::detail {

// Every key the decoder knows: the header keys, then one per wire key (schema_keys.hpp). Those
// before `field_count` can be wrong-typed and are reported in the order their key first appeared,
// as the DOM decoder did.
enum class field : std::uint8_t {
  timestamp, seq, pid, host, rank, world_size, local_rank, truncated,
#define FOXML_EVENTS_FIELD_ENUM(key, member, kind) key,
  FOXML_EVENTS_WIRE_KEYS(FOXML_EVENTS_FIELD_ENUM)
#undef FOXML_EVENTS_FIELD_ENUM
  field_count,
  event_type = field_count, run_id, unknown,
};
inline constexpr std::size_t field_count = static_cast<std::size_t>(field::field_count);
static_assert(field_count <= 64, "wrong-type flags live in one 64-bit mask");

field lookup_field(std::string_view key) noexcept;
std::string_view field_name(field f) noexcept;

struct decode_state {
  // Duplicate keys: the last value wins but the first position counts (nlohmann's ordered_json),
  // so a wrong type is an error only while no later value of the same key replaces it.
  std::uint64_t seen = 0;
  std::uint64_t wrong = 0;
  std::uint8_t order[field_count];
  value_kind wrong_kind[field_count];
  std::uint8_t next_order = 0;

  bool has_type = false;  // the last event_type was a string, held in type_text
  bool has_run_id = false;
  std::string type_text;
  std::string scratch;      // string values that land nowhere ("NaN" for a number...)
  std::string key_scratch;  // keys with escapes
  std::vector<std::size_t> bad_metrics;

  void note(field f, bool ok, value_kind kind) noexcept {
    const auto i = static_cast<std::size_t>(f);
    const std::uint64_t bit = std::uint64_t{1} << i;
    if (!(seen & bit)) {
      seen |= bit;
      order[i] = next_order++;
    }
    if (ok) {
      wrong &= ~bit;
    } else {
      wrong |= bit;
      wrong_kind[i] = kind;
    }
  }
};

// Reads the value of member `f` of the top-level object (the cursor before the value) into `ev`.
bool read_field(json_cursor& c, field f, event& ev, decode_state& st);

}  // namespace foxml::events::detail
