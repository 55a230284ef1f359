#include "foxml/events/emitter.hpp"

#include "foxml/events/detail/live_emitters.hpp"
#include "foxml/events/detail/text.hpp"
#include "foxml/events/identity.hpp"
#include "resources/proc_stats.hpp"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace foxml::events {
namespace {

// Set on the signal hook's thread while it ends the run: command callbacks belong to the loop.
thread_local bool ending_by_signal = false;

void on_fork_child() noexcept { detail::fork_generation.fetch_add(1, std::memory_order_relaxed); }

void install_fork_handler() {
  static const int installed = pthread_atfork(nullptr, nullptr, on_fork_child);
  (void)installed;
}

[[noreturn]] void reject(const std::string& what) { throw std::invalid_argument("foxml::events: " + what); }

std::string local_host_name() {
  char name[HOST_NAME_MAX + 1] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

template <class Duration>
void require_non_negative(Duration d, const char* field) {
  if (d.count() < 0) reject(std::string("emitter_options.") + field + " must not be negative");
}

void validate(const emitter_options& o) {
  if (o.queue_capacity < 2 || o.queue_capacity > (std::size_t{1} << 26)) {
    reject("emitter_options.queue_capacity must be between 2 and 2^26 slots, got " +
           std::to_string(o.queue_capacity));
  }
  if (o.max_line_bytes < 1024 || o.max_line_bytes > (std::size_t{64} << 20)) {
    reject("emitter_options.max_line_bytes must be between 1 KiB and 64 MiB, got " +
           std::to_string(o.max_line_bytes));
  }
  if (o.max_batch_bytes < 4096) {
    reject("emitter_options.max_batch_bytes must be at least 4096, got " + std::to_string(o.max_batch_bytes));
  }
  if (o.lifecycle_reserve > (std::size_t{1} << 20)) {
    reject("emitter_options.lifecycle_reserve must be at most 2^20, got " + std::to_string(o.lifecycle_reserve));
  }
  require_non_negative(o.block_timeout, "block_timeout");
  if (o.heartbeat_interval) require_non_negative(*o.heartbeat_interval, "heartbeat_interval");
  if (o.stale_after_heartbeats < 1) {
    reject("emitter_options.stale_after_heartbeats must be at least 1, got " +
           std::to_string(o.stale_after_heartbeats));
  }
  require_non_negative(o.resources_interval, "resources_interval");
  require_non_negative(o.close_timeout, "close_timeout");
  require_non_negative(o.sink_retry_timeout, "sink_retry_timeout");
  for (const event_type type : o.rank_zero_only) {
    if (static_cast<std::size_t>(type) >= event_type_count || is_lifecycle(type) || type == event_type::heartbeat ||
        type == event_type::dropped) {
      reject(std::string("emitter_options.rank_zero_only cannot hold ") + std::string(to_string(type)) +
             ": every rank's lifecycle events, heartbeats and drop reports are how readers know that rank");
    }
  }
  if (o.max_idle_wait.count() <= 0 || o.max_idle_wait > std::chrono::seconds(1)) {
    reject("emitter_options.max_idle_wait must be between 1 us and 1 s");
  }
  if (o.unwatched_idle_wait.count() <= 0 || o.unwatched_idle_wait > std::chrono::seconds(1)) {
    reject("emitter_options.unwatched_idle_wait must be between 1 us and 1 s");
  }
  require_non_negative(o.unwatched_after, "unwatched_after");
}

detail::stamp make_identity(std::string run_id, const emitter_options& o) {
  if (run_id.empty()) reject("run_id must not be empty");
  if (run_id.size() > 1024) reject("run_id is longer than 1024 bytes");
  detail::stamp id;
  id.run_id = std::move(run_id);
  id.host = o.host ? *o.host : local_host_name();
  id.pid = static_cast<std::int64_t>(getpid());
  const rank_identity ranks = resolve_rank_identity(o.rank, o.local_rank, o.world_size);
  id.rank = ranks.rank;
  id.local_rank = ranks.local_rank;
  id.world_size = ranks.world_size;
  return id;
}

}  // namespace

training_event_emitter::training_event_emitter(std::string run_id, std::unique_ptr<sink> destination,
                                               emitter_options options)
    : run_id_(run_id) {
  validate(options);
  if (!destination) reject("the sink must not be null");
  install_fork_handler();
  owner_ = std::make_shared<detail::emitter_state>(make_identity(std::move(run_id), options), std::move(destination),
                                                   options);
  {
    detail::signals_blocked blocked;
    owner_->start();
  }
  state_.store(owner_.get(), std::memory_order_release);
  detail::register_emitter(this);
}

training_event_emitter::~training_event_emitter() {
  detail::unregister_emitter(this);
  detail::emitter_state* state = state_.load(std::memory_order_acquire);
  if (state != nullptr) close();
}

bool training_event_emitter::emit_run_start(const run_start_info& info) noexcept {
  run_start_info full = info;
  // Read at each call, not kept: a fork child (fork_policy::restart) is another process.
  if (!full.process_start_time) full.process_start_time = detail::own_start_time();
  const detail::emitter_state* state = state_.load(std::memory_order_acquire);
  const auto& options = state->options();
  const auto heartbeat = options.heartbeat_interval.value_or(std::chrono::milliseconds(0));
  if (heartbeat.count() > 0) {
    if (!full.heartbeat_interval_s) full.heartbeat_interval_s = std::chrono::duration<double>(heartbeat).count();
    if (!full.stale_after_heartbeats) full.stale_after_heartbeats = options.stale_after_heartbeats;
  }
  return capture<event_type::run_start>(full);
}

bool training_event_emitter::emit_run_complete(std::string_view status, std::optional<double> duration_s) noexcept {
  if (ended_by_signal_.load(std::memory_order_acquire)) {
    detail::emitter_state* state = state_.load(std::memory_order_acquire);
    state->count_refused();
    return false;
  }
  completed_.store(true, std::memory_order_release);
  if (!duration_s) {
    const detail::emitter_state* state = state_.load(std::memory_order_acquire);
    duration_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - state->created()).count();
  }
  run_end end;
  end.status = status;
  end.duration_s = duration_s;
  return capture<event_type::run_complete>(end);
}

