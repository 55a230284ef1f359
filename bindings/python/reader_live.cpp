// The live reader: one source of the C++ reader library (file tail, Unix socket server, ZeroMQ
// subscriber) feeding an event_stream (decode, dedup, gaps), a ring_buffer (late joiners) and a
// run_tracker (per-run state). Driven by the calling thread (iteration, poll()) or by a C++ pump
// thread (start()) that never takes the GIL, so a dashboard's Python threads only read state.
//
// Every wait releases the GIL and is cut into short slices with PyErr_CheckSignals between them,
// so Ctrl-C interrupts a reader that waits for events that never come.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "event_dict.hpp"
#include "foxml/events/reader/event_stream.hpp"
#include "foxml/events/reader/file_source.hpp"
#include "foxml/events/reader/ring_buffer.hpp"
#include "foxml/events/reader/run_tracker.hpp"
#include "foxml/events/reader/socket_source.hpp"
#include "foxml/events/sink_uri.hpp"
#ifdef FOXML_EVENTS_PY_READER_ZMQ
#include "foxml/events/reader/zmq_source.hpp"
#endif

namespace py = pybind11;

namespace foxml::events::python {
namespace {

namespace rd = foxml::events::reader;
using namespace std::chrono_literals;

// The longest time spent without the GIL before checking for Ctrl-C.
constexpr std::chrono::milliseconds wait_slice{100};
// The most a file source reads per poll: what pull-mode iteration holds at most beyond one line.
constexpr std::size_t poll_bytes = 256 * 1024;

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double seconds_of(std::int64_t unix_us) { return static_cast<double>(unix_us) / 1e6; }

void check_signals() {
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

std::chrono::milliseconds millis(double seconds) {
  if (!(seconds >= 0)) return 0ms;
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0 + 0.5));
}

std::set<event_type> parse_types(const std::optional<std::vector<std::string>>& names) {
  std::set<event_type> out;
  if (!names) return out;
  for (const auto& name : *names) {
    const auto type = parse_event_type(name);
    if (!type) throw py::value_error("foxml_events: unknown event type '" + name + "'");
    out.insert(*type);
  }
  return out;
}

template <class T>
py::object opt(const std::optional<T>& value) {
  return value ? py::cast(*value) : py::none();
}

py::dict run_dict(const rd::run_state& run, std::int64_t now) {
  py::dict d;
  d["run_id"] = run.run_id;
  d["name"] = opt(run.name);
  d["status"] = rd::to_string(run.status);
  d["running"] = run.running();
  d["final_status"] = opt(run.final_status);
  d["duration_s"] = opt(run.duration_s);
  d["stage"] = run.stage.empty() ? py::none() : py::cast(run.stage);
  py::list stages;
  for (const auto& span : run.stages) {
    py::dict s;
    s["name"] = span.name;
    s["start"] = seconds_of(span.start_us);
    s["end"] = span.end_us ? py::cast(seconds_of(*span.end_us)) : py::none();
    s["duration_s"] = span.duration_s(now);
    stages.append(s);
  }
  d["stages"] = stages;
  d["progress_pct"] = run.progress_pct;
  d["current_target"] = opt(run.current_target);
  d["targets_complete"] = run.targets_complete;
  d["targets_total"] = run.targets_total;
  d["step"] = opt(run.step);
  d["total_steps"] = opt(run.total_steps);
  d["epoch"] = opt(run.epoch);
  d["total_epochs"] = opt(run.total_epochs);
  d["eta_s"] = opt(run.eta_s);
  py::list targets;
  for (const auto& t : run.completed_targets) {
    py::dict td;
    td["target"] = t.name;
    td["status"] = t.status;
    td["models_trained"] = t.models_trained;
    td["best_auc"] = opt(t.best_auc);
    py::dict metrics;
    for (const auto& [name, value] : t.metrics) metrics[py::str(name)] = value;
    td["metrics"] = metrics;
    targets.append(td);
  }
  d["targets"] = targets;
  py::dict latest, history;
  for (const auto& [name, series] : run.metrics) {
    latest[py::str(name)] = series.latest;
    py::list points;
    for (const auto& [step, value] : series.history) points.append(py::make_tuple(step, value));
    history[py::str(name)] = points;
  }
  d["metrics"] = latest;
  d["metric_history"] = history;
  py::list errors;
  for (const auto& e : run.errors) {
    py::dict ed;
    ed["time"] = seconds_of(e.unix_us);
    ed["error_message"] = e.message;
    ed["error_type"] = e.type;
    ed["recoverable"] = e.recoverable;
    errors.append(ed);
  }
  d["errors"] = errors;
  d["first_seen"] = seconds_of(run.first_seen_us);
  d["last_seen"] = seconds_of(run.last_seen_us);
  d["events"] = run.events;
  return d;
}

using shared_event = std::shared_ptr<const rd::stream_event>;

py::list event_list(const std::vector<shared_event>& events) {
  py::list out;
  for (const auto& e : events) out.append(event_to_dict(e->value));
  return out;
}

class live_reader {
 public:
  live_reader(const std::string& uri, bool follow, bool from_end, const std::optional<std::vector<std::string>>& types,
              const std::optional<std::vector<std::string>>& runs, std::size_t buffer_size, bool deduplicate,
              std::uint64_t reorder_window, std::size_t max_line_bytes, std::size_t max_depth,
              std::size_t metric_history, std::size_t recent_lines, double stale_after, double eta_window,
              const std::string& errors)
      : stream_(stream_options(deduplicate, reorder_window, max_line_bytes, max_depth)),
        tracker_(tracker_options(metric_history, recent_lines, stale_after, eta_window)) {
    if (buffer_size == 0) throw py::value_error("foxml_events: buffer_size must be at least 1");
    if (errors == "raise") {
      errors_ = malformed_policy::raise;
    } else if (errors == "skip") {
      errors_ = malformed_policy::skip;
    } else if (errors != "count") {
      throw py::value_error("foxml_events: errors must be 'raise' or 'skip'");
    }
    filter_.types = parse_types(types);
    if (runs) filter_.runs.insert(runs->begin(), runs->end());
    ring_ = std::make_shared<rd::ring_buffer>(buffer_size);
    open_source(uri, follow, from_end, max_line_bytes);
  }

