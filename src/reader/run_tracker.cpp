#include "foxml/events/reader/run_tracker.hpp"

#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <tuple>

#include "../resources/proc_stats.hpp"

namespace foxml::events::reader {

const char* to_string(run_status status) noexcept {
  switch (status) {
    case run_status::running: return "running";
    case run_status::completed: return "completed";
    case run_status::failed: return "failed";
    case run_status::cancelled: return "cancelled";
    case run_status::stale: return "stale";
    case run_status::killed: return "killed";
  }
  return "unknown";
}

namespace {

std::string this_host() {
  char name[HOST_NAME_MAX + 1] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return {};
  return name;
}

// Start times of one process read twice differ by a clock tick and by btime's own rounding and
// drift (the kernel derives it from the clocks at each read); a reused pid is a process that
// started later by far more.
constexpr double start_time_tolerance_s = 2.0;

}  // namespace

run_tracker::run_tracker(run_tracker_options options)
    : options_(std::move(options)),
      local_host_(options_.local_host.empty() ? this_host() : options_.local_host),
      proc_usable_(foxml::events::detail::own_start_time().has_value()) {}

rank_state& run_tracker::rank_of(run_state& run, const event& e) {
  auto [it, fresh] = run.ranks.try_emplace(e.rank);
  rank_state& rank = it->second;
  if (fresh) {
    rank.rank = e.rank;
    rank.host = e.host;
    rank.pid = e.pid;
  }
  return rank;
}

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
  run.world_size = std::max(run.world_size, e.world_size);
  const std::size_t ranks_before = run.ranks.size();
  rank_state& rank = rank_of(run, e);
  const run_status rank_status_before = rank.status;
  ++rank.events;
  rank.last_seen_us = std::max(rank.last_seen_us, e.unix_us);
  if (rank.status == run_status::stale) rank.status = run_status::running;
  // A killed rank's own late lines (read after its death) leave it killed; a new process under
  // the rank (a restart) makes it live again.
  if (rank.status == run_status::killed && e.pid != rank.pid) {
    rank.status = run_status::running;
    rank.pid = e.pid;
    rank.host = e.host;
    rank.process_start_time.reset();
  }
  // The run-level view (stage, progress, metrics, targets) follows the lowest rank seen, so the
  // ranks of a data-parallel job do not take turns overwriting it; every rank has its own below.
  const bool lead = run.ranks.begin()->first == e.rank;
  if (!line.empty() && options_.recent_lines > 0) {
    if (recent_.size() >= options_.recent_lines) recent_.pop_front();
    recent_.emplace_back(line);
  }

  switch (e.type) {
    case event_type::run_start:
      if (e.name) run.name = e.name;
      // Every rank sends one; the lowest rank's says what the run is, another's fills a gap.
      if (e.tags && (lead || run.tags.empty())) run.tags = *e.tags;
      if (e.config_json && (lead || !run.config_json)) run.config_json = e.config_json;
      if (e.unix_us > 0) run.started_us = std::min(run.started_us.value_or(e.unix_us), e.unix_us);
      if (lead) run.ended_us.reset();  // a restarted run is going again
      if (e.total_steps) run.total_steps = e.total_steps;
      if (e.total_epochs) run.total_epochs = e.total_epochs;
      // The process that announced the rank is the one to watch; a new run_start (a restarted
      // process) starts the rank afresh.
      rank.host = e.host;
      rank.pid = e.pid;
      rank.process_start_time = e.process_start_time;
      rank.heartbeat_interval_s = e.heartbeat_interval_s;
      rank.stale_after_heartbeats = e.stale_after_heartbeats;
      rank.process_checked_us = 0;
      rank.status = run_status::running;
      rank.final_status.reset();
      break;
    case event_type::progress:
      if (e.stage) rank.stage = *e.stage;
      if (e.progress_pct) rank.progress_pct = *e.progress_pct;
      if (e.step) rank.step = e.step;
      if (!lead) break;
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
      if (e.step) update_rate(run, *e.step, e.unix_us);
      break;
    case event_type::stage_change:
      if (e.new_stage) rank.stage = *e.new_stage;
      if (!lead) break;
      if (e.new_stage) enter_stage(run, *e.new_stage, e.unix_us);
      samples_.erase(run.run_id);  // progress is per stage: the old rate says nothing now
      run.eta_s.reset();
      break;
    case event_type::target_complete: {
      if (!lead) break;
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
      if (e.step) rank.step = std::max(rank.step.value_or(*e.step), *e.step);
      if (e.step && lead) update_rate(run, *e.step, e.unix_us);
      if (e.metrics && lead) {
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
                                     e.recoverable.value_or(true), e.rank});
      if (run.errors.size() > options_.max_errors) run.errors.erase(run.errors.begin());
      if (!e.recoverable.value_or(true) && rank.running()) rank.status = run_status::failed;
      break;
    case event_type::run_complete:
      rank.final_status = e.status;
      rank.status = status_of_completion(e.status.value_or(""));
      if (rank.status == run_status::completed) rank.progress_pct = 100.0;
      if (!lead) break;
      run.final_status = e.status;
      run.duration_s = e.duration_s;
      run.ended_us = e.unix_us;
      step_rates_.erase(run.run_id);  // steps_per_s stays the last rate seen
      if (rank.status == run_status::completed) run.progress_pct = 100.0;  // a completed run is at 100 % whatever its last progress said
      if (!run.stages.empty() && !run.stages.back().end_us) run.stages.back().end_us = e.unix_us;
      run.eta_s.reset();
      samples_.erase(run.run_id);
      break;
    case event_type::log:
    case event_type::resources:
      if (e.type == event_type::log) add_log(run, e);
      if (e.type == event_type::resources && lead) add_resources(run, e);
      [[fallthrough]];
    case event_type::heartbeat:
    case event_type::dropped:
    case event_type::command_received:
    case event_type::command_done:
      // The bulk of a quiet run: the run-level view changes only when the rank's status did.
      if (rank.status == rank_status_before && run.ranks.size() == ranks_before) return;
      break;
  }
  summarise(run);
}

