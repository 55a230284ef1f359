#include "foxml/events/detail/emitter_state.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <array>

#include <nlohmann/json.hpp>

#include "control/endpoint.hpp"
#include "foxml/events/control.hpp"
#include "foxml/events/defaults.hpp"
#include "foxml/events/detail/text.hpp"
#include "foxml/events/resources.hpp"
#include "foxml/events/schema.hpp"
#include "line_encoder.hpp"

namespace foxml::events::detail {

std::atomic<std::uint64_t> fork_generation{0};

namespace {

std::size_t round_up_power_of_two(std::size_t n) {
  std::size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

// How often, at most, the worker reports drops with a `dropped` event (also on flush and close).
constexpr auto drop_report_interval = std::chrono::milliseconds(100);
// After a busy spell the worker looks again this soon, doubling up to max_idle_wait. Shorter waits
// cut latency little but cost a wake-up (a few us of CPU) each, taken from a training loop on a
// machine with few cores.
constexpr auto shortest_idle_wait = std::chrono::microseconds(100);
// A drain that takes this many records means a flood: the worker goes on without sleeping.
constexpr std::size_t flood_records = 1024;

// Whether a Unix socket sink is in the chain: a composite's description joins its children's
// (composite_sink.cpp), each a URI.
bool has_unix_socket_sink(const sink& destination) {
  const std::string chain = destination.describe();
  constexpr std::string_view scheme = "unix://";
  for (std::size_t at = chain.find(scheme); at != std::string::npos; at = chain.find(scheme, at + 1)) {
    if (at == 0 || chain[at - 1] == ',' || chain[at - 1] == ' ') return true;
  }
  return false;
}

// Heartbeats tell a slow run from a dead one: unless the user chose, they are on while the
// resource sampler runs, and when a Unix socket sink is in the chain (a listener is watching).
emitter_options with_default_heartbeats(emitter_options options, const sink* destination) {
  if (options.heartbeat_interval) return options;
  options.heartbeat_interval = std::chrono::milliseconds(0);
  if (options.resources_interval.count() > 0) {
    options.heartbeat_interval = options.resources_interval;
  } else if (destination != nullptr && has_unix_socket_sink(*destination)) {
    options.heartbeat_interval = default_heartbeat_interval;
  }
  return options;
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

// Everything the worker thread owns: it alone touches the sink, the encoder and the batch.
class emitter_state::worker {
 public:
  explicit worker(emitter_state& state)
      : s_(state), encoder_(state.identity_, state.options_.max_line_bytes), clock_(state.use_tsc_) {
    lane_taken_.reserve(state.options_.lifecycle_reserve);
    last_drop_report_ = std::chrono::steady_clock::now();
    last_heartbeat_ = last_drop_report_;
  }

  void run() {
    auto idle_wait = std::chrono::duration_cast<std::chrono::microseconds>(shortest_idle_wait);
    for (;;) {
      const std::size_t taken = drain();
      service(false);
      if (handle_control()) return;
      if (taken >= flood_records) {
        // The producers outpace one batch: drain again at once, and look soon after they stop.
        idle_wait = shortest_idle_wait;
        continue;
      }
      // A trickle (a training loop's pace) settles at max_idle_wait: one write per interval
      // rather than one wake-up and write() per event, which would cost the loop's CPU. With
      // nobody reading, it settles at unwatched_idle_wait: each wake-up costs the machine tens of
      // us of CPU (more in a VM), which a loop with few cores feels.
      const auto longest = watched() ? s_.options_.max_idle_wait
                                     : std::max(s_.options_.max_idle_wait, s_.options_.unwatched_idle_wait);
      s_.waiting_long_.store(idle_wait > s_.options_.max_idle_wait, std::memory_order_relaxed);
      std::unique_lock<std::mutex> lock(s_.control_mutex_);
      s_.worker_wakeup_.wait_for(lock, idle_wait, [&] {
        return s_.flush_wanted_ || s_.stop_wanted_ || s_.nudged_.load(std::memory_order_acquire);
      });
      lock.unlock();
      s_.waiting_long_.store(false, std::memory_order_relaxed);
      if (s_.nudged_.exchange(false, std::memory_order_acq_rel)) {
        idle_wait = shortest_idle_wait;  // producers are waiting for room: look again soon
        continue;
      }
      idle_wait = std::min(idle_wait * 2, longest);
    }
  }

 private:
  // Moves what the producers queued into one batch, encodes it and hands it to the sink. While the
  // sink refuses lines it took none of the queue: the refused lines are retried first, and the
  // queue fills up behind them, so the overflow policy at emit decides what is lost.
  //
  // Records get their seqs here, in the order they are encoded. A lifecycle record from the side
  // lane goes in before the first queue record claimed after it (its `seq` field holds that queue
  // position until then), so one thread's events keep their order across the lane and the queue.
  std::size_t drain() {
    if (!batch_.empty()) return deliver() ? 1 : 0;
    std::size_t taken = 0;
    clock_.refresh();
    take_lane();
    while (batch_.bytes() < s_.options_.max_batch_bytes) {
      record* r = s_.queue_.front();
      if (r == nullptr) break;
      taken += encode_lane_before(s_.queue_.consumed());
      r->seq = next_seq_++;
      encode(*r);
      s_.release_spill(*r);
      s_.queue_.pop();
      ++taken;
    }
    // The queue is empty (or the batch is full and the lane record's position is past it all).
    if (s_.queue_.front() == nullptr) taken += encode_lane_before(UINT64_MAX);
    sequence_drops();
    deliver();
    return taken;
  }

  // Whether the sink has seen a consumer within unwatched_after; asks it at most every 10 ms.
  bool watched() {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_consumer_check_ >= std::chrono::milliseconds(10)) {
      last_consumer_check_ = now;
      s_.sink_->note_consumer(now, consumer_seen_);
    }
    return now - consumer_seen_ < s_.options_.unwatched_after;
  }

  // Moves lifecycle records from the shared lane to the worker's own, once the last ones are done.
  void take_lane() {
    if (lane_next_ < lane_taken_.size() || s_.lane_pushed_.load(std::memory_order_acquire) == lane_done_) return;
    lane_taken_.clear();
    lane_next_ = 0;
    std::lock_guard<std::mutex> lock(s_.lane_mutex_);
    lane_taken_.swap(s_.lane_);  // both keep their reserved capacity: no allocation here
  }

  // Encodes the taken lane records pushed before queue position `position`; returns how many.
  std::size_t encode_lane_before(std::uint64_t position) {
    std::size_t encoded = 0;
    for (; lane_next_ < lane_taken_.size() && lane_taken_[lane_next_].seq <= position; ++lane_next_, ++encoded) {
      record& r = lane_taken_[lane_next_];
      r.seq = next_seq_++;
      encode(r);
      s_.release_spill(r);
    }
    lane_done_ += encoded;
    return encoded;
  }

  // Numbers the drops producers counted since the last call, after the records already taken.
  void sequence_drops() {
    if (s_.unsequenced_drops_.load(std::memory_order_relaxed) == 0) return;
    const std::uint64_t count = s_.unsequenced_drops_.exchange(0, std::memory_order_relaxed);
    if (count == 0) return;
    s_.note_drops(count, next_seq_, next_seq_ + count - 1);
    next_seq_ += count;
  }

  void encode(const record& r) {
    encode_outcome outcome = encode_outcome::oversize;
    try {
      outcome = encoder_.encode(r, clock_.to_unix_ns(r.ticks), batch_);
    } catch (...) {
      // Out of memory while growing the batch: this event is lost, counted like an oversize one.
      // Nothing may escape this thread: an exception here would terminate the training process.
    }
    switch (outcome) {
      case encode_outcome::ok: break;
      case encode_outcome::truncated: s_.truncated_.fetch_add(1, std::memory_order_relaxed); break;
      case encode_outcome::oversize:
        s_.dropped_oversize_.fetch_add(1, std::memory_order_relaxed);
        s_.note_drop(r.seq);
        break;
    }
  }

  // Writes the batch. Lines the sink refuses stay in the batch for the next try; after the sink
  // has refused for `sink_retry_timeout` they are dropped and counted. Returns whether anything
  // moved (lines accepted or given up on).
  bool deliver() {
    bool moved = false;
    if (!batch_.empty()) {
      const std::size_t accepted = std::min(s_.sink_->write(batch_), batch_.size());
      s_.written_.fetch_add(accepted, std::memory_order_relaxed);
      moved = accepted != 0;
      if (accepted == batch_.size()) {
        batch_.clear();
        refusing_ = false;
      } else {
        batch_.remove_front(accepted);
        const auto now = std::chrono::steady_clock::now();
        if (!refusing_ || accepted != 0) {
          refusing_ = true;
          refused_since_ = now;
        } else if (now - refused_since_ >= s_.options_.sink_retry_timeout) {
          for (std::size_t i = 0; i < batch_.size(); ++i) lose_line(batch_.seq(i));
          s_.dropped_sink_.fetch_add(batch_.size(), std::memory_order_relaxed);
          batch_.clear();
          refusing_ = false;
          moved = true;
        }
      }
    }
    count_reclaimed();
    return moved;
  }

  // Notes a line the sink lost. When it was a `dropped` report, the drops it carried go into the
  // next report too: otherwise the reports would add up to less than stats() says was dropped.
  void lose_line(std::uint64_t seq) noexcept {
    s_.note_drop(seq);
    for (in_flight_report& report : reports_) {
      if (report.count != 0 && report.seq == seq) {
        s_.note_drops(report.count, report.first, report.last);
        report.count = 0;
        return;
      }
    }
  }

  // Counts lines the sink took but has since lost (a connection broke before they were
  // acknowledged, a tee branch gave up on them): written no more, dropped_sink instead.
  void count_reclaimed() {
    reclaimed_.clear();
    // Two statements: as arguments of one call, size() may be read before reclaim() fills the batch.
    // A count above the lines handed back is lines the sink lost without their text (memory ran
    // out): counted all the same, though no `dropped` report can name their seqs.
    const std::size_t lost = s_.sink_->reclaim(reclaimed_);
    if (lost != 0) {
      for (std::size_t i = 0; i < std::min(lost, reclaimed_.size()); ++i) lose_line(reclaimed_.seq(i));
      s_.written_.fetch_sub(lost, std::memory_order_relaxed);
      s_.dropped_sink_.fetch_add(lost, std::memory_order_relaxed);
    }
  }

  // Sink upkeep, heartbeats and drop reports; `force` reports drops now (flush, close).
  void service(bool force) {
    const auto now = std::chrono::steady_clock::now();
    s_.sink_->poll(now);
    const auto heartbeat = *s_.options_.heartbeat_interval;
    if (heartbeat.count() > 0 && now - last_heartbeat_ >= heartbeat) {
      last_heartbeat_ = now;
      record r = synthesized(event_type::heartbeat);
      encode(r);
      deliver();
    }
    if (force || now - last_drop_report_ >= drop_report_interval) report_drops(now, force);
    report_notices();
  }

  // Writes what the sink has to tell the stream's readers (a fallback chain that moved) as `log`
  // events, through the sink, so they land where the stream now goes.
  void report_notices() {
    try {
      while (s_.sink_->take_notice(notice_)) {
        log_entry entry;
        entry.level = "warning";
        entry.message = notice_;
        payload_measure measure(s_.max_string_);
        schema::write_fields<event_type::log>(measure, entry);
        notice_payload_.resize(measure.size());
        record r = synthesized(event_type::log);
        payload_writer writer(notice_payload_.data(), s_.max_string_);
        schema::write_fields<event_type::log>(writer, entry);
        r.size = static_cast<std::uint32_t>(measure.size());
        r.heap = notice_payload_.data();  // owned here, not spill memory: never released
        encode(r);
        deliver();
      }
    } catch (...) {
      // Out of memory for a notice: it is lost; the events it described are where they are.
    }
  }

  void report_drops(std::chrono::steady_clock::time_point now, bool force) {
    // A flush or close reports everything; otherwise drops are numbered by drain(), after the
    // records queued before them.
    if (force) sequence_drops();
    std::uint64_t count = 0, first = 0, last = 0;
    {
      std::lock_guard<std::mutex> lock(s_.drops_mutex_);
      count = s_.pending_drop_count_;
      first = s_.pending_drop_first_;
      last = s_.pending_drop_last_;
      s_.pending_drop_count_ = 0;
    }
    last_drop_report_ = now;
    if (count == 0) return;
    record r = synthesized(event_type::dropped);
    drop_report report;
    report.count = static_cast<std::int64_t>(count);
    report.first_seq = static_cast<std::int64_t>(first);
    report.last_seq = static_cast<std::int64_t>(last);
    payload_measure measure(0);
    schema::write_fields<event_type::dropped>(measure, report);
    payload_writer writer(r.inline_payload, 0);
    schema::write_fields<event_type::dropped>(writer, report);
    r.size = static_cast<std::uint32_t>(measure.size());
    reports_[next_report_++ % reports_.size()] = in_flight_report{r.seq, count, first, last};
    encode(r);
    deliver();  // a refused report is itself noted as a drop and goes into the next one
  }

  record synthesized(event_type type) {
    s_.generated_.fetch_add(1, std::memory_order_relaxed);
    s_.synthesized_.fetch_add(1, std::memory_order_relaxed);
    record r;
    r.seq = next_seq_++;
    r.ticks = read_ticks(s_.use_tsc_);
    r.type = type;
    r.flags = 0;
    r.size = 0;
    r.heap = nullptr;
    return r;
  }

  // Answers flush and close requests; returns true when the worker should exit.
  bool handle_control() {
    std::unique_lock<std::mutex> lock(s_.control_mutex_);
    if (!s_.flush_wanted_ && !s_.stop_wanted_) return false;
    const std::uint64_t consumed = s_.queue_.consumed();
    const bool lane_empty = s_.lane_pushed_.load(std::memory_order_acquire) == lane_done_;
    // A sink still holding lines it accepted (a tee's lagging branch) gets them out, or gives up on
    // them within its own bound, before the flush or close counts as done.
    const bool sink_done = s_.sink_->pending() == 0;
    const bool stopping =
        s_.stop_wanted_ && lane_empty && s_.queue_.front() == nullptr && batch_.empty() && sink_done;
    const bool flush_reached = s_.flush_wanted_ && consumed >= s_.flush_target_ &&
                               lane_done_ >= s_.lane_flush_target_ && batch_.empty() && sink_done;
    if (!stopping && !flush_reached) return false;
    lock.unlock();

    service(true);
    s_.sink_->flush();
    if (stopping) {
      s_.sink_->close();
      // What the sink gave up on at close (a tee branch's backlog) still counts; no report can
      // follow it any more.
      count_reclaimed();
    }

    lock.lock();
    s_.delivered_pos_ = consumed;
    s_.delivered_lane_ = lane_done_;
    if (consumed >= s_.flush_target_ && lane_done_ >= s_.lane_flush_target_) s_.flush_wanted_ = false;
    if (stopping) s_.worker_done_ = true;
    s_.delivered_cv_.notify_all();
    return stopping;
  }

  // The latest `dropped` reports handed to the sink, so one the sink loses (refused past
  // sink_retry_timeout, reclaimed from a broken connection, given up by a tee branch) passes its
  // count on. Fixed size, no allocation: a report older than the last 64 is taken as delivered
  // (at the 100 ms report interval that is over 6 s on the wire).
  struct in_flight_report {
    std::uint64_t seq = 0, count = 0, first = 0, last = 0;
  };
  std::array<in_flight_report, 64> reports_{};
  std::uint64_t next_report_ = 0;

  emitter_state& s_;
  line_encoder encoder_;
  tick_converter clock_;
  line_batch batch_;  // encoded lines not yet accepted by the sink
  line_batch reclaimed_;
  std::string notice_;
  std::vector<std::byte> notice_payload_;
  bool refusing_ = false;  // the sink refused the head of batch_ on the last try
  std::chrono::steady_clock::time_point refused_since_;
  std::vector<record> lane_taken_;
  std::size_t lane_next_ = 0;   // the first record of lane_taken_ not encoded yet
  std::uint64_t lane_done_ = 0;  // lane records encoded
  std::uint64_t next_seq_ = 0;
  std::chrono::steady_clock::time_point consumer_seen_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_consumer_check_{};
  std::chrono::steady_clock::time_point last_drop_report_;
  std::chrono::steady_clock::time_point last_heartbeat_;
};

namespace {
std::uint32_t kept_back_by_rank_policy(const stamp& identity, const emitter_options& options) {
  static_assert(event_type_count <= 32, "the rank policy keeps one bit per event type");
  std::uint32_t mask = 0;
  if (identity.rank != 0) {
    for (const event_type type : options.rank_zero_only) mask |= std::uint32_t{1} << static_cast<unsigned>(type);
  }
  return mask;
}
}  // namespace

emitter_state::emitter_state(stamp identity, std::unique_ptr<sink> destination, const emitter_options& options)
    : identity_(std::move(identity)),
      options_(with_default_heartbeats(options, destination.get())),
      max_string_(options.max_line_bytes),
      use_tsc_(options.use_tsc && tsc_usable()),
      generation_(fork_generation.load(std::memory_order_relaxed)),
      created_(std::chrono::steady_clock::now()),
      kept_back_types_(kept_back_by_rank_policy(identity_, options)),
      queue_(round_up_power_of_two(options.queue_capacity)),
      nudge_mask_(std::max<std::uint64_t>(queue_.capacity() / 4, 1) - 1),
      sink_(std::move(destination)),
      inbox_(identity_.run_id) {
  lane_.reserve(options.lifecycle_reserve);
  command_inbox::hooks hooks;
  hooks.taken = [this](const command& c) {
    command_ack ack;
    ack.command = c.name;
    ack.command_id = c.id;
    ack.sender = c.sender;
    ack.arg_json = c.arg_json;
    push_generated<event_type::command_received>(ack);
  };
  hooks.refused = [this](std::string_view why) {
    if (is_closed()) return;
    const std::string message = "control command refused: " + std::string(why);
    log_entry entry;
    entry.level = "warning";
    entry.message = message;
    push_generated<event_type::log>(entry);
  };
  inbox_.set_hooks(std::move(hooks));
}

emitter_state::~emitter_state() {
  endpoint_.reset();
  // Both threads hold a reference, so either can be the one running this destructor; by then the
  // sampler was stopped by close() or has returned.
  if (sampler_.joinable()) {
    if (sampler_.get_id() == std::this_thread::get_id()) {
      sampler_.detach();
    } else {
      sampler_.join();
    }
  }
  if (thread_.joinable()) {
    // The worker holds a reference, so it can be the one running this destructor.
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();
    } else {
      thread_.join();
    }
  }
  // Events still queued were never delivered (an emit raced close()); free what they hold.
  while (record* r = queue_.front()) {
    release_spill(*r);
    queue_.pop();
    dropped_closed_.fetch_add(1, std::memory_order_relaxed);
  }
  for (record& r : lane_) release_spill(r);
}

void emitter_state::start() {
  start_control();
  // The worker takes no signals, so SIGINT and SIGTERM reach the application's own threads.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  try {
    thread_ = std::thread([self = shared_from_this()] {
      pthread_setname_np(pthread_self(), "foxml-events");
      try {
        worker(*self).run();
      } catch (...) {
        // Only allocation failures can get here (sinks and encoding do not throw). Stop cleanly:
        // later emits fill the queue and are counted as dropped; flush and close return.
        std::lock_guard<std::mutex> lock(self->control_mutex_);
        self->worker_done_ = true;
        self->delivered_cv_.notify_all();
      }
    });
    if (options_.resources_interval.count() > 0) {
      sampler_ = std::thread([self = shared_from_this()] {
        pthread_setname_np(pthread_self(), "foxml-resources");
        self->run_sampler();
      });
    }
  } catch (...) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    if (thread_.joinable()) {
      // The sampler could not start: the worker, already running, is told to stop and left to it.
      std::lock_guard<std::mutex> lock(control_mutex_);
      stop_wanted_ = true;
      worker_wakeup_.notify_one();
      thread_.detach();
    }
    throw;
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  started_ = true;
}

void emitter_state::run_sampler() noexcept {
  try {
    // Made here, not in start(): loading NVML and listing GPUs can take a while, and the first
    // CPU figure is measured from this baseline over one whole interval.
    resource_sampler sampler;
    const auto interval = options_.resources_interval;
    auto next = std::chrono::steady_clock::now() + interval;
    std::unique_lock<std::mutex> lock(sampler_mutex_);
    while (!sampler_cv_.wait_until(lock, next, [&] { return sampler_stop_; })) {
      lock.unlock();
      const resource_sample& sample = sampler.sample();
      if (!is_closed() && !kept_back(event_type::resources)) {
        // The library's own event, like heartbeats: counted as generated, not as an emit call.
        generated_.fetch_add(1, std::memory_order_relaxed);
        push(event_type::resources, [&](auto& w) { schema::write_fields<event_type::resources>(w, sample); });
      }
      lock.lock();
      // A steady cadence; after a stall (a stopped process) the next sample is one interval on,
      // not a burst of the missed ones.
      next += interval;
      const auto now = std::chrono::steady_clock::now();
      if (next < now) next = now + interval;
    }
  } catch (...) {
    // Out of memory making the sampler: no resource events from this emitter; emits go on.
  }
  std::lock_guard<std::mutex> lock(sampler_mutex_);
  sampler_done_ = true;
  sampler_cv_.notify_all();
}

void emitter_state::stop_sampler(std::chrono::steady_clock::time_point deadline) noexcept {
  // Two threads closing at once: one joins, the other finds it done.
  std::lock_guard<std::mutex> joining(sampler_join_mutex_);
  if (!sampler_.joinable() || sampler_.get_id() == std::this_thread::get_id()) return;
  bool done = false;
  {
    std::unique_lock<std::mutex> lock(sampler_mutex_);
    sampler_stop_ = true;
    sampler_cv_.notify_all();
    done = sampler_cv_.wait_until(lock, deadline, [&] { return sampler_done_; });
  }
  // A sampler stuck in a GPU driver call is left behind; it holds its own reference to this state
  // and what it still pushes is counted as dropped when the state goes.
  if (done) {
    sampler_.join();
  } else {
    sampler_.detach();
  }
}

void emitter_state::refuse_all() noexcept { closed_.store(true, std::memory_order_relaxed); }

bool emitter_state::push_when_full(record& staged, std::chrono::steady_clock::time_point deadline) noexcept {
  wake_worker();
  if (is_lifecycle(staged.type)) {
    std::lock_guard<std::mutex> lock(lane_mutex_);
    if (lane_.size() < options_.lifecycle_reserve) {
      // Read under the lock, so positions ascend along the lane (drain() relies on it).
      staged.seq = queue_.claimed();
      lane_.push_back(staged);
      lane_pushed_.fetch_add(1, std::memory_order_release);
      lifecycle_reserved_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  } else if (options_.overflow == overflow_policy::block) {
    if (deadline == std::chrono::steady_clock::time_point{}) {
      deadline = std::chrono::steady_clock::now() + options_.block_timeout;
    }
    for (unsigned attempt = 0;; ++attempt) {
      std::uint64_t position = 0;
      if (queue_.try_push([&](record& r) noexcept { r = staged; }, position)) return true;
      if (std::chrono::steady_clock::now() >= deadline) break;
      if (attempt < 64) {
        cpu_relax();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }
  }
  release_spill(staged);
  return count_drop();
}

bool emitter_state::count_drop() noexcept {
  dropped_queue_full_.fetch_add(1, std::memory_order_relaxed);
  unsequenced_drops_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

bool emitter_state::count_spill_drop() noexcept {
  dropped_spill_budget_.fetch_add(1, std::memory_order_relaxed);
  unsequenced_drops_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

std::byte* emitter_state::wait_for_spill(std::size_t size, std::chrono::steady_clock::time_point& deadline) noexcept {
  // An event larger than the whole budget never fits: waiting for it would only stall the caller.
  if (options_.overflow != overflow_policy::block || size > options_.max_spill_bytes) return nullptr;
  deadline = std::chrono::steady_clock::now() + options_.block_timeout;
  // The worker frees spill memory as it encodes; it may be idling, so wake it before waiting.
  wake_worker();
  for (unsigned attempt = 0;; ++attempt) {
    if (std::byte* block = take_spill(size)) return block;
    if (std::chrono::steady_clock::now() >= deadline) return nullptr;
    if (attempt < 64) {
      cpu_relax();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
}

void emitter_state::note_drop(std::uint64_t seq) noexcept { note_drops(1, seq, seq); }

void emitter_state::note_drops(std::uint64_t count, std::uint64_t first, std::uint64_t last) noexcept {
  std::lock_guard<std::mutex> lock(drops_mutex_);
  if (pending_drop_count_ == 0) {
    pending_drop_first_ = first;
    pending_drop_last_ = last;
  } else {
    pending_drop_first_ = std::min(pending_drop_first_, first);
    pending_drop_last_ = std::max(pending_drop_last_, last);
  }
  pending_drop_count_ += count;
}

std::byte* emitter_state::take_spill(std::size_t size) noexcept {
  const std::size_t before = spill_bytes_.fetch_add(size, std::memory_order_relaxed);
  if (before + size > options_.max_spill_bytes) {
    spill_bytes_.fetch_sub(size, std::memory_order_relaxed);
    return nullptr;
  }
  auto* block = new (std::nothrow) std::byte[size];
  if (block == nullptr) spill_bytes_.fetch_sub(size, std::memory_order_relaxed);
  return block;
}

void emitter_state::release_spill(record& r) noexcept {
  if (r.heap == nullptr) return;
  delete[] r.heap;
  r.heap = nullptr;
  spill_bytes_.fetch_sub(r.size, std::memory_order_relaxed);
}

void emitter_state::wake_worker() noexcept {
  nudged_.store(true, std::memory_order_release);
  worker_wakeup_.notify_one();
}

delivery_report emitter_state::flush(std::chrono::nanoseconds timeout) noexcept {
  if (closed_.load(std::memory_order_relaxed) || !started_) {
    return delivery_report{delivery_status::closed, stats().dropped(), 0};
  }
  const std::uint64_t target = queue_.claimed();
  const std::uint64_t lane_target = lane_pushed_.load(std::memory_order_acquire);
  bool reached = false;
  std::uint64_t delivered = 0;
  {
    std::unique_lock<std::mutex> lock(control_mutex_);
    flush_target_ = std::max(flush_target_, target);
    lane_flush_target_ = std::max(lane_flush_target_, lane_target);
    flush_wanted_ = true;
    worker_wakeup_.notify_one();
    reached = delivered_cv_.wait_for(lock, timeout, [&] {
      return (delivered_pos_ >= target && delivered_lane_ >= lane_target) || worker_done_;
    });
    delivered = std::min(delivered_pos_, target);
  }
  return delivery_report{reached ? delivery_status::ok : delivery_status::timed_out, stats().dropped(),
                         reached ? 0 : target - delivered};
}

delivery_report emitter_state::close(std::chrono::nanoseconds timeout) noexcept {
  closed_.store(true, std::memory_order_relaxed);
  inbox_.close();
  if (endpoint_) endpoint_->stop();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // First the sampler, so a sample it is pushing right now is still delivered by the worker.
  stop_sampler(deadline);
  if (!started_) return delivery_report{delivery_status::ok, stats().dropped(), 0};
  bool done = false;
  {
    std::unique_lock<std::mutex> lock(control_mutex_);
    stop_wanted_ = true;
    worker_wakeup_.notify_one();
    // An earlier close already gave up on a worker stuck in the sink: do not wait for it again.
    const auto wait = abandoned_ ? std::chrono::steady_clock::time_point{} : deadline;
    done = delivered_cv_.wait_until(lock, wait, [&] { return worker_done_; });
    if (!done) abandoned_ = true;
  }
  if (done) {
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
    return delivery_report{delivery_status::ok, stats().dropped(), 0};
  }
  // The worker is stuck in the sink. It keeps its own reference to this state and finishes (or
  // not) on its own; nothing here waits for it any longer.
  if (thread_.joinable()) thread_.detach();
  const std::uint64_t queued = queue_.claimed() - queue_.consumed();
  return delivery_report{delivery_status::timed_out, stats().dropped(), queued};
}

emitter_stats emitter_state::stats() const noexcept {
  emitter_stats s;
  // Every emit call either claimed a queue position, went into the lifecycle lane, was dropped at
  // the producer or was refused; the library's own pushed events did the same and come off again.
  // The counters are read one by one while others count, so a figure can be off by an event in
  // flight for an instant; it is kept from going below zero.
  const std::uint64_t synthesized = synthesized_.load(std::memory_order_acquire);
  s.generated = generated_.load(std::memory_order_acquire);
  const std::uint64_t pushed_generated = s.generated > synthesized ? s.generated - synthesized : 0;
  const std::uint64_t calls = queue_.claimed() + lane_pushed_.load(std::memory_order_acquire) +
                              dropped_queue_full_.load(std::memory_order_relaxed) +
                              dropped_spill_budget_.load(std::memory_order_relaxed) +
                              refused_.load(std::memory_order_relaxed);
  s.emitted = calls > pushed_generated ? calls - pushed_generated : 0;
  s.written = written_.load(std::memory_order_relaxed);
  s.dropped_queue_full = dropped_queue_full_.load(std::memory_order_relaxed);
  s.dropped_spill_budget = dropped_spill_budget_.load(std::memory_order_relaxed);
  s.dropped_sink = dropped_sink_.load(std::memory_order_relaxed);
  s.dropped_oversize = dropped_oversize_.load(std::memory_order_relaxed);
  s.dropped_closed = dropped_closed_.load(std::memory_order_relaxed);
  s.truncated = truncated_.load(std::memory_order_relaxed);
  s.lifecycle_reserved = lifecycle_reserved_.load(std::memory_order_relaxed);
  s.dropped_by_policy = dropped_by_policy_.load(std::memory_order_relaxed);
  s.commands_received = inbox_.received();
  s.commands_duplicate = inbox_.duplicates();
  s.commands_refused = inbox_.refused();
  return s;
}

std::unique_ptr<sink> emitter_state::reopen_sink_after_fork() const {
  return sink_ ? sink_->reopen_after_fork() : nullptr;
}

void emitter_state::start_control() {
  control_attachment attachment;
  attachment.inbox = &inbox_;
  sink_->attach_control(attachment);
  const auto mode = options_.control_endpoint;
  if (mode == control_endpoint_mode::off) return;
  const bool on = mode == control_endpoint_mode::on;
  if (!on && env_value("FOXML_EVENTS_CONTROL") == "0") return;
  std::string directory = options_.control_directory;
  if (directory.empty()) directory = attachment.file_directory;
  if (directory.empty()) directory = attachment.socket_directory;
  if (directory.empty()) {
    if (!on) return;  // a memory or ZeroMQ sink alone: commands come through the sink, if at all
    directory = control_directory_for(default_event_file());
  }
  const std::string path = foxml::events::control_endpoint_path(directory, identity_.run_id, identity_.pid);
  try {
    endpoint_ = std::make_unique<control_endpoint>(directory, path, inbox_, [this] { return control_status(); });
  } catch (const std::exception& e) {
    if (on) throw;
    log_entry entry;
    entry.level = "warning";
    const std::string message = std::string("no control endpoint: ") + e.what();
    entry.message = message;
    push_generated<event_type::log>(entry);
  }
}

std::string emitter_state::control_endpoint_path() const { return endpoint_ ? endpoint_->path() : std::string(); }

void emitter_state::forget_control_after_fork() noexcept {
  if (endpoint_) endpoint_->forget_after_fork();
}

std::string emitter_state::control_status() const {
  using json = nlohmann::ordered_json;
  const emitter_stats s = stats();
  json status = json::object();
  status["paused"] = inbox_.paused();
  status["stop_requested"] = inbox_.stop_requested();
  status["uptime_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - created_).count();
  status["emitted"] = s.emitted;
  status["written"] = s.written;
  status["dropped"] = s.dropped();
  status["commands_received"] = s.commands_received;
  json out = json::object();
  out["ok"] = true;
  out["run_id"] = identity_.run_id;
  out["pid"] = identity_.pid;
  out["host"] = identity_.host;
  out[std::string(schema::names::status)] = std::move(status);
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool emitter_state::push_command_done(std::string_view id, std::string_view name, std::string_view outcome,
                                      std::optional<std::string_view> message) noexcept {
  command_outcome done;
  done.command_id = id;
  done.command = name;
  done.outcome = outcome;
  done.message = message;
  return push(event_type::command_done, [&](auto& w) { schema::write_fields<event_type::command_done>(w, done); });
}

}  // namespace foxml::events::detail
