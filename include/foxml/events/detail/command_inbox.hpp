#pragma once
// The emitter's inbox of control commands: fed by the control endpoint's thread and by sinks (on
// the worker), read by the training loop. Everything but the three flags is under one mutex; the
// training thread's emit path reads one flag (`dispatch_due`) with a relaxed load.

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "foxml/events/control.hpp"

namespace foxml::events::detail {

class command_inbox {
 public:
  enum class verdict : std::uint8_t { taken, duplicate, refused };
  struct result {
    verdict what = verdict::refused;
    std::string error;  // why it was refused
  };
  // Called under the inbox's lock, in the offering thread: `taken` once per new command before the
  // loop can see it (so its command_received precedes the loop's command_done), `refused` with the
  // reason for a command that was refused.
  struct hooks {
    std::function<void(const command&)> taken;
    std::function<void(std::string_view)> refused;
  };

  explicit command_inbox(std::string run_id) : run_id_(std::move(run_id)) {}
  command_inbox(const command_inbox&) = delete;
  command_inbox& operator=(const command_inbox&) = delete;

  // Set once, before any thread offers.
  void set_hooks(hooks h) { hooks_ = std::move(h); }
  const std::string& run_id() const noexcept { return run_id_; }

  // Takes a command from a transport (any thread but the loop's). Never throws.
  result offer(command c) noexcept;
  // Parses a line and offers it; a malformed line is refused (counted).
  result offer_line(std::string_view line) noexcept;

  bool stop_requested() const noexcept { return stop_.load(std::memory_order_relaxed); }
  bool paused() const noexcept { return paused_.load(std::memory_order_relaxed); }
  // Callbacks are registered and a command waits for them.
  bool dispatch_due() const noexcept { return due_.load(std::memory_order_relaxed); }

  // The next command for the loop; with callbacks registered they take the commands instead.
  std::optional<command> take() noexcept;
  void add_callback(std::function<void(const command&)> callback);
  // Runs the callbacks on every waiting command (the calling thread is the loop's).
  void dispatch() noexcept;

  // A pause/resume command whose command_done the pause helper owes (oldest first).
  std::optional<command> take_owed_done() noexcept;
  // Waits until not paused (resume or cancel) or `timeout`; true when not paused.
  bool wait_unpaused(std::chrono::nanoseconds timeout) noexcept;
  // The name of the command with `id`, if it is among those remembered.
  std::string name_of(std::string_view id) const;

  // Counts and reports a connection refused for its peer (another user's process).
  void refuse_peer(std::string why) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    refuse(std::move(why));
  }

  // Refuses later offers and wakes a paused loop.
  void close() noexcept;

  std::uint64_t received() const noexcept { return received_.load(std::memory_order_relaxed); }
  std::uint64_t duplicates() const noexcept { return duplicate_.load(std::memory_order_relaxed); }
  std::uint64_t refused() const noexcept { return refused_.load(std::memory_order_relaxed); }

 private:
  result refuse(std::string why) noexcept;

  const std::string run_id_;
  hooks hooks_;
  alignas(64) std::atomic<bool> due_{false};
  std::atomic<bool> stop_{false};
  std::atomic<bool> paused_{false};
  std::atomic<bool> dispatching_{false};
  std::atomic<bool> has_callbacks_{false};

  mutable std::mutex mutex_;
  std::condition_variable unpaused_;
  bool closed_ = false;
  std::deque<command> pending_;
  std::deque<command> owed_;
  // The last ids taken, with their command names, in a ring.
  std::array<std::pair<std::string, std::string>, remembered_command_ids> ids_{};
  std::size_t next_id_ = 0;
  std::mutex callbacks_mutex_;
  std::vector<std::function<void(const command&)>> callbacks_;

  std::atomic<std::uint64_t> received_{0};
  std::atomic<std::uint64_t> duplicate_{0};
  std::atomic<std::uint64_t> refused_{0};
};

}  // namespace foxml::events::detail
