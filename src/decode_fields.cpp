#include "decode_fields.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>

namespace foxml::events::detail {
namespace {

// The top-level object is depth 1, so its members' containers open at depth 2.
constexpr std::size_t member_depth = 1;

template <std::size_t N>
bool is(std::string_view key, const char (&literal)[N]) noexcept {
  return std::memcmp(key.data(), literal, N - 1) == 0;  // the caller switched on the length
}

constexpr std::string_view names[field_count] = {
    "timestamp", "seq", "pid", "rank", "world_size", "host",
    "name", "stage", "current_target", "previous_stage", "new_stage", "target", "status", "level", "message",
    "error_message", "error_type",
    "progress_pct", "best_auc", "duration_s", "cpu_pct",
    "targets_complete", "targets_total", "step", "total_steps", "epoch", "total_epochs", "models_trained",
    "rss_bytes", "mem_used_bytes", "mem_total_bytes", "count", "first_seq", "last_seq",
    "recoverable", "truncated", "metrics", "config", "tags", "gpus"};

using string_member = std::optional<std::string> event::*;
using number_member = std::optional<double> event::*;
using integer_member = std::optional<std::int64_t> event::*;

constexpr string_member string_members[] = {
    &event::name,   &event::stage, &event::current_target, &event::previous_stage, &event::new_stage,
    &event::target, &event::status, &event::level,         &event::message,        &event::error_message,
    &event::error_type};
constexpr number_member number_members[] = {&event::progress_pct, &event::best_auc, &event::duration_s,
                                            &event::cpu_pct};
constexpr integer_member integer_members[] = {
    &event::targets_complete, &event::targets_total, &event::step,           &event::total_steps,
    &event::epoch,            &event::total_epochs,  &event::models_trained, &event::rss_bytes,
    &event::mem_used_bytes,   &event::mem_total_bytes, &event::count,        &event::first_seq,
    &event::last_seq};

bool in(field f, field first, field last) noexcept { return f >= first && f <= last; }
std::size_t offset(field f, field first) noexcept { return static_cast<std::size_t>(f) - static_cast<std::size_t>(first); }

// JSON numbers, and the strings the encoder writes for non-finite values.
std::optional<double> number_of(const scanned_value& v, const std::string& text) noexcept {
  switch (v.kind) {
    case value_kind::floating: return v.d;
    case value_kind::unsigned_int: return static_cast<double>(v.u);
    case value_kind::signed_int: return static_cast<double>(v.i);
    case value_kind::string:
      if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
      if (text == "Infinity") return std::numeric_limits<double>::infinity();
      if (text == "-Infinity") return -std::numeric_limits<double>::infinity();
      return std::nullopt;
    default: return std::nullopt;
  }
}

std::optional<std::int64_t> integer_of(const scanned_value& v) noexcept {
  switch (v.kind) {
    case value_kind::unsigned_int:
      if (v.u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
      return static_cast<std::int64_t>(v.u);
    case value_kind::signed_int: return v.i;
    case value_kind::floating:  // 5.0 from a producer that only has floats
      if (std::isfinite(v.d) && v.d == std::floor(v.d) && std::fabs(v.d) < 9.0e15) return static_cast<std::int64_t>(v.d);
      return std::nullopt;
    default: return std::nullopt;
  }
}

// Gives each repeated metric name its first position and its last value, as ordered_json did;
// false when a name's last value is not a number.
bool merge_metrics(std::vector<std::pair<std::string, double>>& values, std::vector<std::size_t>& bad) {
  const std::size_t n = values.size();
  bool repeated = false;
  if (n <= 16) {  // the usual handful: compare pairwise, no allocation
    for (std::size_t i = 1; i < n && !repeated; ++i) {
      for (std::size_t j = 0; j < i && !repeated; ++j) repeated = values[i].first == values[j].first;
    }
    if (!repeated) return bad.empty();
  }
  std::vector<std::size_t> by_name(n), first(n);
  std::vector<char> last(n, 0);
  std::iota(by_name.begin(), by_name.end(), std::size_t{0});
  std::stable_sort(by_name.begin(), by_name.end(),
                   [&](std::size_t a, std::size_t b) { return values[a].first < values[b].first; });
  for (std::size_t g = 0; g < n;) {
    std::size_t e = g + 1;
    while (e < n && values[by_name[e]].first == values[by_name[g]].first) ++e;
    for (std::size_t k = g; k < e; ++k) first[by_name[k]] = by_name[g];
    last[by_name[e - 1]] = 1;
    repeated |= e - g > 1;
    g = e;
  }
  const bool ok = std::none_of(bad.begin(), bad.end(), [&](std::size_t i) { return last[i] != 0; });
  if (repeated) {
    for (std::size_t i = 0; i < n; ++i) {
      if (first[i] != i) values[first[i]].second = values[i].second;  // ascending: the last one wins
    }
    std::size_t out = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (first[i] != i) continue;
      if (out != i) values[out] = std::move(values[i]);
      ++out;
    }
    values.resize(out);
  }
  return ok;
}

bool read_metrics(json_cursor& c, event& ev, decode_state& st, bool& ok) {
  if (member_depth + 1 > c.max_depth()) return c.fail(scan_error::too_deep);
  c.expect('{');
  auto& values = ev.metrics ? *ev.metrics : ev.metrics.emplace();
  values.clear();
  values.reserve(4);  // the usual handful of scalars, without growing 1 -> 2 -> 4
  st.bad_metrics.clear();
  if (!c.consume('}')) {
    scanned_value v;
    do {
      std::string_view key;
      if (!c.read_key(key, st.key_scratch) || !c.expect(':')) return false;
      values.emplace_back(std::string(key), 0.0);
      if (!c.read_value(v, st.scratch, member_depth + 1)) return false;
      if (const auto n = number_of(v, st.scratch)) values.back().second = *n;
      else st.bad_metrics.push_back(values.size() - 1);
    } while (c.consume(','));
    if (!c.expect('}')) return false;
  }
  ok = merge_metrics(values, st.bad_metrics);
  return true;
}

bool read_tags(json_cursor& c, event& ev, decode_state& st, bool& ok) {
  if (member_depth + 1 > c.max_depth()) return c.fail(scan_error::too_deep);
  c.expect('[');
  auto& tags = ev.tags ? *ev.tags : ev.tags.emplace();
  tags.clear();
  ok = true;
  if (c.consume(']')) return true;
  scanned_value v;
  do {
    if (c.peek() == '"') {
      if (!c.read_string(tags.emplace_back())) return false;
    } else {
      if (!c.read_value(v, st.scratch, member_depth + 1)) return false;
      ok = false;
    }
  } while (c.consume(','));
  return c.expect(']');
}

// One GPU object: unknown or wrong-typed members read as their defaults, as before.
bool read_gpu(json_cursor& c, gpu_info& info, decode_state& st) {
  constexpr std::size_t depth = member_depth + 2;
  if (depth > c.max_depth()) return c.fail(scan_error::too_deep);
  c.expect('{');
  if (c.consume('}')) return true;
  scanned_value v;
  do {
    std::string_view key;
    if (!c.read_key(key, st.key_scratch) || !c.expect(':')) return false;
    if (key == "name") {
      if (!c.read_value(v, info.name, depth)) return false;
      if (v.kind != value_kind::string) info.name.clear();
      continue;
    }
    enum { index, util, used, total, temperature, power, other } which = other;
    if (key == "index") which = index;
    else if (key == "util_pct") which = util;
    else if (key == "mem_used_bytes") which = used;
    else if (key == "mem_total_bytes") which = total;
    else if (key == "temperature_c") which = temperature;
    else if (key == "power_w") which = power;
    if (which == other) {
      if (!c.skip_value(depth)) return false;
      continue;
    }
    if (!c.read_value(v, st.scratch, depth)) return false;
    switch (which) {
      case index: info.index = integer_of(v).value_or(0); break;
      case util: info.util_pct = number_of(v, st.scratch); break;
      case used: info.mem_used_bytes = integer_of(v).value_or(0); break;
      case total: info.mem_total_bytes = integer_of(v).value_or(0); break;
      case temperature: info.temperature_c = number_of(v, st.scratch); break;
      default: info.power_w = number_of(v, st.scratch); break;
    }
  } while (c.consume(','));
  return c.expect('}');
}

bool read_gpus(json_cursor& c, event& ev, decode_state& st, bool& ok) {
  if (member_depth + 1 > c.max_depth()) return c.fail(scan_error::too_deep);
  c.expect('[');
  auto& gpus = ev.gpus ? *ev.gpus : ev.gpus.emplace();
  gpus.clear();
  ok = true;
  if (c.consume(']')) return true;
  scanned_value v;
  do {
    if (c.peek() == '{') {
      if (!read_gpu(c, gpus.emplace_back(), st)) return false;
    } else {
      if (!c.read_value(v, st.scratch, member_depth + 1)) return false;
      ok = false;
    }
  } while (c.consume(','));
  return c.expect(']');
}

// The run config is rare (run_start only): validate it like any value, then let nlohmann
// re-emit it compactly, which keeps the exact text the DOM decoder produced.
bool read_config(json_cursor& c, event& ev) {
  const char* first = c.position();
  if (!c.skip_value(member_depth)) return false;
  try {
    const auto doc = nlohmann::ordered_json::parse(first, c.position());
    ev.config_json = doc.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  } catch (const nlohmann::ordered_json::exception&) {
    return c.fail();
  }
  return true;
}

}  // namespace

field lookup_field(std::string_view k) noexcept {
  switch (k.size()) {
    case 3: return is(k, "seq") ? field::seq : is(k, "pid") ? field::pid : field::unknown;
    case 4:
      return is(k, "host") ? field::host : is(k, "rank") ? field::rank : is(k, "step") ? field::step
           : is(k, "name") ? field::name : is(k, "tags") ? field::tags : is(k, "gpus") ? field::gpus : field::unknown;
    case 5:
      return is(k, "stage") ? field::stage : is(k, "level") ? field::level : is(k, "epoch") ? field::epoch
           : is(k, "count") ? field::count : field::unknown;
    case 6:
      return is(k, "run_id") ? field::run_id : is(k, "target") ? field::target : is(k, "status") ? field::status
           : is(k, "config") ? field::config : field::unknown;
    case 7:
      return is(k, "message") ? field::message : is(k, "metrics") ? field::metrics
           : is(k, "cpu_pct") ? field::cpu_pct : field::unknown;
    case 8: return is(k, "best_auc") ? field::best_auc : is(k, "last_seq") ? field::last_seq : field::unknown;
    case 9:
      return is(k, "timestamp") ? field::timestamp : is(k, "new_stage") ? field::new_stage
           : is(k, "rss_bytes") ? field::rss_bytes : is(k, "first_seq") ? field::first_seq
           : is(k, "truncated") ? field::truncated : field::unknown;
    case 10:
      return is(k, "event_type") ? field::event_type : is(k, "world_size") ? field::world_size
           : is(k, "error_type") ? field::error_type : is(k, "duration_s") ? field::duration_s : field::unknown;
    case 11: return is(k, "total_steps") ? field::total_steps : is(k, "recoverable") ? field::recoverable : field::unknown;
    case 12: return is(k, "progress_pct") ? field::progress_pct : is(k, "total_epochs") ? field::total_epochs : field::unknown;
    case 13:
      return is(k, "error_message") ? field::error_message : is(k, "targets_total") ? field::targets_total
                                                                                    : field::unknown;
    case 14:
      return is(k, "current_target") ? field::current_target : is(k, "previous_stage") ? field::previous_stage
           : is(k, "models_trained") ? field::models_trained : is(k, "mem_used_bytes") ? field::mem_used_bytes
                                                                                      : field::unknown;
    case 15: return is(k, "mem_total_bytes") ? field::mem_total_bytes : field::unknown;
    case 16: return is(k, "targets_complete") ? field::targets_complete : field::unknown;
    default: return field::unknown;
  }
}

std::string_view field_name(field f) noexcept { return names[static_cast<std::size_t>(f)]; }

bool read_field(json_cursor& c, field f, event& ev, decode_state& st) {
  scanned_value v;
  bool ok = true;
  const char next = c.peek();
  if (f == field::metrics && next == '{') {
    if (!read_metrics(c, ev, st, ok)) return false;
    v.kind = value_kind::object;
  } else if (f == field::tags && next == '[') {
    if (!read_tags(c, ev, st, ok)) return false;
    v.kind = value_kind::array;
  } else if (f == field::gpus && next == '[') {
    if (!read_gpus(c, ev, st, ok)) return false;
    v.kind = value_kind::array;
  } else if (f == field::config && next == '{') {
    if (!read_config(c, ev)) return false;
  } else if (in(f, field::name, field::error_type)) {
    auto& member = ev.*string_members[offset(f, field::name)];
    if (!c.read_value(v, member ? *member : member.emplace(), member_depth)) return false;
    if (v.kind == value_kind::null) member.reset();  // null leaves a nullable field empty
    ok = v.kind == value_kind::string || v.kind == value_kind::null;
  } else if (f == field::timestamp || f == field::host) {
    if (!c.read_value(v, f == field::host ? ev.host : ev.timestamp, member_depth)) return false;
    ok = v.kind == value_kind::string;
  } else {
    if (!c.read_value(v, st.scratch, member_depth)) return false;
    const bool null = v.kind == value_kind::null;
    if (in(f, field::progress_pct, field::cpu_pct)) {
      auto& member = ev.*number_members[offset(f, field::progress_pct)];
      const auto n = number_of(v, st.scratch);
      ok = n || null;
      member = n;
    } else if (in(f, field::targets_complete, field::last_seq)) {
      auto& member = ev.*integer_members[offset(f, field::targets_complete)];
      const auto n = integer_of(v);
      ok = n || null;
      member = n;
    } else if (f == field::seq) {
      ok = v.kind == value_kind::unsigned_int;
      ev.seq = v.u;
    } else if (in(f, field::pid, field::world_size)) {
      const auto n = integer_of(v);
      ok = n.has_value();
      (f == field::pid ? ev.pid : f == field::rank ? ev.rank : ev.world_size) = n.value_or(0);
    } else if (f == field::recoverable) {
      ok = v.kind == value_kind::boolean || null;
      ev.recoverable = v.kind == value_kind::boolean ? std::optional<bool>(v.boolean) : std::nullopt;
    } else if (f == field::truncated) {
      ok = v.kind == value_kind::boolean;
      ev.truncated = v.boolean && ok;
    } else {  // metrics, tags, gpus or config that are not an object/array
      ok = null;
      if (f == field::metrics) ev.metrics.reset();
      else if (f == field::tags) ev.tags.reset();
      else if (f == field::gpus) ev.gpus.reset();
      else ev.config_json.reset();
    }
  }
  st.note(f, ok, v.kind);
  return true;
}

}  // namespace foxml::events::detail
