#pragma once
/// The wire schema: for every event type, its fields in the order they are written, with JSON types.
/// The encoder writes from this table and the decoder checks against it: one schema, one place.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "foxml/events/event.hpp"

namespace foxml::events {

/// JSON shape of a field's value.
enum class field_kind : std::uint8_t {
  string,       ///< JSON string
  number,       ///< JSON number; NaN/Infinity/-Infinity travel as the strings "NaN", "Infinity", "-Infinity"
  integer,      ///< JSON integer
  boolean,      ///< true / false
  metric_map,   ///< object of name -> number (same non-finite rule as `number`)
  json_object,  ///< any JSON object (run config)
  string_list,  ///< array of strings (tags)
  gpu_list,     ///< array of GPU objects (see `gpu_fields`)
};

/// One field of an event type. `nullable` fields may be `null`; `optional` ones may be absent.
struct field_spec {
  std::string_view key;
  field_kind kind;
  bool nullable;
  bool optional;
};

/// A view of a contiguous run of field specs.
struct field_list {
  const field_spec* first = nullptr;
  std::size_t count = 0;
  const field_spec* begin() const noexcept { return first; }
  const field_spec* end() const noexcept { return first + count; }
  std::size_t size() const noexcept { return count; }
};

namespace detail {
inline constexpr field_spec run_start_fields[] = {
    {"name", field_kind::string, true, true},
    {"config", field_kind::json_object, true, true},
    {"tags", field_kind::string_list, true, true},
    {"total_steps", field_kind::integer, true, true},
    {"total_epochs", field_kind::integer, true, true},
};
inline constexpr field_spec progress_fields[] = {
    {"stage", field_kind::string, false, false},
    {"progress_pct", field_kind::number, false, false},
    {"current_target", field_kind::string, true, false},
    {"targets_complete", field_kind::integer, false, false},
    {"targets_total", field_kind::integer, false, false},
    {"step", field_kind::integer, true, true},
    {"total_steps", field_kind::integer, true, true},
    {"epoch", field_kind::integer, true, true},
    {"total_epochs", field_kind::integer, true, true},
};
inline constexpr field_spec stage_change_fields[] = {
    {"previous_stage", field_kind::string, true, false},
    {"new_stage", field_kind::string, false, false},
};
inline constexpr field_spec target_complete_fields[] = {
    {"target", field_kind::string, false, false},
    {"status", field_kind::string, false, false},
    {"models_trained", field_kind::integer, false, false},
    {"best_auc", field_kind::number, true, false},
    {"metrics", field_kind::metric_map, true, true},
};
inline constexpr field_spec metrics_fields[] = {
    {"step", field_kind::integer, false, false},
    {"epoch", field_kind::integer, true, true},
    {"metrics", field_kind::metric_map, false, false},
};
inline constexpr field_spec log_fields[] = {
    {"level", field_kind::string, false, false},
    {"message", field_kind::string, false, false},
};
inline constexpr field_spec resources_fields[] = {
    {"cpu_pct", field_kind::number, false, false},
    {"rss_bytes", field_kind::integer, false, false},
    {"mem_used_bytes", field_kind::integer, false, false},
    {"mem_total_bytes", field_kind::integer, false, false},
    {"gpus", field_kind::gpu_list, false, false},
};
inline constexpr field_spec error_fields[] = {
    {"error_message", field_kind::string, false, false},
    {"error_type", field_kind::string, false, false},
    {"recoverable", field_kind::boolean, false, false},
};
inline constexpr field_spec dropped_fields[] = {
    {"count", field_kind::integer, false, false},
    {"first_seq", field_kind::integer, false, false},
    {"last_seq", field_kind::integer, false, false},
};
inline constexpr field_spec run_complete_fields[] = {
    {"status", field_kind::string, false, false},
    {"duration_s", field_kind::number, true, false},
};

template <std::size_t N>
constexpr field_list list_of(const field_spec (&specs)[N]) noexcept {
  return field_list{specs, N};
}
}  // namespace detail

/// Fields of one GPU object inside `resources.gpus`.
inline constexpr field_spec gpu_fields[] = {
    {"index", field_kind::integer, false, false},
    {"name", field_kind::string, false, false},
    {"util_pct", field_kind::number, true, true},
    {"mem_used_bytes", field_kind::integer, false, false},
    {"mem_total_bytes", field_kind::integer, false, false},
    {"temperature_c", field_kind::number, true, true},
    {"power_w", field_kind::number, true, true},
};

/// Header fields that every event carries, in wire order.
inline constexpr std::string_view header_keys[] = {"event_type", "run_id", "timestamp", "seq",
                                                   "pid",        "host",   "rank",      "world_size"};

/// Returns the type-specific fields of `type`, in wire order.
constexpr field_list fields_of(event_type type) noexcept {
  switch (type) {
    case event_type::run_start: return detail::list_of(detail::run_start_fields);
    case event_type::progress: return detail::list_of(detail::progress_fields);
    case event_type::stage_change: return detail::list_of(detail::stage_change_fields);
    case event_type::target_complete: return detail::list_of(detail::target_complete_fields);
    case event_type::metrics: return detail::list_of(detail::metrics_fields);
    case event_type::log: return detail::list_of(detail::log_fields);
    case event_type::resources: return detail::list_of(detail::resources_fields);
    case event_type::error: return detail::list_of(detail::error_fields);
    case event_type::heartbeat: return {};
    case event_type::dropped: return detail::list_of(detail::dropped_fields);
    case event_type::run_complete: return detail::list_of(detail::run_complete_fields);
  }
  return {};
}

}  // namespace foxml::events
