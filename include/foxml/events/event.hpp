#pragma once
/// The event model: the event types of the wire format and the values that emit calls take.
/// Field names and their JSON types live in schema.hpp; this header holds what C++ code passes.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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
};

inline constexpr std::size_t event_type_count = 11;

/// Returns the wire name of `type` (`"run_start"`, `"progress"`...).
constexpr std::string_view to_string(event_type type) noexcept {
  constexpr std::string_view names[event_type_count] = {
      "run_start", "progress", "stage_change", "target_complete", "metrics",     "log",
      "resources", "error",    "heartbeat",    "dropped",         "run_complete"};
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
constexpr bool is_lifecycle(event_type type) noexcept {
  return type == event_type::run_start || type == event_type::stage_change ||
         type == event_type::error || type == event_type::run_complete;
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
  bool truncated = false;     ///< the emitter shortened a string of this event

  std::optional<std::string> name, stage, current_target, previous_stage, new_stage, target, status, level,
      message, error_message, error_type;
  std::optional<double> progress_pct, best_auc, duration_s, cpu_pct;
  std::optional<std::int64_t> targets_complete, targets_total, step, total_steps, epoch, total_epochs,
      models_trained, rss_bytes, mem_used_bytes, mem_total_bytes, count, first_seq, last_seq;
  std::optional<bool> recoverable;
  std::optional<std::vector<std::pair<std::string, double>>> metrics;
  std::optional<std::string> config_json;  ///< the run config, compact JSON text
  std::optional<std::vector<std::string>> tags;
  std::optional<std::vector<gpu_info>> gpus;

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
