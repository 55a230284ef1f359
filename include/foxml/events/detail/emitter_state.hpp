#pragma once
// The shared state between an emitter's producers and its worker thread. The hot path (push) is
// inline here; everything that may wait, allocate or do I/O lives in src/emitter_state.cpp.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "foxml/events/detail/bounded_queue.hpp"
#include "foxml/events/detail/clock.hpp"
#include "foxml/events/detail/command_inbox.hpp"
#include "foxml/events/detail/record.hpp"
#include "foxml/events/event.hpp"
#include "foxml/events/options.hpp"
#include "foxml/events/schema.hpp"
#include "foxml/events/sink.hpp"

#define FOXML_EVENTS_LIKELY(x) __builtin_expect(!!(x), 1)
#define FOXML_EVENTS_UNLIKELY(x) __builtin_expect(!!(x), 0)

namespace foxml::events::detail {

// Bumped in every child created by fork(); an emitter compares it with the value it was made under.
extern std::atomic<std::uint64_t> fork_generation;

// What every line carries besides the event's own fields.
struct stamp {
  std::string run_id;
  std::string host;
  std::int64_t pid = 0;
  std::int64_t rank = 0;
  std::int64_t world_size = 1;
  std::int64_t local_rank = 0;
};

// Stands in for a destination that cannot be used (a fork child whose sink cannot be reopened).
class refusing_sink final : public sink {
 public:
  std::size_t write(const line_batch&) noexcept override { return 0; }
  bool healthy() noexcept override { return false; }
  std::string describe() const override { return "none://"; }
};

class control_endpoint;  // src/control/endpoint.hpp

class emitter_state : public std::enable_shared_from_this<emitter_state> {
 public:
  emitter_state(stamp identity, std::unique_ptr<sink> destination, const emitter_options& options);
  ~emitter_state();
  emitter_state(const emitter_state&) = delete;
  emitter_state& operator=(const emitter_state&) = delete;

  // Starts the worker thread, and the resource sampler's when options ask for one; each keeps this
  // state alive until it exits.
  void start();
  // Marks a state that never gets a worker (a disabled fork child): every emit is counted refused.
  void refuse_all() noexcept;

  // Captures one event. `visit` writes the payload fields in schema order to the writer it is given;
  // it is called twice (measure, then copy), so it must be side-effect free.
  template <class Visit>
  bool push(event_type type, const Visit& visit) noexcept {
    payload_measure measure(max_string_);
    visit(measure);
    const std::size_t size = measure.size();
    std::byte* heap = nullptr;
    // Set when a block-policy emit started waiting, so the spill wait and the queue wait share
    // one block_timeout.
    std::chrono::steady_clock::time_point deadline{};
    if (FOXML_EVENTS_UNLIKELY(size > record_inline_bytes)) {
      heap = take_spill(size);
      if (heap == nullptr) heap = wait_for_spill(size, deadline);
      if (heap == nullptr) return count_spill_drop();
      payload_writer writer(heap, max_string_);
      visit(writer);
    }
    // No seq here: the worker numbers records in the order it takes them, so an emit costs one
    // locked instruction (the ring's claim), not two, and seqs ascend in the order lines are written.
    const std::uint64_t ticks = read_ticks(use_tsc_);
    const std::uint8_t flags = measure.truncates() ? record_flag_truncated : 0;
    auto fill = [&](record& r) noexcept {
      r.ticks = ticks;
      r.type = type;
      r.flags = flags;
      r.size = static_cast<std::uint32_t>(size);
      r.heap = heap;
      if (heap == nullptr) {
        payload_writer writer(r.inline_payload, max_string_);
        visit(writer);
      }
    };
    std::uint64_t position = 0;
    if (FOXML_EVENTS_LIKELY(queue_.try_push(fill, position))) {
      // Every quarter of the ring, a worker in its long (unwatched) idle wait is nudged, so it
      // starts on a burst before the ring fills up. Only then: the wake-up is a futex call (~1.5 us).
      if (FOXML_EVENTS_UNLIKELY((position & nudge_mask_) == 0) && waiting_long_.load(std::memory_order_relaxed)) {
        wake_worker();
      }
      return true;
    }
    record staged;
    fill(staged);
    return push_when_full(staged, deadline);
  }

