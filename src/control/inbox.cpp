#include "foxml/events/detail/command_inbox.hpp"

#include <algorithm>

namespace foxml::events::detail {
namespace {
constexpr std::string_view cancel_name = "cancel";
constexpr std::string_view pause_name = "pause";
constexpr std::string_view resume_name = "resume";
}  // namespace

command_inbox::result command_inbox::refuse(std::string why) noexcept {
  refused_.fetch_add(1, std::memory_order_relaxed);
  try {
    if (hooks_.refused) hooks_.refused(why);
  } catch (...) {
  }
  return result{verdict::refused, std::move(why)};
}

command_inbox::result command_inbox::offer_line(std::string_view line) noexcept {
  command_parse parsed = parse_command(line);
  if (!parsed.value) {
    std::lock_guard<std::mutex> lock(mutex_);
    return refuse(std::move(parsed.error));
  }
  return offer(std::move(*parsed.value));
}

command_inbox::result command_inbox::offer(command c) noexcept {
  try {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return refuse("the run's emitter is closed");
    if (c.run_id != run_id_) return refuse("command for run '" + c.run_id + "', this is run '" + run_id_ + "'");
    for (const auto& remembered : ids_) {
      if (!remembered.first.empty() && remembered.first == c.id) {
        duplicate_.fetch_add(1, std::memory_order_relaxed);
        return result{verdict::duplicate, {}};
      }
    }
    if (pending_.size() >= command_inbox_capacity) {
      return refuse("command '" + c.name + "' (id " + c.id + ") refused: the inbox is full (" +
                    std::to_string(command_inbox_capacity) + " commands the loop has not taken)");
    }
    ids_[next_id_++ % ids_.size()] = {c.id, c.name};
    received_.fetch_add(1, std::memory_order_relaxed);
    if (hooks_.taken) hooks_.taken(c);
    if (c.name == cancel_name) {
      stop_.store(true, std::memory_order_relaxed);
      paused_.store(false, std::memory_order_relaxed);
      unpaused_.notify_all();
    } else if (c.name == pause_name || c.name == resume_name) {
      paused_.store(c.name == pause_name, std::memory_order_relaxed);
      if (owed_.size() >= command_inbox_capacity) owed_.pop_front();
      owed_.push_back(c);
      if (c.name == resume_name) unpaused_.notify_all();
    }
    pending_.push_back(std::move(c));
    if (has_callbacks_.load(std::memory_order_relaxed)) due_.store(true, std::memory_order_release);
    return result{verdict::taken, {}};
  } catch (...) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return result{verdict::refused, "out of memory"};
  }
}

std::optional<command> command_inbox::take() noexcept {
  if (has_callbacks_.load(std::memory_order_relaxed)) {
    dispatch();
    return std::nullopt;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (pending_.empty()) return std::nullopt;
  std::optional<command> out(std::move(pending_.front()));
  pending_.pop_front();
  return out;
}

void command_inbox::add_callback(std::function<void(const command&)> callback) {
  {
    std::lock_guard<std::mutex> lock(callbacks_mutex_);
    callbacks_.push_back(std::move(callback));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  has_callbacks_.store(true, std::memory_order_relaxed);
  if (!pending_.empty()) due_.store(true, std::memory_order_release);
}

void command_inbox::dispatch() noexcept {
  // One dispatcher at a time; a callback that emits does not re-enter.
  if (dispatching_.exchange(true, std::memory_order_acquire)) return;
  try {
    std::vector<std::function<void(const command&)>> callbacks;
    for (;;) {
      std::optional<command> next;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (pending_.empty()) {
          due_.store(false, std::memory_order_relaxed);
          break;
        }
        next.emplace(std::move(pending_.front()));
        pending_.pop_front();
      }
      {
        std::lock_guard<std::mutex> lock(callbacks_mutex_);
        callbacks = callbacks_;  // a callback may register another
      }
      for (const auto& callback : callbacks) {
        try {
          callback(*next);
        } catch (...) {
          // A callback's exception must not reach the emit call that ran it.
        }
      }
    }
  } catch (...) {
  }
  dispatching_.store(false, std::memory_order_release);
}

std::optional<command> command_inbox::take_owed_done() noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  if (owed_.empty()) return std::nullopt;
  std::optional<command> out(std::move(owed_.front()));
  owed_.pop_front();
  return out;
}

bool command_inbox::wait_unpaused(std::chrono::nanoseconds timeout) noexcept {
  std::unique_lock<std::mutex> lock(mutex_);
  return unpaused_.wait_for(lock, timeout, [&] { return !paused_.load(std::memory_order_relaxed) || closed_; }) &&
         !paused_.load(std::memory_order_relaxed);
}

std::string command_inbox::name_of(std::string_view id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& remembered : ids_) {
    if (!remembered.first.empty() && remembered.first == id) return remembered.second;
  }
  return {};
}

void command_inbox::close() noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  closed_ = true;
  unpaused_.notify_all();
}

}  // namespace foxml::events::detail
