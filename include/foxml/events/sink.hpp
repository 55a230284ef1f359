#pragma once
/// The sink interface: where the worker delivers encoded JSON lines, and its contract (below).

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace foxml::events {

struct control_attachment;  // control.hpp

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
  /// Appends lines [first, last) of `from`; returns how many it appended before memory ran out.
  /// Never throws, for the sink methods, which must not.
  std::size_t append_lines(const line_batch& from, std::size_t first, std::size_t last) noexcept {
    std::size_t i = first;
    try {
      for (; i < last; ++i) append(from.line(i), from.seq(i));
    } catch (...) {
    }
    return i - first;
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

/// A destination for encoded events: the emitter's worker hands it batches of JSON lines.
///
/// The contract every hook shares:
/// - Thread: the emitter calls a sink from its worker thread only, one call at a time, so a sink
///   needs no locking of its own (unless it shares state with other threads itself, as
///   memory_sink does with its readers).
/// - No exceptions: every hook but the constructor, describe() and reopen_after_fork() is
///   noexcept. An exception there would end the training process: a sink that cannot do
///   something says so through return values, and an allocation that fails is caught and
///   handled like a refusal or a loss (see write() and reclaim()).
/// - No waiting: the worker's flush() and close() have deadlines (emitter_options); a hook that
///   blocks holds them up, and one that never returns leaves the worker behind (emit calls stay
///   safe, their events are counted as dropped). Bound every wait; close() may take a short,
///   bounded linger.
/// - Every line accounted for: a line is either refused by write(), or taken and then
///   delivered, or handed back through reclaim(). The emitter counts the rest as written.
///
/// Only write() and describe() must be written; the other hooks have defaults that suit a sink
/// that takes lines synchronously (a file, a ring, a syslog). examples/cpp/custom_sink.cpp is a
/// complete one; fallback_sink and tee_sink (composite_sink) show the composing kind.
class sink {
 public:
  virtual ~sink() = default;

  /// Takes the lines of `batch` in order and returns how many leading lines it took: the rest
  /// are refused. The worker keeps refused lines and offers them again on its next write, in
  /// order, before anything newer; after emitter_options::sink_retry_timeout of refusals they are
  /// dropped and counted (dropped_sink). A fallback chain instead routes refused lines to its
  /// next sink at once. Return only what was taken: taking a line and losing it later is what
  /// reclaim() reports. Must not block (see above); a slow destination buffers within a bound or
  /// refuses.
  virtual std::size_t write(const line_batch& batch) noexcept = 0;

  /// Pushes out what the sink buffers itself (lines taken but not yet at the destination). The
  /// worker calls it when the application calls flush() or close(), after every queued event was
  /// written; a sink without a buffer of its own keeps the default.
  virtual void flush() noexcept {}

  /// Releases the sink's resources: later writes refuse everything. Called once, by the worker,
  /// at the emitter's close, after flush(); a reclaim() follows to collect what close() lost.
  virtual void close() noexcept {}

  /// Whether a write now is expected to be taken. A fallback chain skips an unhealthy sink for
  /// the next one (and keeps asking until it says yes); a tee is healthy when any branch is.
  virtual bool healthy() noexcept { return true; }

  /// For sinks that take lines and may lose them later (a connection that breaks before its
  /// listener acknowledged them): moves those lines into `out`, in order, and returns how many
  /// were lost. The worker calls it after every write and after close; a fallback chain routes
  /// what it gets to its later sinks, and the emitter counts the rest as dropped (dropped_sink)
  /// and names their seqs in its next `dropped` event. A count larger than the lines appended is
  /// lines lost without their text (memory ran out to keep it): counted all the same.
  virtual std::size_t reclaim(line_batch& out) noexcept {
    (void)out;
    return 0;
  }

  /// For sinks that hold lines they took and are still trying to deliver (a tee's lagging
  /// branch): how many. The emitter's flush() and close() count as done only when this is 0, so
  /// the sink must deliver or give up on (and reclaim()) them within a bound of its own.
  virtual std::size_t pending() const noexcept { return 0; }

  /// For sinks with something to tell the stream's readers (a fallback chain that moved to
  /// another sink): puts the next message into `message` and returns true, or returns false when
  /// there is none. The worker writes each as a `log` event (level "warning") through this sink,
  /// so it lands where the stream now goes; the sink bounds how many it keeps.
  virtual bool take_notice(std::string& message) noexcept {
    (void)message;
    return false;
  }

  /// Upkeep: called by the worker after every batch and, while it is idle, at least every
  /// emitter_options::max_idle_wait (`now` is the current time). Reconnects, reads
  /// acknowledgements, retries held lines. Keep it cheap: it runs thousands of times a second.
  virtual void poll(std::chrono::steady_clock::time_point now) noexcept { (void)now; }

  /// Whether anyone reads what this sink writes, as far as it can tell; `last_seen` is when a
  /// consumer was last noticed (the worker keeps it between calls; the sink moves it forward).
  /// While no consumer has been seen for emitter_options::unwatched_after, the idle worker
  /// sleeps up to unwatched_idle_wait instead of max_idle_wait. The default says "always": a sink
  /// that cannot tell keeps the short latency. A composite asks its children.
  virtual void note_consumer(std::chrono::steady_clock::time_point now,
                             std::chrono::steady_clock::time_point& last_seen) noexcept {
    last_seen = now;
  }

  /// Called in a fork()ed child the first time it emits: returns a fresh sink to the same
  /// destination for the child, or nullptr when the destination cannot be shared with a child
  /// (the child's events are then counted as dropped); throwing counts as nullptr. The default
  /// is nullptr: a sink is not shared with a child unless it says how.
  virtual std::unique_ptr<sink> reopen_after_fork() const { return nullptr; }

  /// For the control back-channel (control.hpp): the emitter calls it once, before its worker
  /// starts. A sink that reads commands from its destination keeps `attachment.inbox` and offers
  /// them there (from the worker's poll()); a sink with a local path names the control directory
  /// next to it; a composite passes it to each child in order. The default does nothing.
  virtual void attach_control(control_attachment& attachment) noexcept { (void)attachment; }

  /// Names the destination for messages and notices (`file:///tmp/x.jsonl`, `unix:///s.sock`).
  virtual std::string describe() const = 0;
};

}  // namespace foxml::events
