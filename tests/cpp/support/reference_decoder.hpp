#pragma once
// The decoder as it was before the single-pass scanner: nlohmann::ordered_json DOM plus a depth
// pre-scan. Kept verbatim (but for the namespace) as the oracle of the differential test: the
// new decoder must accept the same lines, produce the same events and the same error strings.
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "foxml/events/codec.hpp"

namespace reference {
using namespace foxml::events;

// ordered_json keeps the order of keys as sent (metrics appear as the trainer listed them).
using json = nlohmann::ordered_json;
using setter = bool (*)(event&, const json&);

inline std::optional<double> number_of(const json& v) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (s == "Infinity") return std::numeric_limits<double>::infinity();
    if (s == "-Infinity") return -std::numeric_limits<double>::infinity();
  }
  return std::nullopt;
}

inline std::optional<std::int64_t> integer_of(const json& v) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
    return v.get<std::int64_t>();
  }
  if (v.is_number_float()) {  // 5.0 from a producer that only has floats
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

template <std::optional<std::string> event::*Member>
inline bool set_string(event& e, const json& v) {
  if (v.is_null()) return true;
  if (!v.is_string()) return false;
  e.*Member = v.get<std::string>();
  return true;
}

template <std::optional<double> event::*Member>
inline bool set_number(event& e, const json& v) {
  if (v.is_null()) return true;
  const auto n = number_of(v);
  if (!n) return false;
  e.*Member = *n;
  return true;
}

template <std::optional<std::int64_t> event::*Member>
inline bool set_integer(event& e, const json& v) {
  if (v.is_null()) return true;
  const auto n = integer_of(v);
  if (!n) return false;
  e.*Member = *n;
  return true;
}

inline bool set_recoverable(event& e, const json& v) {
  if (v.is_null()) return true;
  if (!v.is_boolean()) return false;
  e.recoverable = v.get<bool>();
  return true;
}

inline bool set_truncated(event& e, const json& v) {
  if (!v.is_boolean()) return false;
  e.truncated = v.get<bool>();
  return true;
}

inline bool set_metrics(event& e, const json& v) {
  if (v.is_null()) return true;
  if (!v.is_object()) return false;
  std::vector<std::pair<std::string, double>> values;
  values.reserve(v.size());
  for (const auto& item : v.items()) {
    const auto n = number_of(item.value());
    if (!n) return false;
    values.emplace_back(item.key(), *n);
  }
  e.metrics = std::move(values);
  return true;
}

inline bool set_config(event& e, const json& v) {
  if (v.is_null()) return true;
  if (!v.is_object()) return false;
  e.config_json = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return true;
}

inline bool set_tags(event& e, const json& v) {
  if (v.is_null()) return true;
  if (!v.is_array()) return false;
  std::vector<std::string> tags;
  for (const auto& t : v) {
    if (!t.is_string()) return false;
    tags.push_back(t.get<std::string>());
  }
  e.tags = std::move(tags);
  return true;
}

inline bool set_gpus(event& e, const json& v) {
  if (v.is_null()) return true;
  if (!v.is_array()) return false;
  std::vector<gpu_info> gpus;
  for (const auto& g : v) {
    if (!g.is_object()) return false;
    gpu_info info;
    if (auto it = g.find("index"); it != g.end()) info.index = integer_of(*it).value_or(0);
    if (auto it = g.find("name"); it != g.end() && it->is_string()) info.name = it->get<std::string>();
    if (auto it = g.find("util_pct"); it != g.end()) info.util_pct = number_of(*it);
    if (auto it = g.find("mem_used_bytes"); it != g.end()) info.mem_used_bytes = integer_of(*it).value_or(0);
    if (auto it = g.find("mem_total_bytes"); it != g.end()) info.mem_total_bytes = integer_of(*it).value_or(0);
    if (auto it = g.find("temperature_c"); it != g.end()) info.temperature_c = number_of(*it);
    if (auto it = g.find("power_w"); it != g.end()) info.power_w = number_of(*it);
    gpus.push_back(std::move(info));
  }
  e.gpus = std::move(gpus);
  return true;
}

// Every payload key of the schema (schema.hpp) and where it lands in `event`. Keys shared by
// several types (`status`, `step`, `metrics`...) land in one member.
inline const std::unordered_map<std::string_view, setter>& payload_setters() {
  static const std::unordered_map<std::string_view, setter> table = {
      {"name", set_string<&event::name>},
      {"stage", set_string<&event::stage>},
      {"current_target", set_string<&event::current_target>},
      {"previous_stage", set_string<&event::previous_stage>},
      {"new_stage", set_string<&event::new_stage>},
      {"target", set_string<&event::target>},
      {"status", set_string<&event::status>},
      {"level", set_string<&event::level>},
      {"message", set_string<&event::message>},
      {"error_message", set_string<&event::error_message>},
      {"error_type", set_string<&event::error_type>},
      {"progress_pct", set_number<&event::progress_pct>},
      {"best_auc", set_number<&event::best_auc>},
      {"duration_s", set_number<&event::duration_s>},
      {"cpu_pct", set_number<&event::cpu_pct>},
      {"process_start_time", set_number<&event::process_start_time>},
      {"heartbeat_interval_s", set_number<&event::heartbeat_interval_s>},
      {"targets_complete", set_integer<&event::targets_complete>},
      {"targets_total", set_integer<&event::targets_total>},
      {"step", set_integer<&event::step>},
      {"total_steps", set_integer<&event::total_steps>},
      {"epoch", set_integer<&event::epoch>},
      {"total_epochs", set_integer<&event::total_epochs>},
      {"models_trained", set_integer<&event::models_trained>},
      {"rss_bytes", set_integer<&event::rss_bytes>},
      {"mem_used_bytes", set_integer<&event::mem_used_bytes>},
      {"mem_total_bytes", set_integer<&event::mem_total_bytes>},
      {"count", set_integer<&event::count>},
      {"first_seq", set_integer<&event::first_seq>},
      {"last_seq", set_integer<&event::last_seq>},
      {"stale_after_heartbeats", set_integer<&event::stale_after_heartbeats>},
      {"recoverable", set_recoverable},
      {"metrics", set_metrics},
      {"config", set_config},
      {"tags", set_tags},
      {"gpus", set_gpus},
      {"truncated", set_truncated},
  };
  return table;
}

inline decode_result failure(std::string message) { return decode_result{std::nullopt, std::move(message)}; }

// Whether arrays/objects in `s` nest deeper than `max_depth` (brackets inside strings do not count).
inline bool nested_deeper_than(std::string_view s, std::size_t max_depth) {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return true;
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return false;
}



inline decode_result decode_line(std::string_view line, const decode_limits& limits = {}) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > limits.max_line_bytes) {
    return failure("line of " + std::to_string(line.size()) + " bytes is over the cap of " +
                   std::to_string(limits.max_line_bytes));
  }
  if (line.empty()) return failure("empty line");

  // The depth cap is checked by a scan before parsing: nlohmann's per-value callback, the other
  // way to cap depth, costs more than the parse itself.
  if (nested_deeper_than(line, limits.max_depth)) {
    return failure("nested deeper than " + std::to_string(limits.max_depth) + " levels");
  }
  json doc;
  try {
    doc = json::parse(line.begin(), line.end());
  } catch (const json::exception& e) {
    return failure(std::string("malformed JSON: ") + e.what());
  }
  // nlohmann reads a NUL byte as the end of the input, so it takes `{...}\0junk`; the strict
  // scanner refuses the bytes after the value, as the library's decoder does.
  if (line.find('\0') != std::string_view::npos) return failure("malformed JSON: rejected by the strict scanner");
  if (!doc.is_object()) return failure("not a JSON object");

  event ev;
  const auto type_it = doc.find("event_type");
  if (type_it == doc.end() || !type_it->is_string()) return failure("missing event_type");
  const auto type = parse_event_type(type_it->get_ref<const std::string&>());
  if (!type) return failure("unknown event_type '" + type_it->get<std::string>() + "'");
  ev.type = *type;
  const auto run_it = doc.find("run_id");
  if (run_it == doc.end() || !run_it->is_string()) return failure("missing run_id");
  ev.run_id = run_it->get<std::string>();

  for (const auto& item : doc.items()) {
    const std::string& key = item.key();
    const json& value = item.value();
    if (key == "event_type" || key == "run_id") continue;
    if (key == "timestamp") {
      if (!value.is_string()) return failure("timestamp is not a string");
      ev.timestamp = value.get<std::string>();
      ev.unix_us = parse_timestamp_us(ev.timestamp).value_or(0);
    } else if (key == "seq") {
      if (!value.is_number_unsigned()) return failure("seq is not a non-negative integer");
      ev.seq = value.get<std::uint64_t>();
    } else if (key == "pid" || key == "rank" || key == "world_size" || key == "local_rank") {
      const auto n = integer_of(value);
      if (!n) return failure(key + " is not an integer");
      (key == "pid" ? ev.pid : key == "rank" ? ev.rank : key == "world_size" ? ev.world_size : ev.local_rank) = *n;
    } else if (key == "host") {
      if (!value.is_string()) return failure("host is not a string");
      ev.host = value.get<std::string>();
    } else {
      const auto& setters = payload_setters();
      const auto found = setters.find(key);
      if (found != setters.end() && !found->second(ev, value)) {
        return failure("field '" + key + "' has the wrong type (" + value.type_name() + ")");
      }
    }
  }
  return decode_result{std::move(ev), {}};
}

}  // namespace reference
