#pragma once
/// The training event emitter: typed emit calls for a training loop. An emit call captures its
/// fields, stamps seq and time, and pushes to a bounded queue; a background worker encodes JSON
/// lines and writes them to the sink. Emit calls never throw, never block on I/O and never grow
/// memory beyond the configured bounds.

#include <atomic>
#include <chrono>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "foxml/events/control.hpp"
#include "foxml/events/detail/emitter_state.hpp"
#include "foxml/events/event.hpp"
#include "foxml/events/options.hpp"
#include "foxml/events/schema.hpp"
#include "foxml/events/sink.hpp"

namespace foxml::events {
namespace detail {
struct signal_visit;
}

/// Emits the events of one training run to one sink (which may be a chain or tee of sinks).
/// Emit calls are thread-safe and return true when the event was queued, false when it was
/// counted as dropped (or kept back by the rank policy: emitter_options::rank_zero_only).
class training_event_emitter {
 public:
  /// Starts an emitter for `run_id` writing to `destination`. Throws std::invalid_argument for an
  /// empty run id, a null sink, unusable options or a malformed $RANK / $WORLD_SIZE.
  training_event_emitter(std::string run_id, std::unique_ptr<sink> destination, emitter_options options = {});
  /// Closes with `options.close_timeout` as the deadline.
  ~training_event_emitter();
  training_event_emitter(const training_event_emitter&) = delete;
  training_event_emitter& operator=(const training_event_emitter&) = delete;

  /// Announces the run: its name, config (a JSON object as text), tags and planned length. The
  /// library adds what a reader needs to tell a dead run from a slow one (fields left empty in
  /// `info`): `process_start_time`, and `heartbeat_interval_s` with `stale_after_heartbeats` when
  /// heartbeats are on.
  bool emit_run_start(const run_start_info& info = {}) noexcept;

  /// Reports progress within a stage.
  bool emit_progress(const progress_update& update) noexcept { return capture<event_type::progress>(update); }

  /// Reports progress within a stage, with only a percentage.
  bool emit_progress(std::string_view stage, double progress_pct) noexcept {
    progress_update update;
    update.stage = stage;
    update.progress_pct = progress_pct;
    return emit_progress(update);
  }

  /// Reports a move from `previous_stage` (empty at the start) to `new_stage`.
  bool emit_stage_change(std::optional<std::string_view> previous_stage, std::string_view new_stage) noexcept {
    stage_change_info change;
    change.previous_stage = previous_stage;
    change.new_stage = new_stage;
    return capture<event_type::stage_change>(change);
  }

  /// Reports that one target (a model, a label, a task) finished.
  bool emit_target_complete(const target_result& result) noexcept {
    return capture<event_type::target_complete>(result);
  }

  /// Reports metric scalars at `step`.
  bool emit_metrics(std::int64_t step, const metric* metrics, std::size_t count,
                    std::optional<std::int64_t> epoch = std::nullopt) noexcept {
    metrics_sample sample;
    sample.step = step;
    sample.epoch = epoch;
    sample.metrics = metrics;
    sample.metric_count = count;
    return capture<event_type::metrics>(sample);
  }

  /// Reports metric scalars at `step`: `emit_metrics(step, {{"loss", 0.4}, {"lr", 1e-3}})`.
  bool emit_metrics(std::int64_t step, std::initializer_list<metric> metrics,
                    std::optional<std::int64_t> epoch = std::nullopt) noexcept {
    return emit_metrics(step, metrics.begin(), metrics.size(), epoch);
  }

  /// Emits a log message (`level`: debug, info, warning, error...).
  bool emit_log(std::string_view level, std::string_view message) noexcept {
    log_entry entry;
    entry.level = level;
    entry.message = message;
    return capture<event_type::log>(entry);
  }

  /// Reports a resource sample (CPU, memory, GPUs).
  bool emit_resources(const resource_sample& sample) noexcept { return capture<event_type::resources>(sample); }

  /// Reports an error; `recoverable` says whether training goes on.
  bool emit_error(std::string_view error_message, std::string_view error_type = "unknown",
                  bool recoverable = true) noexcept {
    error_info error;
    error.error_message = error_message;
    error.error_type = error_type;
    error.recoverable = recoverable;
    return capture<event_type::error>(error);
  }

  /// Says the run is alive (lets a reader tell a dead run from a slow one).
  bool emit_heartbeat() noexcept { return capture<event_type::heartbeat>({}); }

  /// Reports the end of the run: `success`, `failed`, `cancelled` or `killed`. Without a duration,
  /// the time since this emitter was created is sent. Once the signal hook (signals.hpp) has ended
  /// the run, a later run_complete is refused (returns false, counted in `dropped_closed`): the run
  /// already has its terminal event.
  bool emit_run_complete(std::string_view status = "success",
                         std::optional<double> duration_s = std::nullopt) noexcept;

