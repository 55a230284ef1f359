#pragma once
/// The reader front end: one source read through the event stream (decode, dedup, gaps), a filter,
/// a ring buffer (late joiners) and a run tracker (per-run state). events-tail, the Python binding
/// and any dashboard or bridge are thin layers over it.
///
/// Two ways to drive it:
/// - pull: the caller's thread reads the source with poll() or next(); every accepted event
///   reaches it, whatever the ring's size;
/// - push: start() reads the source on a pump thread; consumers read the ring (buffer(), each with
///   its own cursor), the state (runs(), stats()...), or get each event through subscribe().
///
/// Thread-safety: every member may be called from any thread. One thread reads the source at a
/// time (a drive lock; pull calls in two threads take turns, and a pull call after start() throws).
/// The stream and tracker sit behind a state lock that is never held while the source blocks or
/// while a handler or subscriber runs, so those may call back into the reader (not poll(), next()
/// or unsubscribe() from a subscriber). stop() is async-signal-safe (it writes an eventfd).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "foxml/events/reader/commands.hpp"
#include "foxml/events/reader/defaults.hpp"
#include "foxml/events/reader/event_stream.hpp"
#include "foxml/events/reader/make_source.hpp"
#include "foxml/events/reader/ring_buffer.hpp"
#include "foxml/events/reader/run_tracker.hpp"

namespace foxml::events::reader {

using shared_event = std::shared_ptr<const stream_event>;

/// Settings of a live_reader. The source's line cap is also the stream's; the filter's types and
/// runs become a ZeroMQ source's subscriptions.
struct live_reader_options {
  source_options source = [] {
    source_options o;
    o.max_poll_bytes = defaults::poll_bytes;  // pull mode holds a poll's events until they are taken
    return o;
  }();
  event_stream_options stream;
  run_tracker_options tracker;
  event_filter filter;
  std::size_t ring_size = defaults::ring_size;
  /// Pull mode also hands out each malformed line as an item in its place among the events (for a
  /// consumer that raises there); otherwise malformed lines are only counted and kept in the report.
  bool malformed_items = false;
};

/// What pull mode hands out: an accepted event, or (with `malformed_items`) a malformed line.
struct live_item {
  shared_event event;  ///< empty for a malformed line
  std::uint64_t position = 0;  ///< the event's ring position (for a malformed line: the next event's)
  std::optional<malformed_line> malformed;
};

class live_reader {
 public:
  using item_handler = std::function<void(const live_item&)>;
  using subscriber = std::function<void(const shared_event&, std::uint64_t position)>;

  /// Opens the source `uri` names (make_source()); throws what make_source() throws.
  explicit live_reader(std::string_view uri, live_reader_options options = {});
  explicit live_reader(const source_uri& uri, live_reader_options options = {});
  /// Reads an already open source. `live`: it never ends by itself (runs can go stale).
  live_reader(std::unique_ptr<source> input, bool live, live_reader_options options = {});
  /// Stops and joins the pump.
  ~live_reader();
  live_reader(const live_reader&) = delete;
  live_reader& operator=(const live_reader&) = delete;

  // ---- pull mode

  /// Reads what the source has, waiting up to `timeout` for input, and hands each accepted event
  /// that passes the filter (and each malformed item) to `on_item` as it comes, without queueing.
  /// Returns false once the source is finished (or the reader stopped). Throws after start().
  bool poll(std::chrono::milliseconds timeout, const item_handler& on_item);
  /// Returns the items queued by next() and those one read of up to `timeout` adds. A malformed
  /// item comes alone (the items before it come in the call before).
  std::vector<live_item> poll(std::chrono::milliseconds timeout);
  /// Returns the next item, reading the source for up to `timeout` when none is queued; empty when
  /// the time ran out or the reader ended (ended() tells). After start(), reads the ring from the
  /// first event not yet taken (missed() counts what the ring overwrote first).
  std::optional<live_item> next(std::chrono::milliseconds timeout);
  /// Returns the next item next() would return without reading the source or waiting, if any.
  std::optional<live_item> take();

  // ---- push mode

  /// Starts the pump thread; events queued for next() and not taken are read again from the ring.
  void start();
  /// Calls `fn` on the pump thread (or the pulling one) for every accepted event, after the
  /// tracker and ring have it. Returns an id for unsubscribe().
  std::uint64_t subscribe(subscriber fn);
  /// After it returns, the subscriber is never called again.
  void unsubscribe(std::uint64_t id);

