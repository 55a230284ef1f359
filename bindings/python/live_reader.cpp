// foxml_events._core.LiveReader: the reader library's live_reader, driven from Python. The C++
// object owns the source, stream, filter, ring buffer and tracker, and the pull and push modes;
// this layer only maps arguments, converts to dicts and keeps Python responsive: every wait
// releases the GIL and is cut into short slices with PyErr_CheckSignals between them, so Ctrl-C
// interrupts a reader that waits for events that never come. The pump thread never takes the GIL.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "event_dict.hpp"
#include "foxml/events/reader/defaults.hpp"
#include "foxml/events/reader/live_reader.hpp"
#include "foxml/events/schema_keys.hpp"
#include "reader_state.hpp"
#ifdef FOXML_EVENTS_PY_READER_ZMQ
#include "foxml/events/reader/zmq_source.hpp"
#endif

namespace py = pybind11;

namespace foxml::events::python {
namespace {

namespace rd = foxml::events::reader;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// The longest time spent without the GIL before checking for Ctrl-C.
constexpr std::chrono::milliseconds wait_slice{100};

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void check_signals() {
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

std::chrono::milliseconds millis(double seconds) {
  if (!(seconds >= 0)) return 0ms;
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0 + 0.5));
}

// The next wait: a slice, never past the deadline.
std::chrono::milliseconds slice_until(steady::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
  return std::clamp(left, 0ms, wait_slice);
}

std::chrono::seconds whole_seconds(double seconds) {
  return std::chrono::seconds(static_cast<std::int64_t>(seconds + 0.5));
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

// A command's outcome as a dict; `received` holds the command_received lines (decoded in Python).
py::dict result_dict(const rd::command_result& r) {
  py::dict d;
  d["ok"] = r.ok;
  d["acknowledged"] = r.acknowledged;
  d["duplicate"] = r.duplicate;
  d["unknown_run"] = r.unknown_run;
  d["id"] = r.id;
  d["via"] = r.via;
  d["error"] = r.error;
  d["delivered"] = r.delivered;
  d["received"] = r.received;
  return d;
}

std::string describe_malformed(const rd::malformed_line& m) {
  std::string where = m.origin.rfind("file://", 0) == 0 ? m.origin.substr(7) : m.origin;
  return "foxml_events: " + escape_invalid_utf8(where) + ": line " + std::to_string(m.line) + ": " +
         escape_invalid_utf8(m.error);
}

py::list event_list(const std::vector<rd::shared_event>& events) {
  py::list out;
  for (const auto& e : events) out.append(event_to_dict(e->value));
  return out;
}

py::tuple read_tuple(const rd::ring_read& r) { return py::make_tuple(event_list(r.events), r.next, r.missed); }

class py_live_reader {
 public:
  py_live_reader(const std::string& uri, bool follow, bool from_end, const std::optional<std::vector<std::string>>& types,
                 const std::optional<std::vector<std::string>>& runs, std::size_t buffer_size, bool deduplicate,
                 std::uint64_t reorder_window, std::size_t max_line_bytes, std::size_t max_depth,
                 std::size_t metric_history, std::size_t recent_lines, double stale_after, double eta_window,
                 const std::string& errors) {
    if (buffer_size == 0) throw py::value_error("foxml_events: buffer_size must be at least 1");
    if (errors != "raise" && errors != "skip" && errors != "count") {
      throw py::value_error("foxml_events: errors must be 'raise' or 'skip'");
    }
    if (!(stale_after > 0) || !(eta_window > 0)) {
      throw py::value_error("foxml_events: stale_after and eta_window must be > 0 seconds");
    }
    rd::live_reader_options o;
    o.filter.types = parse_types(types);
    if (runs) o.filter.runs.insert(runs->begin(), runs->end());
    o.source.follow = follow;
    o.source.from_end = from_end;
    o.source.max_line_bytes = max_line_bytes;
    o.stream.deduplicate = deduplicate;
    o.stream.reorder_window = reorder_window;
    o.stream.limits.max_depth = max_depth;
    o.tracker.metric_history = metric_history;
    o.tracker.recent_lines = recent_lines;
    o.tracker.stale_after = whole_seconds(stale_after);
    o.tracker.eta_window = whole_seconds(eta_window);
    o.ring_size = buffer_size;
    // read_events(errors='raise') raises at a malformed line, after the events before it.
    o.malformed_items = errors == "raise";
    reader_ = std::make_unique<rd::live_reader>(uri, std::move(o));
  }

  // ---- driving

  py::list poll(double timeout) {
    if (reader_->background()) throw std::runtime_error("foxml_events: poll() is for a reader without start()");
    const auto deadline = steady::now() + millis(timeout);
    for (;;) {
      std::vector<rd::live_item> items;
      {
        py::gil_scoped_release release;
        items = reader_->poll(slice_until(deadline));
      }
      if (!items.empty() && items.front().malformed) throw py::value_error(describe_malformed(*items.front().malformed));
      py::list out;
      for (const auto& item : items) out.append(event_to_dict(item.event->value));
      if (!out.empty() || reader_->ended() || steady::now() >= deadline) return out;
      check_signals();
    }
  }

  py::object next(std::optional<double> timeout) {
    const auto deadline = timeout ? steady::now() + millis(*timeout) : steady::time_point::max();
    for (;;) {
      // A queued item is taken with the GIL held: releasing it per event costs more than the take.
      std::optional<rd::live_item> item = reader_->take();
      if (!item) {
        py::gil_scoped_release release;
        item = reader_->next(timeout ? slice_until(deadline) : wait_slice);
      }
      if (item) {
        if (item->malformed) throw py::value_error(describe_malformed(*item->malformed));
        return event_to_dict(item->event->value);
      }
      if (reader_->ended()) {
        if (const auto error = reader_->error()) {
          throw std::runtime_error("foxml_events: the reader's source failed: " + *error);
        }
        throw py::stop_iteration();
      }
      if (steady::now() >= deadline) return py::none();
      check_signals();
    }
  }

  void start() { reader_->start(); }
  void stop() noexcept { reader_->stop(); }
  void close() {
    py::gil_scoped_release release;
    reader_->close();
  }
  bool finished() const noexcept { return reader_->finished(); }
  bool background() const noexcept { return reader_->background(); }
  const std::string& describe() const noexcept { return reader_->describe(); }

  // ---- the event stream's report

  py::dict stats() const { return json_dict(reader_->stats_json()); }
  py::list malformed() const { return malformed_list(reader_->malformed()); }
  py::list gaps() const { return gap_list(reader_->gaps()); }
  void flush_gaps() { reader_->flush_gaps(); }

  // ---- the ring buffer

  py::tuple buffer_since(std::uint64_t cursor, std::optional<std::size_t> max) const {
    return read_tuple(reader_->buffer().read_since(cursor, max.value_or(SIZE_MAX)));
  }

  py::tuple buffer_wait(std::uint64_t cursor, double timeout, std::optional<std::size_t> max) const {
    const auto deadline = steady::now() + millis(timeout);
    for (;;) {
      rd::ring_read r;
      {
        py::gil_scoped_release release;
        r = reader_->buffer().wait_since(cursor, slice_until(deadline), max.value_or(SIZE_MAX));
      }
      if (!r.events.empty() || r.missed > 0 || reader_->finished() || steady::now() >= deadline) return read_tuple(r);
      check_signals();
    }
  }

  std::uint64_t buffer_begin() const { return reader_->buffer().begin(); }
  std::uint64_t buffer_end() const { return reader_->buffer().end(); }
  bool buffer_closed() const noexcept { return reader_->finished(); }
  std::uint64_t buffer_find(const std::string& run_id, const std::string& host, std::int64_t pid,
                            std::uint64_t seq) const {
    return reader_->buffer().find(rd::emitter_key{run_id, host, pid}, seq);
  }

  // ---- the run tracker

  py::list runs() const {
    const std::vector<rd::run_state> runs = reader_->runs();
    const std::int64_t now = now_us();
    py::list out;
    for (const auto& run : runs) out.append(run_dict(run, now));
    return out;
  }

  py::object run(const std::string& run_id) const {
    const auto run = reader_->run(run_id);
    return run ? py::object(run_dict(*run, now_us())) : py::none();
  }

  py::object latest() const {
    const auto run = reader_->latest();
    return run ? py::object(run_dict(*run, now_us())) : py::none();
  }

  py::dict status() const { return status_dict(reader_->training_status()); }

  void check_stale(std::optional<double> now) {
    reader_->check_stale(now ? static_cast<std::int64_t>(*now * 1e6) : now_us());
  }

  // ---- commands: the wait (at most `timeout`) runs without the GIL

  py::dict send_command(const std::string& run_id, const std::string& name, const std::string& arg_json,
                        double timeout) {
    rd::command_result r;
    {
      py::gil_scoped_release release;
      r = reader_->send_command(run_id, name, arg_json, millis(timeout));
    }
    return result_dict(r);
  }

 private:
  std::unique_ptr<rd::live_reader> reader_;
};

}  // namespace

void bind_live_reader(py::module_& m) {
#ifdef FOXML_EVENTS_PY_READER_ZMQ
  rd::enable_zmq_source_uris();
  m.attr("_zmq_reader_available") = true;
#else
  m.attr("_zmq_reader_available") = false;
#endif
  // The reader library's defaults, for the Python signatures (one definition, in C++).
  py::dict defaults;
  defaults["max_line_bytes"] = rd::defaults::max_line_bytes;
  defaults["max_depth"] = rd::defaults::max_depth;
  defaults["reorder_window"] = rd::defaults::reorder_window;
  defaults["ring_size"] = rd::defaults::ring_size;
  defaults["metric_history"] = rd::defaults::metric_history;
  defaults["recent_lines"] = rd::defaults::recent_lines;
  defaults["stale_after"] = static_cast<double>(rd::defaults::stale_after.count());
  defaults["eta_window"] = static_cast<double>(rd::defaults::eta_window.count());
  m.attr("reader_defaults") = defaults;
  py::class_<py_live_reader>(m, "LiveReader",
                             "A source (file, Unix socket server, ZeroMQ subscriber) read through the event "
                             "stream into a ring buffer and a run tracker. Use foxml_events.EventReader.")
      .def(py::init<const std::string&, bool, bool, const std::optional<std::vector<std::string>>&,
                    const std::optional<std::vector<std::string>>&, std::size_t, bool, std::uint64_t, std::size_t,
                    std::size_t, std::size_t, std::size_t, double, double, const std::string&>(),
           py::arg("source"), py::arg("follow") = true, py::arg("from_end") = false, py::arg("types") = py::none(),
           py::arg("runs") = py::none(), py::arg("buffer_size") = rd::defaults::ring_size,
           py::arg("deduplicate") = true, py::arg("reorder_window") = rd::defaults::reorder_window,
           py::arg("max_line_bytes") = rd::defaults::max_line_bytes, py::arg("max_depth") = rd::defaults::max_depth,
           py::arg("metric_history") = rd::defaults::metric_history,
           py::arg("recent_lines") = rd::defaults::recent_lines,
           py::arg("stale_after") = static_cast<double>(rd::defaults::stale_after.count()),
           py::arg("eta_window") = static_cast<double>(rd::defaults::eta_window.count()), py::arg("errors") = "count")
      .def("poll", &py_live_reader::poll, py::arg("timeout") = 0.0)
      .def("next", &py_live_reader::next, py::arg("timeout") = py::none())
      .def("start", &py_live_reader::start)
      .def("stop", &py_live_reader::stop)
      .def("close", &py_live_reader::close)
      .def_property_readonly("finished", &py_live_reader::finished)
      .def_property_readonly("background", &py_live_reader::background)
      .def_property_readonly("source", &py_live_reader::describe)
      .def("stats", &py_live_reader::stats)
      .def("malformed", &py_live_reader::malformed)
      .def("gaps", &py_live_reader::gaps)
      .def("flush_gaps", &py_live_reader::flush_gaps)
      .def("buffer_since", &py_live_reader::buffer_since, py::arg("cursor") = 0, py::arg("max") = py::none())
      .def("buffer_wait", &py_live_reader::buffer_wait, py::arg("cursor"), py::arg("timeout"),
           py::arg("max") = py::none())
      .def_property_readonly("buffer_begin", &py_live_reader::buffer_begin)
      .def_property_readonly("buffer_end", &py_live_reader::buffer_end)
      .def_property_readonly("buffer_closed", &py_live_reader::buffer_closed)
      .def("buffer_find", &py_live_reader::buffer_find, py::arg("run_id"), py::arg("host"), py::arg("pid"),
           py::arg("seq"))
      .def("runs", &py_live_reader::runs)
      .def("run", &py_live_reader::run, py::arg("run_id"))
      .def("latest", &py_live_reader::latest)
      .def("status", &py_live_reader::status)
      .def("check_stale", &py_live_reader::check_stale, py::arg("now") = py::none())
      .def("send_command", &py_live_reader::send_command, py::arg("run_id"), py::arg("command"),
           py::arg("arg_json") = "", py::arg("timeout") = 5.0);

  // The sender without a reader (foxml_events.send_command): one transport, chosen by the caller.
  m.def(
      "send_command",
      [](const std::string& run_id, const std::string& name, const std::string& arg_json, const std::string& socket,
         const std::string& zmq, const std::string& commands, const std::string& control_dir, double timeout) {
        rd::command_request request{run_id, name, arg_json, "", ""};
        rd::encode_command(request);  // a bad name or argument raises ValueError here
        rd::command_result r;
        {
          py::gil_scoped_release release;
          if (!socket.empty()) {
            r = rd::send_command_relay(socket, request, millis(timeout));
          } else if (!zmq.empty()) {
            r = rd::send_command_zmq(zmq, commands, request, millis(timeout));
          } else {
            r = rd::send_command_control(control_dir.empty() ? rd::default_control_directory() : control_dir, request,
                                         millis(timeout));
          }
        }
        return result_dict(r);
      },
      py::arg("run_id"), py::arg("command"), py::arg("arg_json") = "", py::arg("socket") = "", py::arg("zmq") = "",
      py::arg("commands") = "", py::arg("control_dir") = "", py::arg("timeout") = 5.0);
  m.def(
      "list_control_endpoints",
      [](const std::string& dir, double timeout) {
        std::vector<rd::control_endpoint> endpoints;
        {
          py::gil_scoped_release release;
          endpoints = rd::list_control_endpoints(dir.empty() ? rd::default_control_directory() : dir, millis(timeout));
        }
        py::list out;
        for (const auto& e : endpoints) {
          py::dict d;
          d["path"] = e.path;
          d["run_id"] = e.run_id;
          d["pid"] = e.pid;
          d["host"] = e.host;
          d["running"] = e.running;
          d[py::str(std::string(schema::names::status))] =
              e.status_json.empty() ? py::object(py::none()) : py::object(json_dict(e.status_json));
          d["error"] = e.error;
          out.append(std::move(d));
        }
        return out;
      },
      py::arg("dir") = "", py::arg("timeout") = 1.0);
}

}  // namespace foxml::events::python
