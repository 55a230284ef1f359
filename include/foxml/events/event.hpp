#pragma once
/// The event model: the event types of the wire format and the values that emit calls take.
/// Field names and their JSON types live in schema_keys.hpp and schema.hpp; this header holds what
/// C++ code passes (one struct per event type) and what a reader gets back (`event`).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "foxml/events/schema_keys.hpp"

namespace foxml::events {

/// Names every kind of event on the wire (`event_type` field).
enum class event_type : std::uint8_t {
  run_start,
  progress,
  stage_change,
  target_complete,
  metrics,
  log,
  resources,
  error,
  heartbeat,
  dropped,
  run_complete,
  command_received,
  command_done,
};

inline constexpr std::size_t event_type_count = 13;

/// Returns the wire name of `type` (`"run_start"`, `"progress"`...).
constexpr std::string_view to_string(event_type type) noexcept {
  constexpr std::string_view names[event_type_count] = {
      "run_start", "progress", "stage_change", "target_complete", "metrics",     "log",
      "resources", "error",    "heartbeat",    "dropped",         "run_complete", "command_received",
      "command_done"};
  const auto index = static_cast<std::size_t>(type);
  return index < event_type_count ? names[index] : std::string_view("unknown");
}

/// Parses a wire name into an event type; empty for names this version does not know.
constexpr std::optional<event_type> parse_event_type(std::string_view name) noexcept {
  for (std::size_t i = 0; i < event_type_count; ++i) {
    const auto type = static_cast<event_type>(i);
    if (to_string(type) == name) return type;
  }
  return std::nullopt;
}

/// Lifecycle events mark the shape of a run; the overflow policy never drops them silently.
/// Command acknowledgements count as lifecycle: a monitor waits for them.
constexpr bool is_lifecycle(event_type type) noexcept {
  return type == event_type::run_start || type == event_type::stage_change ||
         type == event_type::error || type == event_type::run_complete ||
         type == event_type::command_received || type == event_type::command_done;
}

/// One named scalar (loss, accuracy, lr...). The name is copied when the event is emitted.
struct metric {
  std::string_view name;
  double value;
};

/// Fields of a `progress` event. Strings are copied when the event is emitted.
struct progress_update {
  std::string_view stage;
  double progress_pct = 0.0;
  std::optional<std::string_view> current_target = std::nullopt;
  std::int64_t targets_complete = 0;
  std::int64_t targets_total = 0;
  std::optional<std::int64_t> step = std::nullopt;
  std::optional<std::int64_t> total_steps = std::nullopt;
  std::optional<std::int64_t> epoch = std::nullopt;
  std::optional<std::int64_t> total_epochs = std::nullopt;
};

/// Fields of a `target_complete` event.
struct target_result {
  std::string_view target;
  std::string_view status = "success";  ///< `success`, `failed` or `skipped`
  std::int64_t models_trained = 0;
  std::optional<double> best_auc = std::nullopt;
  const metric* metrics = nullptr;  ///< optional extra metrics, `metric_count` of them
  std::size_t metric_count = 0;
};

/// Fields of a `run_start` event. `config_json` must hold a JSON object (checked by the worker;
/// anything else is sent as `{"_invalid_config": "<text>"}` rather than breaking the line).
struct run_start_info {
  std::optional<std::string_view> name = std::nullopt;
  std::string_view config_json = {};
  const std::string_view* tags = nullptr;
  std::size_t tag_count = 0;
  std::optional<std::int64_t> total_steps = std::nullopt;
  std::optional<std::int64_t> total_epochs = std::nullopt;
  // What a reader needs to tell a dead run from a slow one. emit_run_start() fills the ones left
  // empty: the process's start time (pids are reused), and the heartbeat interval with the
  // number of missed heartbeats after which the run is stale, when heartbeats are on.
  std::optional<double> process_start_time = std::nullopt;  ///< unix seconds
  std::optional<double> heartbeat_interval_s = std::nullopt;
  std::optional<std::int64_t> stale_after_heartbeats = std::nullopt;
};

/// One GPU in a `resources` event. A reading the device does not offer (NVML: not supported, as
/// utilisation on a MIG device or power on many boards) stays empty and is left out of the line.
struct gpu_sample {
  std::int64_t index = 0;
  std::string_view name = {};
  std::optional<double> util_pct = std::nullopt;
  std::int64_t mem_used_bytes = 0;
  std::int64_t mem_total_bytes = 0;
  std::optional<double> temperature_c = std::nullopt;
  std::optional<double> power_w = std::nullopt;
};

/// Fields of a `resources` event.
struct resource_sample {
  double cpu_pct = 0.0;
  std::int64_t rss_bytes = 0;
  std::int64_t mem_used_bytes = 0;
  std::int64_t mem_total_bytes = 0;
  const gpu_sample* gpus = nullptr;
  std::size_t gpu_count = 0;
};

/// Fields of a `stage_change` event.
struct stage_change_info {
  std::optional<std::string_view> previous_stage = std::nullopt;  ///< empty at the start of a run
  std::string_view new_stage = {};
};

/// Fields of a `metrics` event.
struct metrics_sample {
  std::int64_t step = 0;
  std::optional<std::int64_t> epoch = std::nullopt;
  const metric* metrics = nullptr;  ///< `metric_count` of them (none: an empty object)
  std::size_t metric_count = 0;
};

/// Fields of a `log` event.
struct log_entry {
  std::string_view level = {};  ///< debug, info, warning, error...
  std::string_view message = {};
};

/// Fields of an `error` event.
struct error_info {
  std::string_view error_message = {};
  std::string_view error_type = "unknown";
  bool recoverable = true;
};

/// Fields of a `dropped` event (the emitter's own report of events it lost).
struct drop_report {
  std::int64_t count = 0;
  std::int64_t first_seq = 0;
  std::int64_t last_seq = 0;
};

/// Fields of a `run_complete` event.
struct run_end {
  std::string_view status = "success";  ///< `success`, `failed`, `cancelled` or `killed`
  std::optional<double> duration_s = std::nullopt;
};

/// Fields of a `command_received` event (the library's acknowledgement of a control command).
struct command_ack {
  std::string_view command = {};
  std::string_view command_id = {};
  std::string_view sender = {};
  std::string_view arg_json = {};  ///< a JSON object as text; empty: no argument
};

/// Fields of a `command_done` event (the training loop's outcome of a command).
struct command_outcome {
  std::string_view command_id = {};
  std::string_view command = {};
  std::string_view outcome = "ok";  ///< `ok`, `ignored`, `failed`, or the loop's own word
  std::optional<std::string_view> message = std::nullopt;
};

/// One GPU of a decoded `resources` event.
struct gpu_info {
  std::int64_t index = 0;
  std::string name;
  std::optional<double> util_pct;
  std::int64_t mem_used_bytes = 0;
  std::int64_t mem_total_bytes = 0;
  std::optional<double> temperature_c;
  std::optional<double> power_w;
};

namespace detail {
template <field_kind> struct decoded_value;
template <> struct decoded_value<field_kind::string> { using type = std::string; };
template <> struct decoded_value<field_kind::number> { using type = double; };
template <> struct decoded_value<field_kind::integer> { using type = std::int64_t; };
template <> struct decoded_value<field_kind::boolean> { using type = bool; };
template <> struct decoded_value<field_kind::metric_map> { using type = std::vector<std::pair<std::string, double>>; };
template <> struct decoded_value<field_kind::json_object> { using type = std::string; };
template <> struct decoded_value<field_kind::string_list> { using type = std::vector<std::string>; };
template <> struct decoded_value<field_kind::gpu_list> { using type = std::vector<gpu_info>; };
/// What a reader holds for a value of `kind`.
template <field_kind kind>
using decoded_t = typename decoded_value<kind>::type;
}  // namespace detail

/// An event as a reader sees it, decoded from one line. Fields its type does not carry stay empty;
/// fields the schema does not know are ignored. Numbers sent as "NaN"/"Infinity" come back as such.
struct event {
  event_type type = event_type::heartbeat;
  std::string run_id;
  std::string timestamp;      ///< as on the wire
  std::int64_t unix_us = 0;   ///< `timestamp` in microseconds since the epoch; 0 when unparsable
  std::uint64_t seq = 0;
  std::int64_t pid = 0;
  std::string host;
  std::int64_t rank = 0;
  std::int64_t world_size = 1;
  std::int64_t local_rank = 0;  ///< 0 in lines from emitters older than the field
  bool truncated = false;     ///< the emitter shortened a string of this event

  // One member per wire key (schema_keys.hpp), named as the key except `config_json` (the run config
  // as compact JSON text): std::optional<std::string> for strings, <double> for numbers,
  // <std::int64_t> for integers, <bool>, and vectors for metrics, tags and gpus.
#define FOXML_EVENTS_EVENT_MEMBER(key, member, kind) std::optional<detail::decoded_t<field_kind::kind>> member;
  FOXML_EVENTS_WIRE_KEYS(FOXML_EVENTS_EVENT_MEMBER)
#undef FOXML_EVENTS_EVENT_MEMBER

  /// Returns the metric called `metric_name`, if the event has it.
  std::optional<double> metric_value(std::string_view metric_name) const {
    if (!metrics) return std::nullopt;
    for (const auto& entry : *metrics) {
      if (entry.first == metric_name) return entry.second;
    }
    return std::nullopt;
  }
};

}  // namespace foxml::events
