// The reader side of foxml_events._core: decode_line (the core codec) to Python dicts. Reading
// files, sockets and subscribers goes through the C++ reader library, in reader_live.cpp.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <string>
#include <type_traits>

#include "event_dict.hpp"
#include "foxml/events/codec.hpp"
#include "foxml/events/detail/text.hpp"
#include "foxml/events/schema.hpp"

namespace py = pybind11;

namespace foxml::events::python {
namespace {

template <class T>
void put_gpu_member(py::dict& d, std::string_view key, const T& value) {
  if constexpr (std::is_same_v<T, std::optional<double>>) {
    if (!value) return;  // left out, as on the wire
  }
  d[py::str(key.data(), key.size())] = value;
}

py::object json_loads() {
  // Leaked on purpose: a static py::object would be released after the interpreter is gone.
  static PyObject* loads = py::object(py::module_::import("json").attr("loads")).release().ptr();
  return py::reinterpret_borrow<py::object>(loads);
}

py::str key_of(std::string_view name) { return py::str(name.data(), name.size()); }

// A member of `event` as its dict value, by the key's JSON shape.
template <field_kind kind, class T>
py::object value_of(const T& value) {
  if constexpr (kind == field_kind::metric_map) {
    py::dict metrics;
    for (const auto& [name, number] : value) metrics[py::str(name)] = number;
    return std::move(metrics);
  } else if constexpr (kind == field_kind::json_object) {
    return json_loads()(value);
  } else if constexpr (kind == field_kind::gpu_list) {
    py::list gpus;
    for (const gpu_info& g : value) {
      py::dict gd;
#define FOXML_EVENTS_GPU_DICT(gpu_key, gpu_kind, gpu_nullable) \
  put_gpu_member(gd, schema::gpu_names::gpu_key, g.gpu_key);
      FOXML_EVENTS_GPU_KEYS(FOXML_EVENTS_GPU_DICT)
#undef FOXML_EVENTS_GPU_DICT
      gpus.append(gd);
    }
    return std::move(gpus);
  } else {
    return py::cast(value);
  }
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
  d["local_rank"] = e.local_rank;
  if (e.truncated) d["truncated"] = true;
  // Fields of the event's type that the line had as null come back as None (stage_change's
  // previous_stage, progress's current_target, ...): the schema says they are always present.
  for (const field_spec& spec : fields_of(e.type)) {
    if (spec.nullable && !spec.optional) d[key_of(spec.key)] = py::none();
  }
#define FOXML_EVENTS_DICT_ITEM(wire_key, member, wire_kind) \
  if (e.member) d[key_of(schema::names::wire_key)] = value_of<field_kind::wire_kind>(*e.member);
  FOXML_EVENTS_WIRE_KEYS(FOXML_EVENTS_DICT_ITEM)
#undef FOXML_EVENTS_DICT_ITEM
  return d;
}

py::dict decode_to_dict(std::string_view line) {
  decode_result result = decode_line(line);
  if (!result) throw py::value_error("foxml_events: cannot decode line: " + escape_invalid_utf8(result.error));
  return to_dict(*result.value);
}

}  // namespace

py::dict event_to_dict(const event& e) { return to_dict(e); }

std::string escape_invalid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const std::size_t n = detail::utf8_sequence_length(text);
    if (n > 0) {
      out.append(text.substr(0, n));
      text.remove_prefix(n);
      continue;
    }
    const auto c = static_cast<unsigned char>(text.front());
    out += "\\x";
    out += detail::hex_digit(c >> 4);
    out += detail::hex_digit(c);
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
  m.def(
      "_schema",
      [] {
        py::dict types;
        for (std::size_t i = 0; i < event_type_count; ++i) {
          const auto type = static_cast<event_type>(i);
          py::list fields;
          for (const field_spec& spec : fields_of(type)) {
            fields.append(py::make_tuple(spec.key, to_string(spec.kind), spec.nullable, spec.optional));
          }
          types[py::str(std::string(to_string(type)))] = fields;
        }
        return types;
      },
      "The wire schema as the library has it: event type -> [(key, kind, nullable, optional)] in wire "
      "order (tests compare the stub and DESIGN.md's copy with it).");
}

}  // namespace foxml::events::python
