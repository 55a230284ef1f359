#include "foxml/events/memory_sink.hpp"

namespace foxml::events {

std::vector<std::string> memory_store::lines() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lines_;
}

std::size_t memory_store::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lines_.size();
}

std::size_t memory_store::flush_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return flushes_;
}

std::size_t memory_sink::write(const line_batch& batch) noexcept {
  std::lock_guard<std::mutex> lock(store_->mutex_);
  std::size_t stored = 0;
  try {
    for (; stored < batch.size(); ++stored) {
      std::string_view line = batch.line(stored);
      if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
      store_->lines_.emplace_back(line);
    }
  } catch (...) {
    // Out of memory: the lines not stored count as refused (the worker retries, then drops them).
  }
  return stored;
}

void memory_sink::flush() noexcept {
  std::lock_guard<std::mutex> lock(store_->mutex_);
  ++store_->flushes_;
}

// A forked child has its own copy of the store that nobody reads, and its lock may have been held
// by the parent's worker at the fork: the child gets no memory sink.
std::unique_ptr<sink> memory_sink::reopen_after_fork() const { return nullptr; }

}  // namespace foxml::events
