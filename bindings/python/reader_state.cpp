#include "reader_state.hpp"

#include <pybind11/stl.h>

#include <optional>

#include "foxml/events/schema_keys.hpp"
#include "event_dict.hpp"
#include "run_json_tree.hpp"

namespace py = pybind11;
namespace names = foxml::events::schema::names;

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

// The tree of the reader's one run-state serialiser, as Python objects: no text round trip.
py::object to_python(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return py::none();
    case nlohmann::ordered_json::value_t::boolean: return py::bool_(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return py::int_(j.get<std::int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: return py::int_(j.get<std::uint64_t>());
    case nlohmann::ordered_json::value_t::number_float: return py::float_(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return py::str(j.get_ref<const std::string&>());
    case nlohmann::ordered_json::value_t::array: {
      py::list out(j.size());
      std::size_t i = 0;
      for (const auto& item : j) out[i++] = to_python(item);
      return std::move(out);
    }
    case nlohmann::ordered_json::value_t::object: {
      py::dict out;
      for (const auto& [key, value] : j.items()) out[py::str(key)] = to_python(value);
      return std::move(out);
    }
    default: return py::none();
  }
}

py::dict run_dict(const reader::run_state& run, std::int64_t now_us) {
  py::dict d = to_python(reader::run_json_tree(run, now_us, false));
  // The bulk of a run, built here directly: the Python API gives its points as (step, value)
  // tuples, where JSON has only arrays.
  py::dict history;
  for (const auto& [name, series] : run.metrics) {
    py::list points(series.history.size());
    std::size_t i = 0;
    for (const auto& [step, value] : series.history) points[i++] = py::make_tuple(step, value);
    history[py::str(name)] = std::move(points);
  }
  d["metric_history"] = std::move(history);
  // Ranks by their number, as Python code indexes them (JSON could only key them by text).
  py::dict ranks;
  for (const auto& [key, value] : d["ranks"].cast<py::dict>()) ranks[py::int_(std::stoll(key.cast<std::string>()))] = value;
  d["ranks"] = std::move(ranks);
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
    d[names::first_seq.data()] = g.first_seq;
    d[names::last_seq.data()] = g.last_seq;
    d["size"] = g.size();
    d["reported_drop"] = g.reported_drop;
    d[names::count.data()] = g.count;
    out.append(d);
  }
  return out;
}

py::dict status_dict(const reader::training_status_snapshot& s) {
  py::dict d;
  d["running"] = s.running;
  d["run_id"] = opt(s.run_id);
  d[names::stage.data()] = opt(s.stage);
  d[names::progress_pct.data()] = s.progress_pct;
  d[names::current_target.data()] = opt(s.current_target);
  py::list events;
  // The seed's bridge returns the recent events parsed; these lines were all decoded once already.
  for (const auto& line : s.events) events.append(json_loads(line));
  d["events"] = events;
  return d;
}

}  // namespace foxml::events::python
