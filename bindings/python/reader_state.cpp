#include "reader_state.hpp"

#include <pybind11/stl.h>

#include <optional>

#include "event_dict.hpp"
#include "foxml/events/reader/run_json.hpp"

namespace py = pybind11;

namespace foxml::events::python {
namespace {

template <class T>
py::object opt(const std::optional<T>& value) {
  return value ? py::cast(*value) : py::none();
}

py::object json_loads(const std::string& text) {
  // Looked up per call, not cached in a static: a static py::object outlives the interpreter.
  return py::module_::import("json").attr("loads")(text);
}

}  // namespace

py::dict json_dict(const std::string& text) { return json_loads(text); }

py::dict run_dict(const reader::run_state& run, std::int64_t now_us) {
  py::dict d = json_loads(reader::to_json(run, now_us));
  py::dict history = d["metric_history"];
  for (const auto& [name, points] : history) {
    py::list tuples;
    for (const auto& point : points) tuples.append(py::tuple(py::reinterpret_borrow<py::object>(point)));
    history[name] = tuples;
  }
  return d;
}

py::list malformed_list(const std::vector<reader::malformed_line>& lines) {
  py::list out;
  for (const auto& m : lines) {
    py::dict d;
    d["origin"] = escape_invalid_utf8(m.origin);
    d["line"] = m.line;
    d["offset"] = m.offset;
    d["error"] = escape_invalid_utf8(m.error);  // quotes the line, which may not be UTF-8
    out.append(d);
  }
  return out;
}

py::list gap_list(const std::vector<reader::seq_gap>& gaps) {
  py::list out;
  for (const auto& g : gaps) {
    py::dict d;
    d["run_id"] = g.key.run_id;
    d["host"] = g.key.host;
    d["pid"] = g.key.pid;
    d["first_seq"] = g.first_seq;
    d["last_seq"] = g.last_seq;
    d["size"] = g.size();
    d["reported_drop"] = g.reported_drop;
    d["count"] = g.count;
    out.append(d);
  }
  return out;
}

py::dict status_dict(const reader::bridge_status& s) {
  py::dict d;
  d["running"] = s.running;
  d["run_id"] = opt(s.run_id);
  d["stage"] = opt(s.stage);
  d["progress_pct"] = s.progress_pct;
  d["current_target"] = opt(s.current_target);
  py::list events;
  // The seed's bridge returns the recent events parsed; these lines were all decoded once already.
  for (const auto& line : s.events) events.append(json_loads(line));
  d["events"] = events;
  return d;
}

}  // namespace foxml::events::python
