#pragma once
/// The sink interface: where the worker delivers encoded JSON lines. Sinks are called only from the
/// emitter's worker thread, so an implementation needs no locking of its own.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace foxml::events {

/// A run of complete, `\n`-terminated JSON lines in one contiguous buffer, with the seq of each.
class line_batch {
 public:
  /// Appends one line; `line` must end with `\n`.
  void append(std::string_view line, std::uint64_t seq) {
    if (text_.size() < used_ + line.size()) text_.resize(std::max(text_.size() * 2, used_ + line.size()));
    line.copy(text_.data() + used_, line.size());
    lines_.push_back(entry{used_, line.size(), seq});
    used_ += line.size();
  }
  /// Removes the first `count` lines, keeping the rest in order.
  void remove_front(std::size_t count) {
    if (count == 0) return;
    if (count >= lines_.size()) {
      clear();
      return;
    }
    const std::size_t shift = lines_[count].offset;
    text_.erase(0, shift);
    used_ -= shift;
    lines_.erase(lines_.begin(), lines_.begin() + static_cast<std::ptrdiff_t>(count));
    for (auto& entry : lines_) entry.offset -= shift;
  }
  /// Removes every line; keeps the buffers' capacity.
  void clear() noexcept {
    used_ = 0;
    lines_.clear();
  }

  std::size_t size() const noexcept { return lines_.size(); }
  bool empty() const noexcept { return lines_.empty(); }
  std::size_t bytes() const noexcept { return used_; }

  /// Returns line `i`, with its `\n`.
  std::string_view line(std::size_t i) const noexcept {
    return std::string_view(text_.data() + lines_[i].offset, lines_[i].size);
  }
  std::uint64_t seq(std::size_t i) const noexcept { return lines_[i].seq; }
  /// Returns all lines as one buffer.
  std::string_view text() const noexcept { return std::string_view(text_.data(), used_); }
  /// Returns lines [first, last) as one buffer.
  std::string_view text(std::size_t first, std::size_t last) const noexcept {
    if (first >= last) return {};
    const std::size_t begin = lines_[first].offset;
    const std::size_t end = lines_[last - 1].offset + lines_[last - 1].size;
    return std::string_view(text_.data() + begin, end - begin);
  }

  // For encoders that write a line in place: `storage()` may be larger than `bytes()`; an encoder
  // writes past bytes(), then calls set_bytes() and commit() for the line [start, bytes()).
  std::string& storage() noexcept { return text_; }
  void set_bytes(std::size_t used) noexcept { used_ = used; }
  void commit(std::size_t start, std::uint64_t seq) { lines_.push_back(entry{start, used_ - start, seq}); }

 private:
  struct entry {
    std::size_t offset;
    std::size_t size;
    std::uint64_t seq;
  };
  std::string text_;
  std::size_t used_ = 0;
  std::vector<entry> lines_;
};

/// A destination for encoded events. Every method is called from the worker thread only and must
/// not throw; a sink that cannot deliver says so through its return values.
class sink {
 public:
  virtual ~sink() = default;

  /// Takes the lines of `batch` in order and returns how many leading lines it accepted; the rest
  /// are refused and the caller counts them or routes them elsewhere. Must not block for long.
  virtual std::size_t write(const line_batch& batch) noexcept = 0;

  /// Pushes buffered lines to their destination; returns false when that failed.
  virtual bool flush() noexcept { return true; }

  /// Releases the sink's resources; later writes refuse everything.
  virtual void close() noexcept {}

  /// Reports whether the next write is expected to be accepted (a fallback chain asks this).
  virtual bool healthy() noexcept { return true; }

  /// Moves into `out` lines this sink accepted earlier but now knows were not delivered (a
  /// connection broke before the listener acknowledged them); returns how many.
  virtual std::size_t reclaim(line_batch& out) noexcept {
    (void)out;
    return 0;
  }

  /// Lines this sink accepted and still holds on their way (a tee's lagging branch); flush and
  /// close wait for them to go or to be given up on (then reclaim() hands them back).
  virtual std::size_t pending() const noexcept { return 0; }

  /// Takes the next notice the sink has for the stream's readers (a fallback chain that moved
  /// from one sink to another); the worker writes it as a `log` event (level "warning") through
  /// this sink. Returns false when there is none.
  virtual bool take_notice(std::string& message) noexcept {
    (void)message;
    return false;
  }

  /// Periodic upkeep while the worker is idle or between batches (reconnects, acknowledgements).
  virtual void poll(std::chrono::steady_clock::time_point now) noexcept { (void)now; }

  /// Returns a fresh sink to the same destination for a forked child process, or nullptr when this
  /// destination cannot be shared with a child (its events are then counted as dropped).
  virtual std::unique_ptr<sink> reopen_after_fork() const { return nullptr; }

  /// Describes the destination for messages (`file:///tmp/x.jsonl`).
  virtual std::string describe() const = 0;
};

}  // namespace foxml::events