  /// Ends reading: the pump, and waits in poll()/next() in other threads, return soon.
  void stop() noexcept;
  /// Stops, joins the pump and closes the source (a socket server removes its file); the ring's
  /// history and the tracker's state stay readable.
  void close() noexcept;

  bool background() const noexcept { return background_; }
  /// True once the source has nothing more (or the reader is closed).
  bool finished() const noexcept { return finished_; }
  /// True once next() will hand out nothing more: stopped, or finished with nothing left for it
  /// (after start(): no event past its cursor; a consumer reading buffer() itself watches
  /// finished() instead).
  bool ended() const;
  /// The pump's failure (the source threw), when it ended that way.
  std::optional<std::string> error() const;
  /// The source's description (`file:///...`, `unix:///...`, `tcp://...`).
  const std::string& describe() const noexcept { return description_; }
  /// Events next() lost to the ring's overwriting after start().
  std::uint64_t missed() const noexcept { return missed_; }
  bool live() const noexcept { return live_; }

  // ---- commands (issue 11)

  /// Sends command `name` to run `run_id` by the path this reader's source gives, waiting up to
  /// `timeout` for the acknowledgement: a socket source relays it on the run's emitter
  /// connections (send_command_relay() on its own socket), a ZeroMQ source publishes it on the
  /// command endpoint (send_command_zmq()), a file source uses the control endpoints in
  /// `<the file's directory>/control`. Without start(), the wait reads the source meanwhile
  /// (a socket source's relay needs a reader): what it reads is queued for next() and
  /// poll(timeout). Throws std::invalid_argument for a bad name or argument; otherwise the
  /// result says what happened.
  command_result send_command(const std::string& run_id, const std::string& name, const std::string& arg_json = "",
                              std::chrono::milliseconds timeout = default_command_timeout);

  // ---- state (snapshots, under the state lock)

  event_stream_stats stats() const;
  /// The stream's counters, then `"source"`: the source's own (as of its latest poll).
  std::string stats_json() const;
  std::vector<malformed_line> malformed() const;
  std::vector<seq_gap> gaps() const;
  void flush_gaps();
  /// Every run (stale ones marked, for a live source), in the order first seen.
  std::vector<run_state> runs() const;
  std::optional<run_state> run(std::string_view run_id) const;
  std::optional<run_state> latest() const;
  training_status_snapshot training_status() const;
  void check_stale(std::int64_t now_us);
  /// Calls `fn(stream, tracker)` under the state lock, for a view drawn from both at once.
  template <class F>
  decltype(auto) inspect(F&& fn) const {
    std::lock_guard lock(state_mutex_);
    return std::forward<F>(fn)(stream_, tracker_);
  }

  /// The ring of recent events (thread-safe by itself).
  const ring_buffer& buffer() const noexcept { return *ring_; }
  /// The source, for its own stats(): call those only from the thread that polls, before close().
  const source& input() const noexcept { return *source_; }

 private:
  bool drive(std::chrono::milliseconds timeout, const item_handler& on_item);
  void accept(const raw_line& line, const item_handler& on_item);
  void finish(std::optional<std::string> failure);
  void refresh_stale() const;
  void pump() noexcept;

  std::string description_;
  std::unique_ptr<source> source_;
  std::atomic<source*> waker_{nullptr};  // what stop() wakes; cleared before close() drops the source
  bool live_ = false;
  live_reader_options options_;

  std::mutex drive_mutex_;          // one thread reads the source at a time
  mutable std::mutex state_mutex_;  // stream_, tracker_, pending_, error_, source_stats_
  event_stream stream_;
  mutable run_tracker tracker_;     // refreshed for staleness by readers
  std::shared_ptr<ring_buffer> ring_;
  std::deque<live_item> pending_;   // pull mode: items not yet taken by next()
  std::optional<std::string> error_;
  std::string source_stats_ = "{}";

  std::mutex subscribers_mutex_;
  std::vector<std::pair<std::uint64_t, subscriber>> subscribers_;
  std::uint64_t next_subscriber_ = 1;

  std::thread pump_;
  std::atomic<bool> background_{false};
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
  std::uint64_t cursor_ = 0;  // push mode: the ring position next() reads (by one consumer)
  std::atomic<std::uint64_t> missed_{0};
};

}  // namespace foxml::events::reader
