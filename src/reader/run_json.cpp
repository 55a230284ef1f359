#include "foxml/events/reader/run_json.hpp"

#include <algorithm>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "foxml/events/schema_keys.hpp"

#include "run_json_tree.hpp"

namespace foxml::events::reader {
namespace {

using json = nlohmann::ordered_json;
namespace names = schema::names;

// A wire field's name as a JSON key; the run state's own fields (first_seen, running...) are
// written out below.
std::string key(std::string_view wire_name) { return std::string(wire_name); }

double seconds_of(std::int64_t unix_us) { return static_cast<double>(unix_us) / 1e6; }

template <class T>
json opt(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}

// [[x, y]...] of the points of `series` that a thinning to `max_points` keeps; `point` gives a
// point's pair, or nothing for a point without this value.
template <class Series, class Point>
json::array_t thinned(const Series& series, std::size_t max_points, Point point) {
  json::array_t out;  // built as a vector, not through initializer lists: the bulk of a run
  const auto kept = thinned_indices(series.size(), max_points);
  out.reserve(kept.size());
  for (const auto i : kept) {
    if (auto xy = point(series[i])) out.emplace_back(json::array_t{json(xy->first), json(xy->second)});
  }
  return out;
}

json resources_json(const resource_snapshot& r) {
  json gpus = json::array();
  for (const auto& g : r.gpus) {
    namespace gpu = schema::gpu_names;
    gpus.push_back({{key(gpu::index), g.index},
                    {key(gpu::name), g.name},
                    {key(gpu::util_pct), opt(g.util_pct)},
                    {key(gpu::mem_used_bytes), g.mem_used_bytes},
                    {key(gpu::mem_total_bytes), g.mem_total_bytes},
                    {key(gpu::temperature_c), opt(g.temperature_c)},
                    {key(gpu::power_w), opt(g.power_w)}});
  }
  return {{"time", seconds_of(r.unix_us)},
          {key(names::cpu_pct), opt(r.cpu_pct)},
          {key(names::rss_bytes), opt(r.rss_bytes)},
          {key(names::mem_used_bytes), opt(r.mem_used_bytes)},
          {key(names::mem_total_bytes), opt(r.mem_total_bytes)},
          {key(names::gpus), std::move(gpus)}};
}

// One series of the resource history, when some sample has a value for it; times in Unix seconds.
template <class T>
void add_resource_series(json& out, const std::string& name, const std::deque<resource_point>& history,
                         std::optional<T> resource_point::*member, std::size_t max_points) {
  const bool sampled = std::any_of(history.begin(), history.end(), [&](const resource_point& p) { return (p.*member).has_value(); });
  if (!sampled) return;
  out[name] = thinned(history, max_points, [&](const resource_point& p) -> std::optional<std::pair<double, T>> {
    if (!(p.*member)) return std::nullopt;
    return std::pair{seconds_of(p.unix_us), *(p.*member)};
  });
}

json resource_history_json(const std::deque<resource_point>& history, std::size_t max_points) {
  json out = json::object();
  add_resource_series(out, key(names::cpu_pct), history, &resource_point::cpu_pct, max_points);
  add_resource_series(out, key(names::rss_bytes), history, &resource_point::rss_bytes, max_points);
  add_resource_series(out, "gpu_util_pct", history, &resource_point::gpu_util_pct, max_points);
  add_resource_series(out, "gpu_mem_used_bytes", history, &resource_point::gpu_mem_used_bytes, max_points);
  return out;
}

json config_json(const std::optional<std::string>& text) {
  if (!text) return nullptr;
  // The decoder checked it is an object; a line it let through must not break a run's JSON.
  json config = json::parse(*text, nullptr, false);
  return config.is_discarded() ? json(nullptr) : config;
}

// The whole tree; `metric_points` false leaves metric_history empty for a caller that builds its
// own (see run_json_tree.hpp).
json build(const run_state& run, std::int64_t now_us, const run_json_options& options, bool metric_points) {
  json stages = json::array();
  for (const auto& span : run.stages) {
    stages.push_back({{key(names::name), span.name},
                      {"start", seconds_of(span.start_us)},
                      {"end", span.end_us ? json(seconds_of(*span.end_us)) : json(nullptr)},
                      {key(names::duration_s), span.duration_s(now_us)}});
  }
  json targets = json::array();
  for (const auto& t : run.completed_targets) {
    json metrics = json::object();
    for (const auto& [name, value] : t.metrics) metrics[name] = value;
    targets.push_back({{key(names::target), t.name},
                       {key(names::status), t.status},
                       {key(names::models_trained), t.models_trained},
                       {key(names::best_auc), opt(t.best_auc)},
                       {key(names::metrics), std::move(metrics)}});
  }
  json latest = json::object(), history = json::object();
  for (const auto& [name, series] : run.metrics) {
    latest[name] = series.latest;
    if (!options.history || !metric_points) continue;
    history[name] = thinned(series.history, options.max_points,
                            [](const std::pair<std::int64_t, double>& p) { return std::optional(p); });
  }
  json errors = json::array();
  for (const auto& e : run.errors) {
    errors.push_back({{"time", seconds_of(e.unix_us)},
                      {key(names::error_message), e.message},
                      {key(names::error_type), e.type},
                      {key(names::recoverable), e.recoverable},
                      {"rank", e.rank}});
  }
  // Keyed by rank number as text (JSON keys are strings), in rank order.
  json ranks = json::object();
  for (const auto& [number, r] : run.ranks) {
    ranks[std::to_string(number)] = {
        {"rank", r.rank},
        {key(names::status), to_string(r.status)},
        {"final_status", opt(r.final_status)},
        {key(names::stage), r.stage.empty() ? json(nullptr) : json(r.stage)},
        {key(names::progress_pct), r.progress_pct},
        {key(names::step), opt(r.step)},
        {"last_seen", seconds_of(r.last_seen_us)},
        {"host", r.host},
        {"pid", r.pid},
        {key(names::process_start_time), opt(r.process_start_time)},
        {key(names::heartbeat_interval_s), opt(r.heartbeat_interval_s)},
        {key(names::stale_after_heartbeats), opt(r.stale_after_heartbeats)},
        {"events", r.events},
    };
  }
  json out = {
      {"run_id", run.run_id},
      {key(names::name), opt(run.name)},
      {key(names::status), to_string(run.status)},
      {"running", run.running()},
      {"final_status", opt(run.final_status)},
      {key(names::duration_s), opt(run.duration_s)},
      {key(names::stage), run.stage.empty() ? json(nullptr) : json(run.stage)},
      {"stages", std::move(stages)},
      {key(names::progress_pct), run.progress_pct},
      {key(names::current_target), opt(run.current_target)},
      {key(names::targets_complete), run.targets_complete},
      {key(names::targets_total), run.targets_total},
      {key(names::step), opt(run.step)},
      {key(names::total_steps), opt(run.total_steps)},
      {key(names::epoch), opt(run.epoch)},
      {key(names::total_epochs), opt(run.total_epochs)},
      {"eta_s", opt(run.eta_s)},
      {"targets", std::move(targets)},
      {key(names::metrics), std::move(latest)},
      {"metric_history", std::move(history)},
      {"errors", std::move(errors)},
      {"first_seen", seconds_of(run.first_seen_us)},
      {"last_seen", seconds_of(run.last_seen_us)},
      {"events", run.events},
      {"world_size", run.world_size},
      {"ranks", std::move(ranks)},
      {"slowest_rank", opt(run.slowest_rank)},
      {"stale_ranks", run.stale_ranks},
      {key(names::tags), run.tags},
  };
  if (options.history) out[key(names::config)] = config_json(run.config_json);
  out["host"] = run.ranks.empty() ? json(nullptr) : json(run.host());
  out["started"] = run.started_us ? json(seconds_of(*run.started_us)) : json(nullptr);
  out["elapsed_s"] = run.elapsed_s(now_us);
  out["steps_per_s"] = opt(run.steps_per_s);
  if (options.history) {
    json logs = json::array();
    for (const auto& l : run.logs) {
      logs.push_back({{"time", seconds_of(l.unix_us)}, {key(names::level), l.level}, {key(names::message), l.message}, {"rank", l.rank}});
    }
    out["logs"] = std::move(logs);
  }
  out["resources"] = run.resources ? resources_json(*run.resources) : json(nullptr);
  if (options.history) out["resource_history"] = resource_history_json(run.resource_history, options.max_points);
  json groups = json::object();
  for (const auto& [base, group] : metric_groups(run)) groups[base] = {{"train", opt(group.train)}, {"val", opt(group.val)}};
  out["metric_groups"] = std::move(groups);
  if (!options.history) out.erase("metric_history");
  return out;
}

}  // namespace

std::vector<std::size_t> thinned_indices(std::size_t size, std::size_t max_points) {
  std::vector<std::size_t> kept;
  if (max_points == 0 || size == 0) return kept;
  if (max_points == 1 && size > 1) return {size - 1};
  const std::size_t n = std::min(size, max_points);
  kept.reserve(n);
  // An even stride over the points, rounded: the first and the last are always among them.
  for (std::size_t i = 0; i < n; ++i) kept.push_back(size <= max_points ? i : (i * (size - 1) + (n - 1) / 2) / (n - 1));
  return kept;
}

// Keys that are wire fields come from the schema, so the run state and the events agree.
json run_json_tree(const run_state& run, std::int64_t now_us, bool with_history) {
  return build(run, now_us, run_json_options{}, with_history);
}

json run_json_tree(const run_state& run, std::int64_t now_us, const run_json_options& options) {
  return build(run, now_us, options, true);
}

std::string to_json(const run_state& run, std::int64_t now_us, const run_json_options& options) {
  // Strings from the wire are valid UTF-8 (the decoder checks); replace, never throw, regardless.
  return run_json_tree(run, now_us, options).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string to_json(const run_state& run, std::int64_t now_us) { return to_json(run, now_us, run_json_options{}); }

}  // namespace foxml::events::reader