  ~live_reader() { shut_down(); }
  live_reader(const live_reader&) = delete;
  live_reader& operator=(const live_reader&) = delete;

  // ---- driving

  /// Polls the source once (pull mode), up to `timeout` seconds; returns the new events.
  py::list poll(double timeout) {
    if (background_) throw std::runtime_error("foxml_events: poll() is for a reader without start()");
    const auto deadline = std::chrono::steady_clock::now() + millis(timeout);
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      drive(std::clamp(left, 0ms, wait_slice));
      py::list out = take_pending();
      if (!out.empty() || finished_ || stop_ || std::chrono::steady_clock::now() >= deadline) return out;
      check_signals();
    }
  }

  /// Returns the next event, waiting up to `timeout` seconds (forever when None); None when the
  /// wait ran out; raises StopIteration at the end of a finite source or after stop().
  py::object next(std::optional<double> timeout) {
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = timeout ? start + millis(*timeout) : std::chrono::steady_clock::time_point::max();
    for (;;) {
      if (stop_) throw py::stop_iteration();
      if (background_) {
        const rd::ring_read r = ring_->read_since(cursor_, 1);
        missed_ += r.missed;
        if (!r.events.empty()) {
          cursor_ = r.next;
          return event_to_dict(r.events.front()->value);
        }
        if (finished_) {
          std::lock_guard lock(state_mutex_);
          if (!pump_error_.empty()) throw std::runtime_error("foxml_events: the reader's source failed: " + pump_error_);
          throw py::stop_iteration();
        }
      } else {
        {
          std::lock_guard lock(state_mutex_);
          if (!pending_.empty()) {
            shared_event e = std::move(pending_.front());
            pending_.pop_front();
            pending_positions_.pop_front();
            if (e == nullptr) throw_malformed();
            return event_to_dict(e->value);
          }
        }
        if (finished_) throw py::stop_iteration();
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return py::none();
      const auto slice = std::min<std::chrono::milliseconds>(
          wait_slice, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) + 1ms);
      if (background_) {
        py::gil_scoped_release release;
        ring_->wait_since(cursor_, slice, 1);  // only waits: the next turn reads and counts
      } else {
        drive(slice);
      }
      check_signals();
    }
  }

