#pragma once
/// A bounded ring of recent events for late joiners: read history from a cursor, then follow the
/// live events from where the history ended, with nothing missed or doubled at the seam.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "foxml/events/reader/event_stream.hpp"

namespace foxml::events::reader {

/// What a read returns: the events from the cursor on, the cursor to read from next, and how many
/// events the reader lost because the ring overwrote them before it came back.
struct ring_read {
  std::vector<std::shared_ptr<const stream_event>> events;
  std::uint64_t next = 0;
  std::uint64_t missed = 0;
};

/// Every pushed event gets a position (0, 1, 2... in arrival order, across all emitters). A
/// reader keeps a cursor: read_since(0) is all history still held; passing each result's `next`
/// to the following call yields every later event exactly once. Thread-safe: one or many writers,
/// any number of readers.
class ring_buffer {
 public:
  /// Holds the last `capacity` events (at least 1).
  explicit ring_buffer(std::size_t capacity);

  /// Appends an event; returns its position.
  std::uint64_t push(stream_event value);
  /// Appends an event the caller also keeps (one allocation shared by the ring and the caller).
  std::uint64_t push(std::shared_ptr<const stream_event> value);

  /// Returns up to `max` events at positions >= `cursor` without waiting.
  ring_read read_since(std::uint64_t cursor, std::size_t max = SIZE_MAX) const;

  /// Like read_since(), but waits up to `timeout` for an event when there is none yet at `cursor`
  /// (returns early, possibly empty, after close()).
  ring_read wait_since(std::uint64_t cursor, std::chrono::milliseconds timeout, std::size_t max = SIZE_MAX) const;

  /// Returns the position the next pushed event will get (the cursor of "live only").
  std::uint64_t end() const;
  /// Returns the position of the oldest event still held.
  std::uint64_t begin() const;
  /// Returns the position of the first held event of `key` with a seq >= `seq` (the cursor for
  /// "since seq X of that emitter"), or end() when none is held.
  std::uint64_t find(const emitter_key& key, std::uint64_t seq) const;

  /// Wakes every waiting reader; later waits return at once.
  void close();

 private:
  ring_read read_locked(std::uint64_t cursor, std::size_t max) const;

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<std::shared_ptr<const stream_event>> slots_;
  std::uint64_t end_ = 0;
  bool closed_ = false;
};

}  // namespace foxml::events::reader
