#pragma once
/// The live state of every run, as a monitor shows it: status, stage, progress, ETA, targets,
/// metrics and errors, built from the event stream.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "foxml/events/event.hpp"
#include "foxml/events/reader/defaults.hpp"

namespace foxml::events::reader {

/// Where a run stands.
enum class run_status : std::uint8_t {
  running,
  completed,  ///< run_complete with `success`
  failed,     ///< run_complete with `failed` or `killed`, or an unrecoverable error
  cancelled,  ///< run_complete with `cancelled`
  stale,      ///< silent for longer than its run_start allows (N missed heartbeats), else than
              ///< `stale_after`: slow, stopped or gone; events coming again make it `running`
  killed,     ///< its process is gone (checked on the reader's own host only) without a run_complete
};

/// Returns "running", "completed", "failed", "cancelled", "stale" or "killed".
const char* to_string(run_status status) noexcept;

/// One stage a run went through; `end_us` is empty while it is the current stage.
struct stage_span {
  std::string name;
  std::int64_t start_us = 0;
  std::optional<std::int64_t> end_us;

  /// Seconds in the stage, up to `now_us` for the current one.
  double duration_s(std::int64_t now_us) const noexcept {
    return static_cast<double>(end_us.value_or(now_us) - start_us) / 1e6;
  }
};

/// A finished target: its name, outcome, models trained, best AUC and final metrics.
struct target_summary {
  std::string name;
  std::string status;
  std::int64_t models_trained = 0;
  std::optional<double> best_auc;
  std::vector<std::pair<std::string, double>> metrics;
};

/// One metric's latest value and a bounded history of (step, value), oldest first.
struct metric_series {
  double latest = 0.0;
  std::int64_t latest_step = 0;
  std::deque<std::pair<std::int64_t, double>> history;
};

/// An `error` event of the run.
struct run_error {
  std::int64_t unix_us = 0;
  std::string message;
  std::string type;
  bool recoverable = true;
  std::int64_t rank = 0;  ///< the rank that sent it
};

/// A `log` event of the run.
struct log_line {
  std::int64_t unix_us = 0;
  std::string level;
  std::string message;  ///< cut to `max_log_message_bytes`
  std::int64_t rank = 0;
};

/// A `resources` event of the run, as sent (a reading not sent stays empty).
struct resource_snapshot {
  std::int64_t unix_us = 0;
  std::optional<double> cpu_pct;
  std::optional<std::int64_t> rss_bytes, mem_used_bytes, mem_total_bytes;
  std::vector<gpu_info> gpus;
};

/// One point of a run's resource history: what a chart over time needs of a sample.
struct resource_point {
  std::int64_t unix_us = 0;
  std::optional<double> cpu_pct;
  std::optional<std::int64_t> rss_bytes;
  std::optional<double> gpu_util_pct;             ///< mean over the GPUs with a utilisation reading
  std::optional<std::int64_t> gpu_mem_used_bytes;  ///< sum over the GPUs
};

/// One rank (process) of a run, keyed by the envelope's `rank`.
struct rank_state {
  std::int64_t rank = 0;
  std::string host;
  std::int64_t pid = 0;  ///< of its run_start when seen, else of its first event
  std::optional<double> process_start_time;    ///< run_start's, unix seconds
  std::optional<double> heartbeat_interval_s;  ///< run_start's, when its heartbeats are on
  std::optional<std::int64_t> stale_after_heartbeats;
  run_status status = run_status::running;
  std::optional<std::string> final_status;  ///< its run_complete's `status`
  std::string stage;
  double progress_pct = 0.0;
  std::optional<std::int64_t> step;  ///< latest step of its progress or metrics events
  std::int64_t last_seen_us = 0;     ///< event time of its latest event
  std::uint64_t events = 0;
  std::int64_t process_checked_us = 0;  ///< when the tracker last looked for its process in /proc