  // Counts an emit that was refused before capture (closed emitter, disabled fork child).
  void count_refused() noexcept {
    refused_.fetch_add(1, std::memory_order_relaxed);
    dropped_closed_.fetch_add(1, std::memory_order_relaxed);
  }

  // The rank policy: whether this rank keeps `type` back (rank_zero_only on a rank other than 0).
  bool kept_back(event_type type) const noexcept { return (kept_back_types_ >> static_cast<unsigned>(type)) & 1u; }
  void count_policy_drop() noexcept { dropped_by_policy_.fetch_add(1, std::memory_order_relaxed); }

  delivery_report flush(std::chrono::nanoseconds timeout) noexcept;
  delivery_report close(std::chrono::nanoseconds timeout) noexcept;
  emitter_stats stats() const noexcept;

  const stamp& identity() const noexcept { return identity_; }
  const emitter_options& options() const noexcept { return options_; }
  // Opens this state's destination again for a forked child (nullptr when it cannot be shared).
  std::unique_ptr<sink> reopen_sink_after_fork() const;

  bool is_closed() const noexcept { return closed_.load(std::memory_order_relaxed); }

  // The control back-channel (control.hpp).
  command_inbox& inbox() noexcept { return inbox_; }
  const command_inbox& inbox() const noexcept { return inbox_; }
  // Path of this state's control endpoint; empty when it has none.
  std::string control_endpoint_path() const;
  // Emits `command_done` for `c` (the loop's acknowledgement).
  bool push_command_done(std::string_view id, std::string_view name, std::string_view outcome,
                         std::optional<std::string_view> message) noexcept;
  // In a fork child: lets go of the parent's control endpoint descriptors (see emitter.cpp).
  void forget_control_after_fork() noexcept;
  std::uint64_t generation() const noexcept { return generation_; }
  std::chrono::steady_clock::time_point created() const noexcept { return created_; }

 private:
  class worker;
  friend class worker;

  bool push_when_full(record& staged, std::chrono::steady_clock::time_point deadline) noexcept;
  // A producer's drop has no seq yet: the worker gives it one between the records it takes
  // (sequence_drops), so every drop still falls inside a `dropped` report's seq range.
  bool count_drop() noexcept;
  bool count_spill_drop() noexcept;
  void note_drop(std::uint64_t seq) noexcept;  // adds a seq to the next `dropped` report
  // Adds `count` drops with seqs in [first, last] to the next report (a lost report's own count).
  void note_drops(std::uint64_t count, std::uint64_t first, std::uint64_t last) noexcept;
  std::byte* take_spill(std::size_t size) noexcept;
  // Under overflow_policy::block, retries take_spill() while the worker frees spill memory, until
  // `deadline` (set here to now + block_timeout when still unset). nullptr otherwise.
  std::byte* wait_for_spill(std::size_t size, std::chrono::steady_clock::time_point& deadline) noexcept;
  void release_spill(record& r) noexcept;
  void wake_worker() noexcept;
  // The resource sampler's thread: a `resources` event every resources_interval until stopped.
  void run_sampler() noexcept;
  // Stops the sampler thread, waiting for it until `deadline` at most.
  void stop_sampler(std::chrono::steady_clock::time_point deadline) noexcept;

  // Immutable after construction.
  const stamp identity_;
  const emitter_options options_;
  const std::size_t max_string_;
  const bool use_tsc_;
  const std::uint64_t generation_;
  const std::chrono::steady_clock::time_point created_;
  const std::uint32_t kept_back_types_;  // bit per event_type kept back by the rank policy