  /// Starts the pump thread: from now on the source is read in the background and iteration reads
  /// the ring buffer from the first event not yet iterated.
  void start() {
    if (background_) return;
    if (closed_) throw std::runtime_error("foxml_events: the reader is closed");
    {
      std::lock_guard lock(state_mutex_);
      cursor_ = pending_.empty() ? ring_->end() : pending_positions_.front();
      pending_.clear();
      pending_positions_.clear();
    }
    background_ = true;
    pump_ = std::thread([this] { pump(); });
  }

  void stop() noexcept {
    stop_ = true;
    if (source_) source_->wake();
  }

  /// Stops the pump, ends waits on the buffer and closes the source (a socket server removes its
  /// socket file). The buffer's history and the tracker's state stay readable.
  void close() {
    py::gil_scoped_release release;
    shut_down();
  }

  bool finished() const noexcept { return finished_; }
  bool background() const noexcept { return background_; }
  const std::string& describe() const noexcept { return description_; }

  // ---- the event stream's view

  py::dict stats() {
    std::lock_guard lock(state_mutex_);
    const rd::event_stream_stats& s = stream_.stats();
    py::dict d;
    d["lines"] = s.lines;
    d["bytes"] = s.bytes;
    d["events"] = s.events;
    d["malformed"] = s.malformed;
    d["blank"] = s.blank;
    d["duplicates"] = s.duplicates;
    d["gaps"] = s.gaps;
    d["missing"] = s.missing;
    d["reported_drops"] = s.reported_drops;
    d["late"] = s.late;
    d["emitters"] = s.emitters;
    d["missed"] = missed_;  // events iteration lost because the ring overwrote them (start() mode)
    py::dict src;
    if (file_ != nullptr) {
      const auto fs = file_->stats();
      src["bytes"] = fs.bytes;
      src["rotations"] = fs.rotations;
      src["truncations"] = fs.truncations;
    } else if (socket_ != nullptr) {
      const auto ss = socket_->stats();
      src["accepted"] = ss.accepted;
      src["open"] = ss.open;
      src["rejected"] = ss.rejected;
      src["bytes"] = ss.bytes;
      src["acks"] = ss.acks;
    }
#ifdef FOXML_EVENTS_PY_READER_ZMQ
    if (zmq_ != nullptr) {
      const auto zs = zmq_->stats();
      src["messages"] = zs.messages;
      src["bad_frames"] = zs.bad_frames;
    }
#endif
    d["source"] = src;
    return d;
  }

  py::list malformed() {
    std::lock_guard lock(state_mutex_);
    py::list out;
    for (const auto& m : stream_.malformed()) {
      py::dict d;
      d["origin"] = escape_invalid_utf8(m.origin);
      d["line"] = m.line;
      d["offset"] = m.offset;
      d["error"] = escape_invalid_utf8(m.error);  // quotes the line, which may not be UTF-8
      out.append(d);
    }
    return out;
  }

  py::list gaps() {
    std::lock_guard lock(state_mutex_);
    py::list out;
    for (const auto& g : stream_.gaps()) {
      py::dict d;
      d["run_id"] = g.key.run_id;
      d["host"] = g.key.host;
      d["pid"] = g.key.pid;
      d["first_seq"] = g.first_seq;
      d["last_seq"] = g.last_seq;
      d["size"] = g.size();
      d["reported_drop"] = g.reported_drop;
      out.append(d);
    }
    return out;
  }