  bool running() const noexcept { return status == run_status::running || status == run_status::stale; }
};

/// Everything known about one run.
struct run_state {
  std::string run_id;
  std::optional<std::string> name;
  run_status status = run_status::running;
  std::optional<std::string> final_status;  ///< run_complete's `status`, as sent
  std::optional<double> duration_s;         ///< run_complete's `duration_s`
  std::string stage;                        ///< current stage, empty before the first
  std::vector<stage_span> stages;           ///< every stage in order, the current one last
  double progress_pct = 0.0;
  std::optional<std::string> current_target;
  std::int64_t targets_complete = 0;
  std::int64_t targets_total = 0;
  std::optional<std::int64_t> step, total_steps, epoch, total_epochs;
  std::optional<double> eta_s;  ///< seconds left at the recent rate of progress; empty when unknown
  std::vector<target_summary> completed_targets;
  std::map<std::string, metric_series> metrics;
  std::vector<run_error> errors;
  std::int64_t first_seen_us = 0;  ///< event time of the first event
  std::int64_t last_seen_us = 0;   ///< event time of the latest event
  std::uint64_t events = 0;
  /// Every rank seen, by rank. A run's status comes from all of them: `failed` when a rank
  /// failed, else `killed` when a rank's process is gone, else `completed`/`cancelled` once all
  /// `world_size` ranks ended, else `stale` when a rank still running is stale, else `running`.
  /// Stage, progress, step and metrics above are those of the lowest rank seen.
  std::map<std::int64_t, rank_state> ranks;
  std::int64_t world_size = 1;  ///< the largest `world_size` of its events
  /// The straggler: among ranks still `running`, the one with the lowest step, then the lowest
  /// progress; empty with fewer than two such ranks or when they are all level.
  std::optional<std::int64_t> slowest_rank;
  std::vector<std::int64_t> stale_ranks;  ///< ranks now `stale`, in order
  std::vector<std::string> tags;            ///< run_start's
  std::optional<std::string> config_json;   ///< run_start's config object, as JSON text
  std::optional<std::int64_t> started_us;   ///< event time of the earliest run_start
  std::optional<std::int64_t> ended_us;     ///< event time of the run_complete (lowest rank's)
  /// Steps per second over the ETA window, from the steps of progress and metrics events;
  /// empty until two steps apart are seen.
  std::optional<double> steps_per_s;
  std::deque<log_line> logs;                   ///< the newest `recent_logs`, oldest first, every rank
  std::optional<resource_snapshot> resources;  ///< the latest sample of the lowest rank
  std::deque<resource_point> resource_history;  ///< the newest `resource_history`, oldest first

