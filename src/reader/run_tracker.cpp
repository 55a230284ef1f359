#include "foxml/events/reader/run_tracker.hpp"

#include <algorithm>

namespace foxml::events::reader {

const char* to_string(run_status status) noexcept {
  switch (status) {
    case run_status::running: return "running";
    case run_status::completed: return "completed";
    case run_status::failed: return "failed";
    case run_status::cancelled: return "cancelled";
    case run_status::stale: return "stale";
  }
  return "unknown";
}

run_tracker::run_tracker(run_tracker_options options) : options_(options) {}

run_state& run_tracker::state_of(const event& e) {
  auto it = index_.find(e.run_id);
  if (it == index_.end()) {
    it = index_.emplace(e.run_id, runs_.size()).first;
    run_state fresh;
    fresh.run_id = e.run_id;
    fresh.first_seen_us = fresh.last_seen_us = e.unix_us;
    runs_.push_back(std::move(fresh));
  }
  latest_ = it->second;
  return runs_[it->second];
}

namespace {

void enter_stage(run_state& run, const std::string& stage, std::int64_t at_us) {
  if (!run.stages.empty() && !run.stages.back().end_us) run.stages.back().end_us = at_us;
  run.stages.push_back(stage_span{stage, at_us, std::nullopt});
  run.stage = stage;
}

run_status status_of_completion(const std::string& status) {
  if (status == "success") return run_status::completed;
  if (status == "cancelled") return run_status::cancelled;
  return run_status::failed;  // failed, killed, or anything this version does not know
}

}  // namespace

void run_tracker::apply(const event& e, std::string_view line) {
  run_state& run = state_of(e);
  ++run.events;
  run.last_seen_us = std::max(run.last_seen_us, e.unix_us);
  if (run.status == run_status::stale) run.status = run_status::running;
  if (!line.empty() && options_.recent_lines > 0) {
    if (recent_.size() >= options_.recent_lines) recent_.pop_front();
    recent_.emplace_back(line);
  }

  switch (e.type) {
    case event_type::run_start:
      if (e.name) run.name = e.name;
      if (e.total_steps) run.total_steps = e.total_steps;
      if (e.total_epochs) run.total_epochs = e.total_epochs;
      break;
    case event_type::progress:
      // Emitters may report a new stage through progress alone, without a stage_change.
      if (e.stage && *e.stage != run.stage) enter_stage(run, *e.stage, e.unix_us);
      if (e.progress_pct) run.progress_pct = *e.progress_pct;
      run.current_target = e.current_target;
      if (e.targets_complete) run.targets_complete = *e.targets_complete;
      if (e.targets_total) run.targets_total = *e.targets_total;
      if (e.step) run.step = e.step;
      if (e.total_steps) run.total_steps = e.total_steps;
      if (e.epoch) run.epoch = e.epoch;
      if (e.total_epochs) run.total_epochs = e.total_epochs;
      update_eta(run, e.unix_us);
      break;
    case event_type::stage_change:
      if (e.new_stage) enter_stage(run, *e.new_stage, e.unix_us);
      samples_.erase(run.run_id);  // progress is per stage: the old rate says nothing now
      run.eta_s.reset();
      break;
    case event_type::target_complete: {
      target_summary target;
      target.name = e.target.value_or("");
      target.status = e.status.value_or("");
      target.models_trained = e.models_trained.value_or(0);
      target.best_auc = e.best_auc;
      if (e.metrics) target.metrics = *e.metrics;
      run.completed_targets.push_back(std::move(target));
      break;
    }
    case event_type::metrics:
      if (e.metrics) {
        if (e.epoch) run.epoch = e.epoch;
        for (const auto& [name, value] : *e.metrics) {
          auto& series = run.metrics[name];
          series.latest = value;
          series.latest_step = e.step.value_or(0);
          series.history.emplace_back(series.latest_step, value);
          while (series.history.size() > options_.metric_history) series.history.pop_front();
        }
      }
      break;
    case event_type::error:
      run.errors.push_back(run_error{e.unix_us, e.error_message.value_or(""), e.error_type.value_or(""),
                                     e.recoverable.value_or(true)});
      if (run.errors.size() > options_.max_errors) run.errors.erase(run.errors.begin());
      if (!e.recoverable.value_or(true) && run.status == run_status::running) run.status = run_status::failed;
      break;
    case event_type::run_complete:
      run.final_status = e.status;
      run.duration_s = e.duration_s;
      run.status = status_of_completion(e.status.value_or(""));
      if (run.status == run_status::completed) run.progress_pct = 100.0;  // a completed run is at 100 % whatever its last progress said
      if (!run.stages.empty() && !run.stages.back().end_us) run.stages.back().end_us = e.unix_us;
      run.eta_s.reset();
      samples_.erase(run.run_id);
      break;
    case event_type::log:
    case event_type::resources:
    case event_type::heartbeat:
    case event_type::dropped:
    case event_type::command_received:
    case event_type::command_done:
      break;
  }
}

void run_tracker::update_eta(run_state& run, std::int64_t now_us) {
  auto& samples = samples_[run.run_id];
  if (!samples.empty() && run.progress_pct < samples.back().pct) samples.clear();  // went back: new phase
  samples.push_back(progress_sample{now_us, run.progress_pct});
  const std::int64_t window_us = std::chrono::duration_cast<std::chrono::microseconds>(options_.eta_window).count();
  while (samples.size() > 2 && samples.front().unix_us < now_us - window_us) samples.pop_front();
  const auto& first = samples.front();
  const double elapsed_s = static_cast<double>(now_us - first.unix_us) / 1e6;
  const double gained = run.progress_pct - first.pct;
  if (samples.size() < 2 || elapsed_s <= 0 || gained <= 0) {
    run.eta_s.reset();
    return;
  }
  run.eta_s = std::max(0.0, 100.0 - run.progress_pct) * elapsed_s / gained;
}

void run_tracker::check_stale(std::int64_t now_us) {
  const std::int64_t limit_us = std::chrono::duration_cast<std::chrono::microseconds>(options_.stale_after).count();
  for (auto& run : runs_) {
    if (run.status == run_status::running && now_us - run.last_seen_us > limit_us) run.status = run_status::stale;
  }
}

const run_state* run_tracker::find(std::string_view run_id) const {
  const auto it = index_.find(run_id);
  return it == index_.end() ? nullptr : &runs_[it->second];
}

const run_state* run_tracker::latest() const { return latest_ ? &runs_[*latest_] : nullptr; }

training_status_snapshot run_tracker::training_status() const {
  training_status_snapshot out;
  out.events.assign(recent_.begin(), recent_.end());
  const run_state* run = latest();
  if (run == nullptr) return out;
  out.running = run->running();
  out.run_id = run->run_id;
  if (!run->stage.empty()) out.stage = run->stage;
  out.progress_pct = run->progress_pct;
  out.current_target = run->current_target;
  return out;
}

}  // namespace foxml::events::reader