  // Producer side.
  bounded_queue<record> queue_;
  const std::uint64_t nudge_mask_;  // a push at a multiple of capacity/4 wakes the worker
  alignas(cache_line) std::atomic<bool> closed_{false};
  std::atomic<std::size_t> spill_bytes_{0};

  // Overflow paths: taken only when the queue is full, so their locks never touch the common path.
  std::mutex drops_mutex_;
  std::uint64_t pending_drop_count_ = 0;
  std::uint64_t pending_drop_first_ = 0;
  std::uint64_t pending_drop_last_ = 0;
  std::mutex lane_mutex_;
  std::vector<record> lane_;  // a lane record's `seq` holds the queue position it was pushed at
  std::atomic<std::uint64_t> lane_pushed_{0};

  // Counters, written by whichever side counts the event, read by stats().
  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> dropped_queue_full_{0};
  std::atomic<std::uint64_t> dropped_spill_budget_{0};
  std::atomic<std::uint64_t> dropped_sink_{0};
  std::atomic<std::uint64_t> dropped_oversize_{0};
  std::atomic<std::uint64_t> dropped_closed_{0};
  std::atomic<std::uint64_t> truncated_{0};
  std::atomic<std::uint64_t> lifecycle_reserved_{0};
  std::atomic<std::uint64_t> generated_{0};    // the library's own events (pushed or synthesized)
  std::atomic<std::uint64_t> synthesized_{0};  // of those, the worker's (heartbeats, reports)
  std::atomic<std::uint64_t> unsequenced_drops_{0};  // producers' drops the worker has not numbered
  std::atomic<std::uint64_t> refused_{0};    // emit calls refused before they took a seq
  std::atomic<std::uint64_t> dropped_by_policy_{0};

  // Control between callers of flush/close and the worker.
  std::mutex control_mutex_;
  std::condition_variable worker_wakeup_;
  // Set by wake_worker() without the mutex (an emit must not wait for it): a wake-up this misses
  // (set between the worker's check and its wait) costs at most one idle wait.
  std::atomic<bool> nudged_{false};
  std::atomic<bool> waiting_long_{false};  // the worker sleeps longer than max_idle_wait
  std::condition_variable delivered_cv_;
  std::uint64_t flush_target_ = 0;      // queue position a flush waits for
  std::uint64_t lane_flush_target_ = 0;
  std::uint64_t delivered_pos_ = 0;     // queue position written and flushed to the sink
  std::uint64_t delivered_lane_ = 0;
  bool flush_wanted_ = false;
  bool stop_wanted_ = false;
  bool worker_done_ = false;
  bool abandoned_ = false;  // a close() timed out waiting for the worker

  std::unique_ptr<sink> sink_;  // used by the worker only
  std::thread thread_;
  bool started_ = false;

  // Control: the inbox (fed from the control endpoint's thread and the sinks), the endpoint.
  // Starts the control endpoint the options and the sinks ask for (start()).
  void start_control();
  // The JSON object a status query on the control endpoint answers with.
  std::string control_status() const;
  // The library's own event (command_received, a refusal's log line): counted as generated.
  template <event_type Type>
  void push_generated(const typename schema::of<Type>::input& in) noexcept {
    generated_.fetch_add(1, std::memory_order_relaxed);
    push(Type, [&](auto& w) { schema::write_fields<Type>(w, in); });
  }
  command_inbox inbox_;
  std::unique_ptr<control_endpoint> endpoint_;

  // The resource sampler: its own thread and clock, woken early only to stop.
  std::mutex sampler_mutex_;
  std::mutex sampler_join_mutex_;  // held by the one close() that stops the sampler
  std::condition_variable sampler_cv_;
  bool sampler_stop_ = false;
  bool sampler_done_ = false;
  std::thread sampler_;
};

}  // namespace foxml::events::detail
