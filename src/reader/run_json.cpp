#include "foxml/events/reader/run_json.hpp"

#include <optional>

#include "run_json_tree.hpp"

namespace foxml::events::reader {
namespace {

using json = nlohmann::ordered_json;

double seconds_of(std::int64_t unix_us) { return static_cast<double>(unix_us) / 1e6; }

template <class T>
json opt(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}

}  // namespace

// The wire names of the per-type fields a run state carries ("targets_complete", "best_auc",
// "error_type"...) are written here only, on the reader's side.
json run_json_tree(const run_state& run, std::int64_t now_us, bool with_history) {
  json stages = json::array();
  for (const auto& span : run.stages) {
    stages.push_back({{"name", span.name},
                      {"start", seconds_of(span.start_us)},
                      {"end", span.end_us ? json(seconds_of(*span.end_us)) : json(nullptr)},
                      {"duration_s", span.duration_s(now_us)}});
  }
  json targets = json::array();
  for (const auto& t : run.completed_targets) {
    json metrics = json::object();
    for (const auto& [name, value] : t.metrics) metrics[name] = value;
    targets.push_back({{"target", t.name},
                       {"status", t.status},
                       {"models_trained", t.models_trained},
                       {"best_auc", opt(t.best_auc)},
                       {"metrics", std::move(metrics)}});
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
                      {"error_message", e.message},
                      {"error_type", e.type},
                      {"recoverable", e.recoverable}});
  }
  json out = {
      {"run_id", run.run_id},
      {"name", opt(run.name)},
      {"status", to_string(run.status)},
      {"running", run.running()},
      {"final_status", opt(run.final_status)},
      {"duration_s", opt(run.duration_s)},
      {"stage", run.stage.empty() ? json(nullptr) : json(run.stage)},
      {"stages", std::move(stages)},
      {"progress_pct", run.progress_pct},
      {"current_target", opt(run.current_target)},
      {"targets_complete", run.targets_complete},
      {"targets_total", run.targets_total},
      {"step", opt(run.step)},
      {"total_steps", opt(run.total_steps)},
      {"epoch", opt(run.epoch)},
      {"total_epochs", opt(run.total_epochs)},
      {"eta_s", opt(run.eta_s)},
      {"targets", std::move(targets)},
      {"metrics", std::move(latest)},
      {"metric_history", std::move(history)},
      {"errors", std::move(errors)},
      {"first_seen", seconds_of(run.first_seen_us)},
      {"last_seen", seconds_of(run.last_seen_us)},
      {"events", run.events},
  };
  return out;
}

std::string to_json(const run_state& run, std::int64_t now_us) {
  // Strings from the wire are valid UTF-8 (the decoder checks); replace, never throw, regardless.
  return run_json_tree(run, now_us, true).dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace foxml::events::reader
