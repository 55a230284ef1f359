#pragma once
/// Run state as JSON: the one serialiser behind Python's run dicts and a bridge's /api/runs/{id}.

#include <cstdint>
#include <string>

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
/// `slowest_rank` (null unless a straggler stands out) and `stale_ranks`. Unknown values are null; JSON has no NaN or
/// infinity, so a non-finite number is null too.
std::string to_json(const run_state& run, std::int64_t now_us);

}  // namespace foxml::events::reader