delivery_report training_event_emitter::flush(std::chrono::milliseconds timeout) noexcept {
  detail::emitter_state* state = state_.load(std::memory_order_acquire);
  if (state->generation() != detail::fork_generation.load(std::memory_order_relaxed)) {
    state = state_after_fork();
    if (state == nullptr) return delivery_report{delivery_status::closed, 0, 0};
  }
  return state->flush(timeout);
}

delivery_report training_event_emitter::close() noexcept {
  return close(state_.load(std::memory_order_acquire)->options().close_timeout);
}

delivery_report training_event_emitter::close(std::chrono::milliseconds timeout) noexcept {
  detail::emitter_state* state = state_.load(std::memory_order_acquire);
  if (state->generation() != detail::fork_generation.load(std::memory_order_relaxed)) {
    // A forked child that never emitted: the state is the parent's, whose worker does not exist
    // in this process. Leave it untouched.
    state = state_after_fork();
    if (state == nullptr) return delivery_report{delivery_status::ok, 0, 0};
  }
  return state->close(timeout);
}

emitter_stats training_event_emitter::stats() const noexcept {
  return state_.load(std::memory_order_acquire)->stats();
}

detail::emitter_state* training_event_emitter::current_state() noexcept {
  detail::emitter_state* state = state_.load(std::memory_order_acquire);
  if (state->generation() != detail::fork_generation.load(std::memory_order_relaxed)) state = state_after_fork();
  return state;
}

void training_event_emitter::dispatch_commands(detail::emitter_state& state) noexcept {
  if (!ending_by_signal) state.inbox().dispatch();
}

std::optional<command> training_event_emitter::poll_command() noexcept {
  detail::emitter_state* state = current_state();
  if (state == nullptr) return std::nullopt;
  return state->inbox().take();
}