  void flush_gaps() {
    std::lock_guard lock(state_mutex_);
    stream_.flush_gaps();
  }

  // ---- the ring buffer

  py::tuple buffer_since(std::uint64_t cursor, std::optional<std::size_t> max) const {
    return read_tuple(ring_->read_since(cursor, max.value_or(SIZE_MAX)));
  }

  py::tuple buffer_wait(std::uint64_t cursor, double timeout, std::optional<std::size_t> max) const {
    const auto deadline = std::chrono::steady_clock::now() + millis(timeout);
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      rd::ring_read r;
      {
        py::gil_scoped_release release;
        r = ring_->wait_since(cursor, std::clamp(left, 0ms, wait_slice), max.value_or(SIZE_MAX));
      }
      if (!r.events.empty() || r.missed > 0 || ring_closed_ || std::chrono::steady_clock::now() >= deadline) {
        return read_tuple(r);
      }
      check_signals();
    }
  }

  std::uint64_t buffer_begin() const { return ring_->begin(); }
  std::uint64_t buffer_end() const { return ring_->end(); }
  std::uint64_t buffer_find(const std::string& run_id, const std::string& host, std::int64_t pid,
                            std::uint64_t seq) const {
    return ring_->find(rd::emitter_key{run_id, host, pid}, seq);
  }
  bool buffer_closed() const noexcept { return ring_closed_; }

  // ---- the run tracker

  py::list runs() {
    std::lock_guard lock(state_mutex_);
    const std::int64_t now = refresh_stale();
    py::list out;
    for (const auto& run : tracker_.runs()) out.append(run_dict(run, now));
    return out;
  }

  py::object run(const std::string& run_id) {
    std::lock_guard lock(state_mutex_);
    const std::int64_t now = refresh_stale();
    const rd::run_state* run = tracker_.find(run_id);
    return run == nullptr ? py::none() : py::object(run_dict(*run, now));
  }

  py::object latest() {
    std::lock_guard lock(state_mutex_);
    const std::int64_t now = refresh_stale();
    const rd::run_state* run = tracker_.latest();
    return run == nullptr ? py::none() : py::object(run_dict(*run, now));
  }

  py::dict status() {
    std::lock_guard lock(state_mutex_);
    refresh_stale();
    const rd::bridge_status s = tracker_.status();
    py::dict d;
    d["running"] = s.running;
    d["run_id"] = opt(s.run_id);
    d["stage"] = opt(s.stage);
    d["progress_pct"] = s.progress_pct;
    d["current_target"] = opt(s.current_target);
    py::list events;
    // The seed's bridge returns the recent events parsed; these lines were all decoded once already.
    py::object loads = py::module_::import("json").attr("loads");
    for (const auto& line : s.events) events.append(loads(line));
    d["events"] = events;
    return d;
  }

  void check_stale(std::optional<double> now) {
    std::lock_guard lock(state_mutex_);
    tracker_.check_stale(now ? static_cast<std::int64_t>(*now * 1e6) : now_us());
  }

 private:
  static rd::event_stream_options stream_options(bool deduplicate, std::uint64_t reorder_window,
                                                 std::size_t max_line_bytes, std::size_t max_depth) {
    rd::event_stream_options o;
    o.deduplicate = deduplicate;
    o.reorder_window = reorder_window;
    o.limits.max_line_bytes = max_line_bytes;
    o.limits.max_depth = max_depth;
    return o;
  }

  static rd::run_tracker_options tracker_options(std::size_t metric_history, std::size_t recent_lines,
                                                 double stale_after, double eta_window) {
    if (!(stale_after > 0) || !(eta_window > 0)) {
      throw py::value_error("foxml_events: stale_after and eta_window must be > 0 seconds");
    }
    rd::run_tracker_options o;
    o.metric_history = metric_history;
    o.recent_lines = recent_lines;
    o.stale_after = std::chrono::seconds(static_cast<std::int64_t>(stale_after + 0.5));
    o.eta_window = std::chrono::seconds(static_cast<std::int64_t>(eta_window + 0.5));
    return o;
  }

  void open_source(const std::string& uri, bool follow, bool from_end, std::size_t max_line_bytes) {
    const auto scheme_end = uri.find("://");
    const std::string scheme = scheme_end == std::string::npos ? std::string() : uri.substr(0, scheme_end);
    std::string path;
    if (scheme.empty() || scheme == "file" || scheme == "unix") {
      if (scheme.empty()) {
        path = uri;
      } else {
        try {
          path = parse_sink_uri(uri).path;  // same rules as sink URIs: absolute, %XX decoded
        } catch (const std::invalid_argument& e) {
          throw py::value_error(std::string("foxml_events: bad source URI '") + uri + "': " + e.what());
        }
      }
      if (scheme == "unix") {
        rd::socket_source_options o;
        o.max_line_bytes = max_line_bytes;
        auto s = std::make_unique<rd::socket_source>(path, o);
        socket_ = s.get();
        source_ = std::move(s);
        live_ = true;
      } else {
        rd::file_source_options o;
        o.follow = follow;
        o.from_end = from_end;
        o.max_line_bytes = max_line_bytes;
        // Pull mode holds a poll's events until they are iterated: a poll reads a bounded slice
        // of the file, not all of it.
        o.max_poll_bytes = poll_bytes;
        auto f = std::make_unique<rd::file_source>(path, o);
        file_ = f.get();
        source_ = std::move(f);
        live_ = follow;
      }
    } else if (scheme == "zmq+tcp" || scheme == "zmq+ipc" || scheme == "tcp" || scheme == "ipc") {
#ifdef FOXML_EVENTS_PY_READER_ZMQ
      std::string endpoint = uri;
      if (scheme.rfind("zmq+", 0) == 0) endpoint = uri.substr(4);  // zmq+tcp://h:p -> tcp://h:p
      rd::zmq_source_options o;
      o.types = filter_.types;
      o.runs = filter_.runs;
      o.max_line_bytes = max_line_bytes;
      try {
        auto z = std::make_unique<rd::zmq_source>(endpoint, o);
        zmq_ = z.get();
        source_ = std::move(z);
      } catch (const std::system_error&) {
        throw;
      } catch (const std::exception& e) {  // zmq::error_t: a bad endpoint
        throw py::value_error(std::string("foxml_events: bad source URI '") + uri + "': " + e.what());
      }
      live_ = true;
#else
      throw py::value_error("foxml_events: bad source URI '" + uri +
                            "': this build has no ZeroMQ reader (foxml::events_reader_zmq was not built)");
#endif
    } else {
      throw py::value_error("foxml_events: bad source URI '" + uri +
                            "': expected a path, file:///path, unix:///path.sock, zmq+tcp://host:port or "
                            "zmq+ipc:///path");
    }
    description_ = source_->describe();
  }

  // Polls the source once for up to `timeout`, without the GIL. Called with the GIL held.
  void drive(std::chrono::milliseconds timeout) {
    py::gil_scoped_release release;
    std::lock_guard drive_lock(drive_mutex_);
    drive_locked(timeout);
  }

  void drive_locked(std::chrono::milliseconds timeout) {
    if (finished_ || !source_) return;
    const bool more = source_->poll(timeout, [this](const rd::raw_line& line) { accept(line); });
    std::lock_guard lock(state_mutex_);
    if (!more) {
      stream_.flush_gaps();  // a finite stream: whatever is still outstanding is missing
      finished_ = true;
      ring_closed_ = true;
      ring_->close();
    } else if (live_) {
      tracker_.check_stale(now_us());
    }
  }

  void accept(const rd::raw_line& line) {
    // read_events() / follow_events() pass over blank lines, as a JSON-lines reader does.
    if (errors_ != malformed_policy::count && !line.oversized &&
        line.text.find_first_not_of(" \t\r") == std::string_view::npos) {
      return;
    }
    std::lock_guard lock(state_mutex_);
    const std::uint64_t malformed_before = stream_.stats().malformed;
    std::optional<rd::stream_event> e = stream_.push(line);
    if (!e && errors_ == malformed_policy::raise && !background_ && stream_.stats().malformed != malformed_before) {
      // In its place among the events, so iteration raises after the events before it.
      pending_.push_back(nullptr);
      pending_positions_.push_back(ring_->end());
      malformed_errors_.push_back(describe_malformed(stream_.malformed().back()));
      return;
    }
    if (!e || !filter_.matches(e->value)) return;
    tracker_.apply(e->value, e->line);
    const std::uint64_t position = ring_->push(std::move(*e));
    if (background_) return;
    // Iteration must not lose events to the ring's overwriting: it keeps its own queue.
    rd::ring_read r = ring_->read_since(position, 1);
    if (!r.events.empty()) {
      pending_.push_back(std::move(r.events.front()));
      pending_positions_.push_back(position);
    }
  }

  py::list take_pending() {
    std::lock_guard lock(state_mutex_);
    py::list out;
    while (!pending_.empty()) {
      if (pending_.front() == nullptr) {  // a malformed line with errors='raise': after its predecessors
        if (!out.empty()) return out;
        pending_.pop_front();
        pending_positions_.pop_front();
        throw_malformed();
      }
      out.append(event_to_dict(pending_.front()->value));
      pending_.pop_front();
      pending_positions_.pop_front();
    }
    return out;
  }

  static std::string describe_malformed(const rd::malformed_line& m) {
    std::string where = m.origin.rfind("file://", 0) == 0 ? m.origin.substr(7) : m.origin;
    return "foxml_events: " + escape_invalid_utf8(where) + ": line " + std::to_string(m.line) + ": " +
           escape_invalid_utf8(m.error);
  }

  // Called with state_mutex_ held, the marker just taken off pending_.
  [[noreturn]] void throw_malformed() {
    std::string message = std::move(malformed_errors_.front());
    malformed_errors_.pop_front();
    throw py::value_error(message);
  }

  void pump() noexcept {
    try {
      while (!stop_ && !finished_) {
        std::lock_guard drive_lock(drive_mutex_);
        drive_locked(250ms);
      }
    } catch (const std::exception& e) {
      std::lock_guard lock(state_mutex_);
      pump_error_ = e.what();
      finished_ = true;
      ring_closed_ = true;
      ring_->close();
    }
  }

  std::int64_t refresh_stale() {
    const std::int64_t now = now_us();
    if (live_) tracker_.check_stale(now);
    return now;
  }

  static py::tuple read_tuple(const rd::ring_read& r) { return py::make_tuple(event_list(r.events), r.next, r.missed); }

  void shut_down() noexcept {
    stop();
    if (pump_.joinable()) pump_.join();
    std::lock_guard drive_lock(drive_mutex_);  // a pull-mode poll in another thread has returned
    ring_closed_ = true;
    ring_->close();
    source_.reset();
    file_ = nullptr;
    socket_ = nullptr;
#ifdef FOXML_EVENTS_PY_READER_ZMQ
    zmq_ = nullptr;
#endif
    finished_ = true;
    closed_ = true;
  }

  std::string description_;
  std::unique_ptr<rd::source> source_;
  rd::file_source* file_ = nullptr;
  rd::socket_source* socket_ = nullptr;
