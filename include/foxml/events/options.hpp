#pragma once
/// Emitter configuration and the reports its calls return.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "foxml/events/event.hpp"

namespace foxml::events {

/// What an emit call does when the queue is full. Lifecycle events (run_start, stage_change,
/// error, run_complete) never follow it: they go to a reserved lane and are never dropped silently.
enum class overflow_policy : std::uint8_t {
  drop,   ///< count the event as dropped and return at once (the default: training never waits)
  block,  ///< wait up to `block_timeout` for space (queue slots, and spill budget for large
          ///< events), then drop and count
};

/// What an emitter does in a child made by fork() (PyTorch DataLoader workers, for instance).
enum class fork_policy : std::uint8_t {
  restart,  ///< the child gets its own worker and reopened sinks on its first emit; pid changes,
            ///< seq starts again at 0 (readers key runs by run_id, host, pid)
  disable,  ///< the child's emits are counted as dropped and go nowhere
};

/// Whether an emitter serves a per-run control endpoint (control.hpp, docs/protocol.md "Control").
enum class control_endpoint_mode : std::uint8_t {
  automatic,  ///< when the sink chain has a file or Unix socket sink (and $FOXML_EVENTS_CONTROL is not 0);
              ///< one that cannot be made is reported as a `log` warning, not an error
  on,         ///< always (in `control_directory`, else the sinks' or the default one); an error at set-up
  off,        ///< never
};

/// Heartbeat interval when heartbeats are on because a Unix socket sink is in the chain.
inline constexpr std::chrono::milliseconds default_heartbeat_interval{5000};

/// Settings of a training_event_emitter. Every field has a working default; the constructor
/// rejects values that cannot work with std::invalid_argument naming the field.
struct emitter_options {
  /// Queue slots (rounded up to a power of two; 256 bytes each). Bounds the emitter's memory.
  std::size_t queue_capacity = 16384;
  overflow_policy overflow = overflow_policy::drop;
  /// Longest wait of an emit call under overflow_policy::block (one wait shared by the spill
  /// budget and the queue).
  std::chrono::microseconds block_timeout{10'000};
  /// Longest JSON line. Longer events have their strings shortened (and carry `"truncated":true`);
  /// an event that still does not fit is dropped and counted.
  std::size_t max_line_bytes = 1u << 20;
  /// Bytes held outside the queue by events too large for a slot; beyond it such events drop
  /// (under block: after waiting for the worker to free some), counted as dropped_spill_budget.
  std::size_t max_spill_bytes = 64u << 20;
  /// Slots reserved for lifecycle events that find the queue full.
  std::size_t lifecycle_reserve = 1024;
  /// Largest batch the worker hands a sink in one write.
  std::size_t max_batch_bytes = 1u << 20;
  /// How long the worker keeps retrying lines its sink refuses (a full socket buffer, a ZeroMQ
  /// high-water mark) before it drops and counts them. Meanwhile it takes nothing more from the
  /// queue, so producers meet the overflow policy instead. A fallback chain never gets here: its
  /// last sink takes what the others refuse.
  std::chrono::milliseconds sink_retry_timeout{1000};
  /// Longest the idle worker sleeps before looking at the queue again (emit -> sink latency).
  std::chrono::microseconds max_idle_wait{500};
  /// The same while the sink says nobody is reading (sink::note_consumer: a file no process has
  /// read for `unwatched_after`). Fewer wake-ups leave the training loop's cores alone; a reader
  /// that starts following is noticed within one such wait. A value below max_idle_wait counts
  /// as max_idle_wait.
  std::chrono::microseconds unwatched_idle_wait{20'000};
  /// How long a sink's consumer may go unseen before the worker takes `unwatched_idle_wait`.
  std::chrono::milliseconds unwatched_after{5'000};
  /// Interval of `heartbeat` events, which let a reader tell a slow run from a dead one. Unset
  /// (the default): on while the resource sampler runs (every `resources_interval`) or when the
  /// sink chain has a Unix socket sink (every `default_heartbeat_interval`), else off. Zero turns
  /// them off whatever the sinks; any other value is the interval.
  std::optional<std::chrono::milliseconds> heartbeat_interval;
  /// Heartbeats a reader may miss before it calls the run stale; sent in `run_start` with the
  /// interval, so every reader applies the run's own rule. At least 1.
  std::int64_t stale_after_heartbeats = 3;
  /// Interval of `resources` events (process CPU and RSS, machine memory, GPUs: resources.hpp),
  /// sampled by a thread of their own that the training threads never wait for; zero (the
  /// default) starts none. The first sample comes one interval after the start, measured over it.
  /// A forked child gets its own sampler with its own worker (fork_policy::restart).
  std::chrono::milliseconds resources_interval{0};
  /// Deadline the destructor gives close().
  std::chrono::milliseconds close_timeout{2000};
  /// Stamped on every event; each one unset comes from the launcher's variables (torchrun's
  /// $RANK / $LOCAL_RANK / $WORLD_SIZE, else Slurm's), else 0, 0 and 1: resolve_rank_identity()
  /// in identity.hpp.
  std::optional<std::int64_t> rank;
  std::optional<std::int64_t> world_size;
  std::optional<std::int64_t> local_rank;
  /// Stamped on every event; when unset, gethostname().
  std::optional<std::string> host;
  fork_policy after_fork = fork_policy::restart;
  /// Rank policy: event types that only rank 0 emits (say `metrics` the user already averaged
  /// over ranks); every rank emits everything else (empty, the default: every rank emits all).
  /// Another rank's emit call of such a type returns false at once, before it takes a seq, so
  /// readers see no gap; it is counted in `dropped_by_policy`, never in `dropped()`. Only
  /// progress, target_complete, metrics, log and resources may be listed: each rank's lifecycle
  /// events, heartbeats and drop reports are how readers know that rank (std::invalid_argument).
  std::vector<event_type> rank_zero_only;
  /// Stamp events with the CPU's invariant TSC when it has one (cheaper than clock_gettime).
  bool use_tsc = true;

  // The control back-channel (control.hpp).
  control_endpoint_mode control_endpoint = control_endpoint_mode::automatic;
  /// Directory of the control endpoint; empty: `control/` next to the first file sink, else next
  /// to the first Unix socket sink (control_directory_for()).
  std::string control_directory;
};

/// Counters of an emitter since it was created.
///
/// Every event is either written or in exactly one drop count: once close() returned `ok`,
/// `emitted + generated == written + dropped()`; before that the difference is still on its way.
struct emitter_stats {
  /// Emit calls the application made (each one accepted or dropped, after close() too), except
  /// those the rank policy kept back (`dropped_by_policy`). The library's own events are not in
  /// it: they are `generated`.
  std::uint64_t emitted = 0;
  /// Events the library added to the stream itself: `dropped` reports and heartbeats. They take
  /// seqs like every other event, so the last seq is `emitted + generated - 1` at most.
  std::uint64_t generated = 0;
  std::uint64_t written = 0;           ///< lines the sink accepted (the application's and generated)
  std::uint64_t dropped_queue_full = 0;  ///< the queue was full (past block_timeout under block)
  /// Large events (over a queue slot) refused because the spill budget (max_spill_bytes) stayed
  /// full (past block_timeout under block).
  std::uint64_t dropped_spill_budget = 0;
  std::uint64_t dropped_sink = 0;      ///< lines the sink refused
  std::uint64_t dropped_oversize = 0;  ///< events over max_line_bytes even after shortening
  std::uint64_t dropped_closed = 0;    ///< emits after close() or in a disabled fork child
  std::uint64_t truncated = 0;         ///< events whose strings were shortened
  std::uint64_t lifecycle_reserved = 0;  ///< lifecycle events that went through the reserve lane
  /// Emit calls the rank policy (`emitter_options::rank_zero_only`) kept from this rank. Not a
  /// loss: they took no seq and are in neither `emitted` nor `dropped()`.
  std::uint64_t dropped_by_policy = 0;

  // Control commands (control.hpp). A command taken is acknowledged with a generated
  // `command_received`; a duplicate id is not; a refused one gets a `log` warning instead.
  std::uint64_t commands_received = 0;   ///< new commands taken into the inbox
  std::uint64_t commands_duplicate = 0;  ///< repeats of an id already taken (acknowledged once only)
  std::uint64_t commands_refused = 0;    ///< malformed, for another run, inbox full, or a peer of another uid

  std::uint64_t dropped() const noexcept {
    return dropped_queue_full + dropped_spill_budget + dropped_sink + dropped_oversize + dropped_closed;
  }
};

/// Outcome of flush() and close().
enum class delivery_status : std::uint8_t {
  ok,         ///< everything emitted before the call reached the sink (or was counted as dropped)
  timed_out,  ///< the deadline passed first; `pending` events were still on their way
  closed,     ///< flush() on an emitter that was already closed
};

struct delivery_report {
  delivery_status status = delivery_status::ok;
  std::uint64_t dropped = 0;  ///< total drops since the emitter was created
  std::uint64_t pending = 0;  ///< events not yet handed to the sink when the call returned

  bool ok() const noexcept { return status == delivery_status::ok; }
};

/// Returns "ok", "timed_out" or "closed".
constexpr const char* to_string(delivery_status status) noexcept {
  switch (status) {
    case delivery_status::ok: return "ok";
    case delivery_status::timed_out: return "timed_out";
    case delivery_status::closed: return "closed";
  }
  return "unknown";
}

}  // namespace foxml::events