void training_event_emitter::on_command(std::function<void(const command&)> callback) {
  if (!callback) throw std::invalid_argument("foxml::events: on_command needs a callable");
  detail::emitter_state* state = current_state();
  if (state != nullptr) state->inbox().add_callback(std::move(callback));
}

bool training_event_emitter::wait_while_paused(std::chrono::milliseconds timeout) noexcept {
  detail::emitter_state* state = current_state();
  if (state == nullptr) return true;
  auto& inbox = state->inbox();
  const auto acknowledge = [&] {
    while (auto owed = inbox.take_owed_done()) state->push_command_done(owed->id, owed->name, "ok", std::nullopt);
  };
  acknowledge();
  const bool resumed = !inbox.paused() || inbox.wait_unpaused(timeout);
  acknowledge();
  return resumed;
}

bool training_event_emitter::emit_command_done(std::string_view command_id, std::string_view outcome,
                                               std::optional<std::string_view> message) noexcept {
  detail::emitter_state* state = current_state();
  if (state == nullptr) return false;
  if (state->is_closed()) {
    state->count_refused();
    return false;
  }
  std::string name;
  try {
    name = state->inbox().name_of(command_id);
  } catch (...) {
  }
  return state->push_command_done(command_id, name, outcome, message);
}

std::string training_event_emitter::control_endpoint_path() const {
  return state_.load(std::memory_order_acquire)->control_endpoint_path();
}

detail::emitter_state* training_event_emitter::state_after_fork() noexcept {
  std::lock_guard<std::mutex> lock(fork_mutex_);
  detail::emitter_state* current = state_.load(std::memory_order_acquire);
  const std::uint64_t generation = detail::fork_generation.load(std::memory_order_relaxed);
  if (current->generation() == generation) return current;  // another thread of this child did it
  try {
    std::shared_ptr<detail::emitter_state> parent = std::move(owner_);
    parent->forget_control_after_fork();
    // The parent's state stays allocated in this child, on purpose: its worker thread does not
    // exist here and its locks may have been held at the fork, so neither destroying nor using
    // it is safe.
    new std::shared_ptr<detail::emitter_state>(parent);

    detail::stamp identity = parent->identity();
    identity.pid = static_cast<std::int64_t>(getpid());
    std::unique_ptr<sink> reopened;
    if (parent->options().after_fork == fork_policy::restart) reopened = parent->reopen_sink_after_fork();
    const bool usable = reopened != nullptr;
    if (!usable) reopened = std::make_unique<detail::refusing_sink>();
    owner_ = std::make_shared<detail::emitter_state>(std::move(identity), std::move(reopened), parent->options());
    if (usable) {
      detail::rearm_signal_hook_after_fork();
      detail::signals_blocked blocked;
      owner_->start();
    } else {
      owner_->refuse_all();
    }
    state_.store(owner_.get(), std::memory_order_release);
    return owner_.get();
  } catch (...) {
    return nullptr;
  }
}

void training_event_emitter::end_by_signal(std::string_view status, const char* fatal_signal,
                                           std::chrono::steady_clock::time_point deadline) noexcept {
  detail::emitter_state* state = state_.load(std::memory_order_acquire);
  // A forked child that never emitted through this emitter has no run of its own to end.
  if (state->generation() != detail::fork_generation.load(std::memory_order_relaxed)) return;
  if (state->is_closed()) return;
  ending_by_signal = true;
  if (!completed_.load(std::memory_order_acquire)) {
    if (fatal_signal != nullptr) {
      char message[64];
      std::snprintf(message, sizeof(message), "the process received %s", fatal_signal);
      emit_error(message, "signal", false);
    }
    emit_run_complete(status);
    ended_by_signal_.store(true, std::memory_order_release);
  }
  ending_by_signal = false;
  const auto left = deadline - std::chrono::steady_clock::now();
  state->flush(std::max<std::chrono::nanoseconds>(left, std::chrono::nanoseconds(0)));
}

}  // namespace foxml::events