  // --- Control commands (control.hpp; docs/protocol.md, "Control") ------------------------------

  /// True once a `cancel` command was received: one atomic load, cheap enough for every step.
  bool should_stop() const noexcept { return state_.load(std::memory_order_acquire)->inbox().stop_requested(); }

  /// True between a `pause` and the next `resume` (or `cancel`).
  bool paused() const noexcept { return state_.load(std::memory_order_acquire)->inbox().paused(); }

  /// The next command received (first in, first out; at most command_inbox_capacity wait), or
  /// none. With callbacks registered (on_command()), they take the commands instead: this runs
  /// them and returns none.
  std::optional<command> poll_command() noexcept;

  /// Registers `callback` for every command received from now on (and those waiting). Callbacks
  /// run on the thread that calls an emit method or poll_command() next, one command at a time,
  /// never on the worker or a transport's thread; an exception from one is swallowed.
  void on_command(std::function<void(const command&)> callback);

  /// Blocks the calling (training) thread while the run is paused, until `resume` or `cancel`
  /// arrives or `timeout` passes; returns true when the run is no longer paused. It acknowledges
  /// the `pause` and `resume` commands it handles with `command_done` (outcome `ok`) itself.
  bool wait_while_paused(std::chrono::milliseconds timeout = std::chrono::hours(24)) noexcept;

  /// Reports what the loop did with command `command_id` (`outcome`: `ok`, `ignored`, `failed` or
  /// the loop's own word) as a `command_done` event, a lifecycle event.
  bool emit_command_done(std::string_view command_id, std::string_view outcome = "ok",
                         std::optional<std::string_view> message = std::nullopt) noexcept;

  /// Path of this process's control endpoint; empty when it serves none.
  std::string control_endpoint_path() const;

  /// Waits until every event emitted before the call reached the sink and the sink flushed, or the
  /// timeout passed. Returns within the timeout even when the sink hangs.
  delivery_report flush(std::chrono::milliseconds timeout = std::chrono::milliseconds(1000)) noexcept;

  /// Delivers what is queued, flushes and closes the sink, within `options.close_timeout`.
  delivery_report close() noexcept;
  /// Delivers what is queued, flushes and closes the sink, within `timeout`. Later emits are
  /// counted as dropped. A worker stuck in a hanging sink is left behind; it holds its own state.
  delivery_report close(std::chrono::milliseconds timeout) noexcept;

  /// Returns the counters since creation.
  emitter_stats stats() const noexcept;

  const std::string& run_id() const noexcept { return run_id_; }

 private:
  friend struct detail::signal_visit;

  // The signal hook's part (signals.cpp): on a fatal signal an `error` naming it first, then
  // run_complete with `status` unless the run has one, then a flush until `deadline`.
  void end_by_signal(std::string_view status, const char* fatal_signal,
                     std::chrono::steady_clock::time_point deadline) noexcept;

  // Captures a `Type` event from the struct its emit call takes, walking the schema's field list
  // (schema.hpp): the fields land in wire order whatever order the caller filled them in.
  template <event_type Type>
  bool capture(const typename schema::of<Type>::input& in) noexcept {
    return push(Type, [&](auto& w) { schema::write_fields<Type>(w, in); });
  }

  template <class Visit>
  bool push(event_type type, const Visit& visit) noexcept {
    detail::emitter_state* state = state_.load(std::memory_order_acquire);
    if (FOXML_EVENTS_UNLIKELY(state->generation() != detail::fork_generation.load(std::memory_order_relaxed))) {
      state = state_after_fork();
      if (state == nullptr) return false;
    }
    // Command callbacks run here, on the emitting thread: one relaxed load when none are due.
    if (FOXML_EVENTS_UNLIKELY(state->inbox().dispatch_due())) dispatch_commands(*state);
    if (FOXML_EVENTS_UNLIKELY(state->is_closed())) {
      state->count_refused();
      return false;
    }
    if (FOXML_EVENTS_UNLIKELY(state->kept_back(type))) {
      state->count_policy_drop();
      return false;
    }
    return state->push(type, visit);
  }

  // Runs the command callbacks (not from the signal hook's thread).
  void dispatch_commands(detail::emitter_state& state) noexcept;
  // The state this process uses (the fork child's own one), or nullptr when emits are disabled.
  detail::emitter_state* current_state() noexcept;

  // In a forked child: the state this process should use, or nullptr when emits are disabled here.
  detail::emitter_state* state_after_fork() noexcept;

  std::string run_id_;
  std::atomic<detail::emitter_state*> state_{nullptr};
  std::shared_ptr<detail::emitter_state> owner_;
  std::mutex fork_mutex_;
  std::atomic<bool> completed_{false};        // run_complete was emitted
  std::atomic<bool> ended_by_signal_{false};  // ... by the signal hook
};

/// The seed's name for the emitter.
using TrainingEventEmitter = training_event_emitter;

}  // namespace foxml::events
