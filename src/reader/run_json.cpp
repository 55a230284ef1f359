#include "foxml/events/reader/run_json.hpp"

#include <optional>
#include <string>
#include <string_view>

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

}  // namespace

// Keys that are wire fields come from the schema, so the run state and the events agree.
json run_json_tree(const run_state& run, std::int64_t now_us, bool with_history) {
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
    if (!with_history) continue;
    json::array_t points;  // built as a vector, not through initializer lists: the bulk of a run
    points.reserve(series.history.size());
    for (const auto& [step, value] : series.history) points.emplace_back(json::array_t{json(step), json(value)});
    history[name] = std::move(points);
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
  };
  return out;
}

std::string to_json(const run_state& run, std::int64_t now_us) {
  // Strings from the wire are valid UTF-8 (the decoder checks); replace, never throw, regardless.
  return run_json_tree(run, now_us, true).dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace foxml::events::reader