  bool running() const noexcept { return status == run_status::running || status == run_status::stale; }
  /// The host of the lowest rank seen; empty before any event.
  std::string host() const { return ranks.empty() ? std::string() : ranks.begin()->second.host; }
  /// Seconds from the run_start (else the first event) to the run_complete (else the last event)
  /// for a run that ended, to `now_us` for one still running.
  double elapsed_s(std::int64_t now_us) const noexcept {
    const std::int64_t from = started_us.value_or(first_seen_us);
    const std::int64_t to = running() ? now_us : ended_us.value_or(last_seen_us);
    return static_cast<double>(to - from) / 1e6;
  }
};

/// A metric name split into the series it belongs to: `base` (the name without its marker) and
/// whether it is the validation or the training series of it.
struct metric_name_parts {
  std::string base;
  bool validation = false;
};

/// The one rule pairing training and validation series (the dashboard and events-tail use it,
/// never their own): a `val_`, `val/`, `valid_`, `validation_`, `eval_`, `eval/` or `test_` prefix,
/// or a `_val` suffix, marks validation of the rest; a `train_` or `train/` prefix marks training
/// of the rest; any other name is training of itself. A marker with nothing left is no marker.
metric_name_parts split_metric_name(std::string_view name);

/// The training and validation series of one base name; either may be empty.
struct metric_group {
  std::optional<std::string> train;
  std::optional<std::string> val;
};

/// Every metric of `run` in exactly one group, by base name (split_metric_name), in name order.
/// Where two names claim one slot (`loss` and `train_loss`), the first in name order takes it and
/// the other gets a group of its own under its full name: every metric stays reachable.
std::map<std::string, metric_group> metric_groups(const run_state& run);

/// The shape of the bridge's `GET /api/training/status` (seed 004's protocol, kept so its consumers
/// connect as they are): the latest run, and the last events as raw lines.
struct training_status_snapshot {
  bool running = false;
  std::optional<std::string> run_id;
  std::optional<std::string> stage;
  double progress_pct = 0.0;
  std::optional<std::string> current_target;
  std::vector<std::string> events;  ///< the last `recent_lines` lines, oldest first
};

/// Settings of a run_tracker.
struct run_tracker_options {
  std::size_t metric_history = defaults::metric_history;  ///< points kept per metric
  std::size_t max_errors = defaults::max_errors;          ///< errors kept per run (the newest)
  std::size_t recent_lines = defaults::recent_lines;      ///< lines kept for training_status()
  /// Silence after which a rank is stale when its run_start did not say (no heartbeats, or no
  /// run_start seen); with heartbeats, `heartbeat_interval_s * stale_after_heartbeats` of its own.
  std::chrono::seconds stale_after = defaults::stale_after;
  /// Look in /proc for the processes of ranks on this host (`host` as the envelope's) that fell
  /// silent: gone, a zombie, or another process under the pid (its start time differs) ->
  /// `killed`. Off, or on another host, a dead rank only goes stale.
  bool check_processes = true;
  /// This host's name as emitters write it; empty: gethostname().
  std::string local_host;
  std::chrono::seconds eta_window = defaults::eta_window;    ///< progress samples this recent set the ETA's rate
  std::size_t recent_logs = defaults::recent_logs;            ///< log events kept per run (the newest)
  std::size_t max_log_message_bytes = defaults::max_log_message_bytes;  ///< longer messages are cut
  std::size_t resource_history = defaults::resource_history;  ///< resource samples kept per run
};

/// Folds events into per-run state. Not thread-safe: feed and read it from one thread (or guard it).
class run_tracker {
 public:
  explicit run_tracker(run_tracker_options options = {});

  /// Applies one event; `line` (its raw JSON) is kept for training_status() when given.
  void apply(const event& e, std::string_view line = {});

  /// Re-evaluates liveness at `now_us` (unix us, the reader's clock) without a new event: ranks
  /// silent for longer than their limit become `stale`, ranks on this host whose process is gone
  /// become `killed`, and run statuses follow. A live reader calls it after every poll; apply()
  /// makes a stale rank `running` again when it speaks.
  void check_stale(std::int64_t now_us);

  /// Runs in the order they were first seen.
  const std::vector<run_state>& runs() const noexcept { return runs_; }
  /// Returns the run called `run_id`, or nullptr.
  const run_state* find(std::string_view run_id) const;
  /// Returns the run of the most recent event, or nullptr before any.
  const run_state* latest() const;

  /// Returns the training status: the latest run and the recent raw lines (`/api/training/status`).
  training_status_snapshot training_status() const;

 private:
  run_state& state_of(const event& e);
  rank_state& rank_of(run_state& run, const event& e);
  void update_eta(run_state& run, std::int64_t now_us);
  void update_rate(run_state& run, std::int64_t step, std::int64_t now_us);
  void add_log(run_state& run, const event& e);
  void add_resources(run_state& run, const event& e);
  void check_rank(rank_state& rank, std::int64_t now_us);
  static void summarise(run_state& run);

  struct progress_sample {
    std::int64_t unix_us;
    double pct;
  };

  run_tracker_options options_;
  std::vector<run_state> runs_;
  std::map<std::string, std::size_t, std::less<>> index_;
  std::map<std::string, std::deque<progress_sample>, std::less<>> samples_;
  struct step_sample {
    std::int64_t unix_us;
    std::int64_t step;
  };
  /// A run's recent steps: samples at least eta_window / rate_samples apart (a bounded number
  /// however fast the steps come), and the newest step.
  struct step_rate {
    std::deque<step_sample> samples;
    step_sample newest{};
  };
  std::map<std::string, step_rate, std::less<>> step_rates_;
  std::deque<std::string> recent_;
  std::optional<std::size_t> latest_;
  std::string local_host_;
  bool proc_usable_ = false;  // /proc/self/stat reads: an absent /proc/<pid> means a gone process
};

}  // namespace foxml::events::reader
