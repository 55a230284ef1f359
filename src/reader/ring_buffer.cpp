#include "foxml/events/reader/ring_buffer.hpp"

#include <algorithm>

namespace foxml::events::reader {

ring_buffer::ring_buffer(std::size_t capacity) : slots_(std::max<std::size_t>(capacity, 1)) {}

std::uint64_t ring_buffer::push(stream_event value) {
  // Built outside the lock: readers only ever wait for the pointer swap.
  return push(std::make_shared<const stream_event>(std::move(value)));
}

std::uint64_t ring_buffer::push(std::shared_ptr<const stream_event> item) {
  std::uint64_t position;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    position = end_++;
    slots_[position % slots_.size()] = std::move(item);
  }
  changed_.notify_all();
  return position;
}

ring_read ring_buffer::read_locked(std::uint64_t cursor, std::size_t max) const {
  ring_read out;
  const std::uint64_t oldest = end_ > slots_.size() ? end_ - slots_.size() : 0;
  if (cursor < oldest) {
    out.missed = oldest - cursor;
    cursor = oldest;
  }
  cursor = std::min(cursor, end_);
  const std::uint64_t count = std::min<std::uint64_t>(end_ - cursor, max);
  out.events.reserve(count);
  for (std::uint64_t p = cursor; p < cursor + count; ++p) out.events.push_back(slots_[p % slots_.size()]);
  out.next = cursor + count;
  return out;
}

ring_read ring_buffer::read_since(std::uint64_t cursor, std::size_t max) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return read_locked(cursor, max);
}

ring_read ring_buffer::wait_since(std::uint64_t cursor, std::chrono::milliseconds timeout, std::size_t max) const {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return closed_ || end_ > cursor; });
  return read_locked(cursor, max);
}

std::uint64_t ring_buffer::end() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return end_;
}

std::uint64_t ring_buffer::begin() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return end_ > slots_.size() ? end_ - slots_.size() : 0;
}

std::uint64_t ring_buffer::find(const emitter_key& key, std::uint64_t seq) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::uint64_t oldest = end_ > slots_.size() ? end_ - slots_.size() : 0;
  for (std::uint64_t p = oldest; p < end_; ++p) {
    const auto& e = slots_[p % slots_.size()]->value;
    if (e.seq >= seq && e.run_id == key.run_id && e.host == key.host && e.pid == key.pid) return p;
  }
  return end_;
}

void ring_buffer::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
  }
  changed_.notify_all();
}

}  // namespace foxml::events::reader
