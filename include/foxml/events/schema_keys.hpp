#pragma once
/// The wire keys: every field name a type-specific part of an event may carry, written once, with
/// its JSON shape and the `event` member a reader finds it in. The per-type field lists (which keys
/// an event type has, in what order, which may be null or absent) are in schema.hpp.
///
/// These tables are X-macros because they generate declarations (the `event` members, the key
/// enum, the name constants) and switch cases (the decoder's dispatch), which C++17 templates
/// cannot. A key's name is its token stringified: nothing else in the tree spells it out.

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string_view>

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

// X(key, event member, field_kind). One row per key, however many event types carry it. The
// order is the order of `event`'s members and of the dicts the Python reader builds.
#define FOXML_EVENTS_WIRE_KEYS(X)              \
  X(name, name, string)                        \
  X(stage, stage, string)                      \
  X(current_target, current_target, string)    \
  X(previous_stage, previous_stage, string)    \
  X(new_stage, new_stage, string)              \
  X(target, target, string)                    \
  X(status, status, string)                    \
  X(level, level, string)                      \
  X(message, message, string)                  \
  X(error_message, error_message, string)      \
  X(error_type, error_type, string)            \
  X(progress_pct, progress_pct, number)        \
  X(best_auc, best_auc, number)                \
  X(duration_s, duration_s, number)            \
  X(cpu_pct, cpu_pct, number)                  \
  X(process_start_time, process_start_time, number) \
  X(heartbeat_interval_s, heartbeat_interval_s, number) \
  X(targets_complete, targets_complete, integer) \
  X(targets_total, targets_total, integer)     \
  X(step, step, integer)                       \
  X(total_steps, total_steps, integer)         \
  X(epoch, epoch, integer)                     \
  X(total_epochs, total_epochs, integer)       \
  X(models_trained, models_trained, integer)   \
  X(rss_bytes, rss_bytes, integer)             \
  X(mem_used_bytes, mem_used_bytes, integer)   \
  X(mem_total_bytes, mem_total_bytes, integer) \
  X(count, count, integer)                     \
  X(first_seq, first_seq, integer)             \
  X(last_seq, last_seq, integer)               \
  X(stale_after_heartbeats, stale_after_heartbeats, integer) \
  X(recoverable, recoverable, boolean)         \
  X(metrics, metrics, metric_map)              \
  X(config, config_json, json_object)          \
  X(tags, tags, string_list)                   \
  X(gpus, gpus, gpu_list)                      \
  X(command, command, string)                  \
  X(command_id, command_id, string)            \
  X(sender, sender, string)                    \
  X(outcome, outcome, string)                  \
  X(arg, arg_json, json_object)

// X(key, field_kind, nullable): the members of one GPU object in `resources.gpus`, in wire order.
// `gpu_sample` (emit) and `gpu_info` (decoded) have a member of the same name for each; a nullable
// member is a std::optional and is left out of the object when empty.
#define FOXML_EVENTS_GPU_KEYS(X)        \
  X(index, integer, false)              \
  X(name, string, false)                \
  X(util_pct, number, true)             \
  X(mem_used_bytes, integer, false)     \
  X(mem_total_bytes, integer, false)    \
  X(temperature_c, number, true)        \
  X(power_w, number, true)

/// Returns the name of a field kind (`"metric_map"`...), as in the enum.
constexpr std::string_view to_string(field_kind kind) noexcept {
  constexpr std::string_view kinds[] = {"string",      "number",      "integer",     "boolean",
                                        "metric_map",  "json_object", "string_list", "gpu_list"};
  const auto index = static_cast<std::size_t>(kind);
  return index < std::size(kinds) ? kinds[index] : std::string_view("unknown");
}

/// Names a wire key of a type-specific field.
enum class wire_key : std::uint8_t {
#define FOXML_EVENTS_KEY_ENUM(key, member, kind) key,
  FOXML_EVENTS_WIRE_KEYS(FOXML_EVENTS_KEY_ENUM)
#undef FOXML_EVENTS_KEY_ENUM
};

#define FOXML_EVENTS_KEY_ONE(...) +1
inline constexpr std::size_t wire_key_count = 0 FOXML_EVENTS_WIRE_KEYS(FOXML_EVENTS_KEY_ONE);
inline constexpr std::size_t gpu_key_count = 0 FOXML_EVENTS_GPU_KEYS(FOXML_EVENTS_KEY_ONE);
#undef FOXML_EVENTS_KEY_ONE

namespace schema {

/// One wire key: its name on the wire and the JSON shape of its value.
struct key_spec {
  std::string_view name;
  field_kind kind;
};

/// Every wire key, indexed by `wire_key`.
inline constexpr key_spec keys[wire_key_count] = {
#define FOXML_EVENTS_KEY_SPEC(key, member, kind) {#key, field_kind::kind},
    FOXML_EVENTS_WIRE_KEYS(FOXML_EVENTS_KEY_SPEC)
#undef FOXML_EVENTS_KEY_SPEC
};

/// Returns the wire name of `key` (a NUL-terminated literal: `.data()` is a C string).
constexpr std::string_view name_of(wire_key key) noexcept { return keys[static_cast<std::size_t>(key)].name; }
constexpr field_kind kind_of(wire_key key) noexcept { return keys[static_cast<std::size_t>(key)].kind; }

/// The wire names as constants, for code that names a field in its own output (a run-state JSON,
/// a readable line) and must not spell it out: `schema::names::targets_complete` is
/// "targets_complete". Each is a NUL-terminated literal.
namespace names {
#define FOXML_EVENTS_KEY_NAME(key, member, kind) inline constexpr std::string_view key{#key};
FOXML_EVENTS_WIRE_KEYS(FOXML_EVENTS_KEY_NAME)
#undef FOXML_EVENTS_KEY_NAME
}  // namespace names

/// The members of a GPU object, as constants: `schema::gpu_names::util_pct`.
namespace gpu_names {
#define FOXML_EVENTS_GPU_NAME(key, kind, nullable) inline constexpr std::string_view key{#key};
FOXML_EVENTS_GPU_KEYS(FOXML_EVENTS_GPU_NAME)
#undef FOXML_EVENTS_GPU_NAME
}  // namespace gpu_names

}  // namespace schema
}  // namespace foxml::events