void run_tracker::summarise(run_state& run) {
  bool failed = false, killed = false, stale = false, cancelled = false;
  std::int64_t ended = 0;
  run.stale_ranks.clear();
  using level = std::tuple<std::int64_t, double>;  // step (none: before the first), progress
  std::optional<level> lowest, highest;
  std::int64_t live = 0;
  for (const auto& [number, rank] : run.ranks) {
    switch (rank.status) {
      case run_status::failed: failed = true; break;
      case run_status::killed: killed = true; break;
      case run_status::stale:
        stale = true;
        run.stale_ranks.push_back(number);
        break;
      case run_status::cancelled: cancelled = true; [[fallthrough]];
      case run_status::completed: ++ended; break;
      case run_status::running: {
        ++live;
        const level at{rank.step.value_or(-1), rank.progress_pct};
        if (!lowest || at < *lowest) {
          lowest = at;
          run.slowest_rank = number;
        }
        if (!highest || at > *highest) highest = at;
        break;
      }
    }
  }
  if (live < 2 || run.world_size < 2 || !(*lowest < *highest)) run.slowest_rank.reset();
  if (failed) {
    run.status = run_status::failed;
  } else if (killed) {
    run.status = run_status::killed;
  } else if (ended == static_cast<std::int64_t>(run.ranks.size()) && ended >= run.world_size) {
    run.status = cancelled ? run_status::cancelled : run_status::completed;
  } else if (stale) {
    run.status = run_status::stale;
  } else {
    run.status = run_status::running;
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

void run_tracker::update_rate(run_state& run, std::int64_t step, std::int64_t now_us) {
  auto& rate = step_rates_[run.run_id];
  auto& samples = rate.samples;
  if (!samples.empty() && step < rate.newest.step) samples.clear();  // went back: a new phase
  if (!samples.empty() && step == rate.newest.step) return;  // the metrics of a step already counted
  rate.newest = step_sample{now_us, step};
  const std::int64_t window_us = std::chrono::duration_cast<std::chrono::microseconds>(options_.eta_window).count();
  const std::int64_t spacing_us = window_us / static_cast<std::int64_t>(defaults::rate_samples);
  if (samples.empty() || now_us - samples.back().unix_us >= spacing_us) samples.push_back(rate.newest);
  while (samples.size() > 2 && samples.front().unix_us < now_us - window_us) samples.pop_front();
  const auto& first = samples.front();
  const double seconds = static_cast<double>(now_us - first.unix_us) / 1e6;
  if (seconds <= 0) return;  // the last rate known stands
  run.steps_per_s = static_cast<double>(step - first.step) / seconds;
}

void run_tracker::add_log(run_state& run, const event& e) {
  if (options_.recent_logs == 0) return;
  std::string message = e.message.value_or("");
  if (message.size() > options_.max_log_message_bytes) {
    // Cut back to the start of a UTF-8 sequence, so the kept text stays valid.
    std::size_t cut = options_.max_log_message_bytes;
    while (cut > 0 && (static_cast<unsigned char>(message[cut]) & 0xC0u) == 0x80u) --cut;
    message.resize(cut);
  }
  run.logs.push_back(log_line{e.unix_us, e.level.value_or(""), std::move(message), e.rank});
  while (run.logs.size() > options_.recent_logs) run.logs.pop_front();
}

void run_tracker::add_resources(run_state& run, const event& e) {
  resource_snapshot sample{e.unix_us, e.cpu_pct, e.rss_bytes, e.mem_used_bytes, e.mem_total_bytes,
                           e.gpus.value_or(std::vector<gpu_info>{})};
  resource_point point{e.unix_us, e.cpu_pct, e.rss_bytes, std::nullopt, std::nullopt};
  double util = 0;
  int with_util = 0;
  std::int64_t mem = 0;
  for (const auto& gpu : sample.gpus) {
    if (gpu.util_pct) {
      util += *gpu.util_pct;
      ++with_util;
    }
    mem += gpu.mem_used_bytes;
  }
  if (with_util > 0) point.gpu_util_pct = util / with_util;
  if (!sample.gpus.empty()) point.gpu_mem_used_bytes = mem;
  run.resources = std::move(sample);
  if (options_.resource_history == 0) return;
  run.resource_history.push_back(point);
  while (run.resource_history.size() > options_.resource_history) run.resource_history.pop_front();
}

void run_tracker::check_rank(rank_state& rank, std::int64_t now_us) {
  if (!rank.running()) return;
  const std::int64_t silent_us = now_us - rank.last_seen_us;
  const bool heartbeats = rank.heartbeat_interval_s && *rank.heartbeat_interval_s > 0;
  const auto misses = std::max<std::int64_t>(1, rank.stale_after_heartbeats.value_or(defaults::stale_after_heartbeats));
  const double limit_s = heartbeats ? *rank.heartbeat_interval_s * static_cast<double>(misses)
                                    : std::chrono::duration<double>(options_.stale_after).count();
  if (static_cast<double>(silent_us) > limit_s * 1e6) rank.status = run_status::stale;

  // Only a rank that missed a heartbeat (or a second's silence without them) is looked up, at
  // most four times an interval: a speaking process is alive, and /proc reads are syscalls.
  if (!options_.check_processes || !proc_usable_ || rank.pid <= 0 || rank.host != local_host_) return;
  const double interval_s = heartbeats ? *rank.heartbeat_interval_s : 1.0;
  const auto interval_us = static_cast<std::int64_t>(interval_s * 1e6);
  if (silent_us < interval_us || now_us - rank.process_checked_us < interval_us / 4) return;
  rank.process_checked_us = now_us;
  const auto started = foxml::events::detail::process_start_time(static_cast<pid_t>(rank.pid));
  if (!started || (rank.process_start_time &&
                   std::fabs(*started - *rank.process_start_time) > start_time_tolerance_s)) {
    rank.status = run_status::killed;
  }
}

void run_tracker::check_stale(std::int64_t now_us) {
  for (auto& run : runs_) {
    // A run that ended or failed may still have ranks going (or going silent): all are looked at.
    for (auto& [number, rank] : run.ranks) check_rank(rank, now_us);
    summarise(run);
  }
}

const run_state* run_tracker::find(std::string_view run_id) const {
  const auto it = index_.find(run_id);
  return it == index_.end() ? nullptr : &runs_[it->second];
}

const run_state* run_tracker::latest() const { return latest_ ? &runs_[*latest_] : nullptr; }

metric_name_parts split_metric_name(std::string_view name) {
  constexpr std::string_view validation_prefixes[] = {"val_", "val/", "valid_", "validation_", "eval_", "eval/", "test_"};
  constexpr std::string_view training_prefixes[] = {"train_", "train/"};
  constexpr std::string_view validation_suffix = "_val";
  const auto starts = [&](std::string_view prefix) { return name.size() > prefix.size() && name.substr(0, prefix.size()) == prefix; };
  for (const auto prefix : validation_prefixes) {
    if (starts(prefix)) return {std::string(name.substr(prefix.size())), true};
  }
  for (const auto prefix : training_prefixes) {
    if (starts(prefix)) return {std::string(name.substr(prefix.size())), false};
  }
  if (name.size() > validation_suffix.size() && name.substr(name.size() - validation_suffix.size()) == validation_suffix) {
    return {std::string(name.substr(0, name.size() - validation_suffix.size())), true};
  }
  return {std::string(name), false};
}

std::map<std::string, metric_group> metric_groups(const run_state& run) {
  std::map<std::string, metric_group> groups;
  const auto place = [&groups](const std::string& name, const metric_name_parts& parts) {
    const auto slot = [&](metric_group& g) -> std::optional<std::string>& { return parts.validation ? g.val : g.train; };
    // A taken slot sends the name to a group of its own; should even that be taken (a metric
    // whose base is this full name), a suffix finds a free one.
    std::string key = parts.base;
    for (int n = 1; slot(groups[key]); ++n) key = n == 1 ? name : name + "#" + std::to_string(n);
    slot(groups[key]) = name;
  };
  // Bare names first: `loss` is the training series of `loss` even where `train_loss` sorts first.
  for (const bool marked : {false, true}) {
    for (const auto& entry : run.metrics) {
      const auto parts = split_metric_name(entry.first);
      if ((parts.base != entry.first) == marked) place(entry.first, parts);
    }
  }
  return groups;
}

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
