#pragma once
/// Run state as JSON: the one serialiser behind Python's run dicts and a bridge's /api/runs/{id}.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "foxml/events/reader/run_tracker.hpp"

namespace foxml::events::reader {

/// Returns `run` as one JSON object: `run_id`, `name`, `status` (running, completed, failed,
/// cancelled, stale, killed), `running`, `final_status`, `duration_s`, `stage` (null before the first),
/// `stages` ([{`name`, `start`, `end`, `duration_s`}]; times in Unix seconds, `end` null for the
/// current stage, whose duration runs to `now_us`), `progress_pct`, `current_target`,
/// `targets_complete`, `targets_total`, `step`, `total_steps`, `epoch`, `total_epochs`, `eta_s`,
/// `targets` (finished targets: `target`, `status`, `models_trained`, `best_auc`, `metrics`),
/// `metrics` (latest value per name), `metric_history` (name -> [[step, value]], oldest first),
/// `errors` ([{`time`, `error_message`, `error_type`, `recoverable`, `rank`}]), `first_seen`,
/// `last_seen` (event times, Unix seconds), `events`, `world_size`, `ranks` (rank number as text
/// -> {`rank`, `status`, `final_status`, `stage`, `progress_pct`, `step`, `last_seen`, `host`,
/// `pid`, `process_start_time`, `heartbeat_interval_s`, `stale_after_heartbeats`, `events`}),
/// `slowest_rank` (null unless a straggler stands out), `stale_ranks`, then `tags`, `config` (the
/// run_start's config object, null when none), `host` (the lowest rank's), `started` (run_start
/// time, null before one), `elapsed_s` (run_state::elapsed_s), `steps_per_s`, `logs` ([{`time`,
/// `level`, `message`, `rank`}], oldest first), `resources` (the latest sample: {`time`, `cpu_pct`,
/// `rss_bytes`, `mem_used_bytes`, `mem_total_bytes`, `gpus`: [{`index`, `name`, `util_pct`,
/// `mem_used_bytes`, `mem_total_bytes`, `temperature_c`, `power_w`}]}, null before one),
/// `resource_history` ({`cpu_pct`, `rss_bytes`, `gpu_util_pct`, `gpu_mem_used_bytes`} -> [[time,
/// value]], a series only once sampled) and `metric_groups` (base -> {`train`, `val`}: a name or
/// null, see metric_groups()). Unknown values are null; JSON has no NaN or infinity, so a
/// non-finite number is null too.
std::string to_json(const run_state& run, std::int64_t now_us);

/// What to_json() leaves out or thins.
struct run_json_options {
  /// false: the summary form (a run list): no `metric_history`, `resource_history`, `logs` or
  /// `config` keys at all.
  bool history = true;
  /// Most points per series of `metric_history` and `resource_history`: a longer series is thinned
  /// to this many at an even stride over its points, its first and last always kept (1: the last
  /// only; 0: none).
  std::size_t max_points = std::numeric_limits<std::size_t>::max();
};

/// The indices of the points a series of `size` keeps when thinned to `max_points`, rising
/// (run_json_options::max_points).
std::vector<std::size_t> thinned_indices(std::size_t size, std::size_t max_points);

/// to_json() with some of it left out or thinned (the bridge's `/api/runs` and `/api/runs/{id}`).
std::string to_json(const run_state& run, std::int64_t now_us, const run_json_options& options);

}  // namespace foxml::events::reader