#ifdef FOXML_EVENTS_PY_READER_ZMQ
  rd::zmq_source* zmq_ = nullptr;
#endif
  bool live_ = false;  // a followed file, a socket or a subscriber: runs may go stale
  // What a malformed line does to iteration: counted (EventReader), raised as ValueError at its
  // place (read_events(errors='raise')), or passed over with blank lines (errors='skip').
  enum class malformed_policy { count, raise, skip };
  malformed_policy errors_ = malformed_policy::count;
  rd::event_filter filter_;

  std::mutex drive_mutex_;  // one thread polls the source at a time
  std::mutex state_mutex_;  // guards stream_, tracker_, pending_*, pump_error_
  rd::event_stream stream_;
  rd::run_tracker tracker_;
  std::shared_ptr<rd::ring_buffer> ring_;
  std::deque<shared_event> pending_;  // pull mode: accepted events not yet iterated
  std::deque<std::uint64_t> pending_positions_;
  std::deque<std::string> malformed_errors_;  // errors='raise': the message of each nullptr in pending_
  std::string pump_error_;

  std::thread pump_;
  std::atomic<bool> background_{false};
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
  std::atomic<bool> ring_closed_{false};
  bool closed_ = false;
  std::uint64_t cursor_ = 0;  // start() mode: the next ring position iteration reads
  std::uint64_t missed_ = 0;
};

}  // namespace

