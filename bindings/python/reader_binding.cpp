// The reader side of foxml_events._core: decode_line (the core codec) to Python dicts. Reading
// files, sockets and subscribers goes through the C++ reader library, in reader_live.cpp.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <string>

#include "event_dict.hpp"
#include "foxml/events/codec.hpp"

namespace py = pybind11;

namespace foxml::events::python {
namespace {

py::object json_loads() {
  // Leaked on purpose: a static py::object would be released after the interpreter is gone.
  static PyObject* loads = py::object(py::module_::import("json").attr("loads")).release().ptr();
  return py::reinterpret_borrow<py::object>(loads);
}

template <class T>
void put(py::dict& d, const char* key, const std::optional<T>& value) {
  if (value) d[key] = *value;
}

py::dict to_dict(const event& e) {
  py::dict d;
  d["event_type"] = std::string(to_string(e.type));
  d["run_id"] = e.run_id;
  d["timestamp"] = e.timestamp;
  d["seq"] = e.seq;
  d["pid"] = e.pid;
  d["host"] = e.host;
  d["rank"] = e.rank;
  d["world_size"] = e.world_size;
  if (e.truncated) d["truncated"] = true;
  // Fields of the event's type that the line had as null come back as None (stage_change's
  // previous_stage, progress's current_target, ...): the schema says they are always present.
  switch (e.type) {
    case event_type::progress: d["current_target"] = py::none(); break;
    case event_type::stage_change: d["previous_stage"] = py::none(); break;
    case event_type::target_complete: d["best_auc"] = py::none(); break;
    case event_type::run_complete: d["duration_s"] = py::none(); break;
    default: break;
  }
  put(d, "name", e.name);
  put(d, "stage", e.stage);
  put(d, "current_target", e.current_target);
  put(d, "previous_stage", e.previous_stage);
  put(d, "new_stage", e.new_stage);
  put(d, "target", e.target);
  put(d, "status", e.status);
  put(d, "level", e.level);
  put(d, "message", e.message);
  put(d, "error_message", e.error_message);
  put(d, "error_type", e.error_type);
  put(d, "progress_pct", e.progress_pct);
  put(d, "best_auc", e.best_auc);
  put(d, "duration_s", e.duration_s);
  put(d, "cpu_pct", e.cpu_pct);
  put(d, "targets_complete", e.targets_complete);
  put(d, "targets_total", e.targets_total);
  put(d, "step", e.step);
  put(d, "total_steps", e.total_steps);
  put(d, "epoch", e.epoch);
  put(d, "total_epochs", e.total_epochs);
  put(d, "models_trained", e.models_trained);
  put(d, "rss_bytes", e.rss_bytes);
  put(d, "mem_used_bytes", e.mem_used_bytes);
  put(d, "mem_total_bytes", e.mem_total_bytes);
  put(d, "count", e.count);
  put(d, "first_seq", e.first_seq);
  put(d, "last_seq", e.last_seq);
  put(d, "recoverable", e.recoverable);
  if (e.metrics) {
    py::dict metrics;
    for (const auto& [name, value] : *e.metrics) metrics[py::str(name)] = value;
    d["metrics"] = metrics;
  }
  if (e.config_json) d["config"] = json_loads()(*e.config_json);
  if (e.tags) d["tags"] = *e.tags;
  if (e.gpus) {
    py::list gpus;
    for (const gpu_info& g : *e.gpus) {
      py::dict gd;
      gd["index"] = g.index;
      gd["name"] = g.name;
      if (g.util_pct) gd["util_pct"] = *g.util_pct;
      gd["mem_used_bytes"] = g.mem_used_bytes;
      gd["mem_total_bytes"] = g.mem_total_bytes;
      if (g.temperature_c) gd["temperature_c"] = *g.temperature_c;
      if (g.power_w) gd["power_w"] = *g.power_w;
      gpus.append(gd);
    }
    d["gpus"] = gpus;
  }
  return d;
}

py::dict decode_to_dict(std::string_view line) {
  decode_result result = decode_line(line);
  if (!result) throw py::value_error("foxml_events: cannot decode line: " + escape_invalid_utf8(result.error));
  return to_dict(*result.value);
}

// The length of the valid UTF-8 sequence at the start of `s` (RFC 3629: no overlongs, no
// surrogates, nothing past U+10FFFF), 0 when it is not one.
std::size_t utf8_sequence(std::string_view s) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = byte(0);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned char low = 0x80, high = 0xBF;  // the allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c == 0xE0) n = 3, low = 0xA0;
  else if (c >= 0xE1 && c <= 0xEC) n = 3;
  else if (c == 0xED) n = 3, high = 0x9F;
  else if (c >= 0xEE && c <= 0xEF) n = 3;
  else if (c == 0xF0) n = 4, low = 0x90;
  else if (c >= 0xF1 && c <= 0xF3) n = 4;
  else if (c == 0xF4) n = 4, high = 0x8F;
  else return 0;
  if (s.size() < n || byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < n; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return n;
}

}  // namespace

py::dict event_to_dict(const event& e) { return to_dict(e); }

std::string escape_invalid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const std::size_t n = utf8_sequence(text);
    if (n > 0) {
      out.append(text.substr(0, n));
      text.remove_prefix(n);
      continue;
    }
    static const char digits[] = "0123456789abcdef";
    const auto c = static_cast<unsigned char>(text.front());
    out += "\\x";
    out += digits[c >> 4];
    out += digits[c & 0xF];
    text.remove_prefix(1);
  }
  return out;
}

void bind_reader(py::module_& m) {
  m.def(
      "decode_line", [](py::handle line) {
        if (PyBytes_Check(line.ptr())) {
          return decode_to_dict(std::string_view(PyBytes_AS_STRING(line.ptr()), PyBytes_GET_SIZE(line.ptr())));
        }
        if (!PyUnicode_Check(line.ptr())) throw py::type_error("foxml_events: decode_line takes str or bytes");
        Py_ssize_t size = 0;
        const char* data = PyUnicode_AsUTF8AndSize(line.ptr(), &size);
        if (data == nullptr) {  // lone surrogates: no UTF-8 line could hold them
          PyErr_Clear();
          throw py::value_error("foxml_events: cannot decode line: it holds lone surrogates, not UTF-8 text");
        }
        return decode_to_dict(std::string_view(data, static_cast<std::size_t>(size)));
      },
      py::arg("line"),
      "Decodes one JSON line into a dict (wire field names; NaN metrics come back as float('nan')). "
      "Raises ValueError for a line that is not a valid event.");
}

}  // namespace foxml::events::python
