#pragma once
/// The reader's defaults, defined once: every source, the event stream, the run tracker, the live
/// reader, events-tail and the Python binding take theirs from here.

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "foxml/events/codec.hpp"

namespace foxml::events::reader::defaults {

/// Longest line a source hands out whole (a little over the emitter's default cap); the decoder's
/// own cap, so a line a source lets through is never refused for its size by the decoder.
inline constexpr std::size_t max_line_bytes = decode_limits{}.max_line_bytes;
/// Deepest nesting of arrays and objects a line may have.
inline constexpr std::size_t max_depth = decode_limits{}.max_depth;
/// Seqs may arrive this far out of order before a missing one is declared a gap.
inline constexpr std::uint64_t reorder_window = 4096;
/// Events the ring buffer keeps for late joiners.
inline constexpr std::size_t ring_size = 10000;
/// Most bytes a followed file's poll reads when a consumer holds a poll's events until it takes
/// them (pull mode): what such a consumer holds beyond one line.
inline constexpr std::size_t poll_bytes = 256 * 1024;
/// Points kept per metric by the run tracker.
inline constexpr std::size_t metric_history = 1000;
/// Errors kept per run (the newest).
inline constexpr std::size_t max_errors = 100;
/// Raw lines kept for the training status.
inline constexpr std::size_t recent_lines = 10;
/// Silence after which a running run is stale, when its run_start gave no heartbeat interval.
inline constexpr std::chrono::seconds stale_after{60};
/// Missed heartbeats after which a rank is stale, when its run_start gave an interval but no count.
inline constexpr std::int64_t stale_after_heartbeats = 3;
/// Progress samples this recent set the ETA's rate (and step samples the throughput, steps/s).
inline constexpr std::chrono::seconds eta_window{120};
/// Step samples the throughput (steps/s) keeps over the ETA window, at most.
inline constexpr std::size_t rate_samples = 256;
/// Log events kept per run (the newest).
inline constexpr std::size_t recent_logs = 200;
/// Longest log message the tracker keeps; longer ones are cut (on a UTF-8 boundary): a run's
/// logs stay a bounded size whatever its lines carry.
inline constexpr std::size_t max_log_message_bytes = 4096;
/// Resource samples kept per run (the newest).
inline constexpr std::size_t resource_history = 600;

}  // namespace foxml::events::reader::defaults