void bind_live_reader(py::module_& m) {
  m.attr("_zmq_reader_available") =
#ifdef FOXML_EVENTS_PY_READER_ZMQ
      true;
#else
      false;
#endif
  py::class_<live_reader>(m, "LiveReader",
                          "A source (file, Unix socket server, ZeroMQ subscriber) read through the event "
                          "stream into a ring buffer and a run tracker. Use foxml_events.EventReader.")
      .def(py::init<const std::string&, bool, bool, const std::optional<std::vector<std::string>>&,
                    const std::optional<std::vector<std::string>>&, std::size_t, bool, std::uint64_t, std::size_t,
                    std::size_t, std::size_t, std::size_t, double, double, const std::string&>(),
           py::arg("source"), py::arg("follow") = true, py::arg("from_end") = false, py::arg("types") = py::none(),
           py::arg("runs") = py::none(), py::arg("buffer_size") = 10000, py::arg("deduplicate") = true,
           py::arg("reorder_window") = 4096, py::arg("max_line_bytes") = (1u << 20) + 4096, py::arg("max_depth") = max_json_depth,
           py::arg("metric_history") = 1000, py::arg("recent_lines") = 10, py::arg("stale_after") = 60.0,
           py::arg("eta_window") = 120.0, py::arg("errors") = "count")
      .def("poll", &live_reader::poll, py::arg("timeout") = 0.0)
      .def("next", &live_reader::next, py::arg("timeout") = py::none())
      .def("start", &live_reader::start)
      .def("stop", &live_reader::stop)
      .def("close", &live_reader::close)
      .def_property_readonly("finished", &live_reader::finished)
      .def_property_readonly("background", &live_reader::background)
      .def_property_readonly("source", &live_reader::describe)
      .def("stats", &live_reader::stats)
      .def("malformed", &live_reader::malformed)
      .def("gaps", &live_reader::gaps)
      .def("flush_gaps", &live_reader::flush_gaps)
      .def("buffer_since", &live_reader::buffer_since, py::arg("cursor") = 0, py::arg("max") = py::none())
      .def("buffer_wait", &live_reader::buffer_wait, py::arg("cursor"), py::arg("timeout"),
           py::arg("max") = py::none())
      .def_property_readonly("buffer_begin", &live_reader::buffer_begin)
      .def_property_readonly("buffer_end", &live_reader::buffer_end)
      .def_property_readonly("buffer_closed", &live_reader::buffer_closed)
      .def("buffer_find", &live_reader::buffer_find, py::arg("run_id"), py::arg("host"), py::arg("pid"),
           py::arg("seq"))
      .def("runs", &live_reader::runs)
      .def("run", &live_reader::run, py::arg("run_id"))
      .def("latest", &live_reader::latest)
      .def("status", &live_reader::status)
      .def("check_stale", &live_reader::check_stale, py::arg("now") = py::none());
}

}  // namespace foxml::events::python
