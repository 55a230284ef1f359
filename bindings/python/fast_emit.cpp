// emit_progress and log_metrics, the calls a training loop makes every step, as METH_FASTCALL
// functions: no argument tuple or dict, no pybind11 dispatch, values read straight from the objects.

#include <pybind11/pybind11.h>

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "foxml/events/schema.hpp"

#include "fast_args.hpp"
#include "py_emitter.hpp"
#include "values.hpp"

namespace foxml::events::python {
namespace {

// emit_progress's parameters are the progress fields of the schema, in wire order, each
// converted into the progress_update member the schema reads it from.
using progress_schema = schema::of<event_type::progress>;
constexpr auto& progress_fields = progress_schema::fields;
constexpr int progress_count = static_cast<int>(std::tuple_size_v<std::decay_t<decltype(progress_fields)>>);
constexpr int progress_required = 2;  // stage, progress_pct; the others default to the struct's values

template <std::size_t... I>
std::array<parameter, sizeof...(I)> parameters_of(std::index_sequence<I...>) {
  return {parameter{schema::specs<event_type::progress>[I].key.data()}...};
}
std::array<parameter, progress_count> progress_params = parameters_of(std::make_index_sequence<progress_count>{});

parameter metrics_params[] = {{schema::names::metrics.data()}, {schema::names::step.data()},
                              {schema::names::epoch.data()}};
constexpr int metrics_count = 3;

constexpr std::size_t stack_metrics = 32;

// Reads one argument into the member `f` names; an argument not given keeps the struct's default.
template <class Input, class Field>
bool convert(PyObject* value, const Field& f, Input& in, held_objects& held) {
  if (value == nullptr) return true;
  auto& member = f.get(in);
  const char* name = schema::name_of(Field::key).data();
  using M = std::decay_t<decltype(member)>;
  if constexpr (std::is_same_v<M, std::string_view>) {
    return to_string(value, name, member, held);
  } else if constexpr (std::is_same_v<M, std::optional<std::string_view>>) {
    return to_opt_string(value, name, member, held);
  } else if constexpr (std::is_same_v<M, double>) {
    return to_double(value, name, member);
  } else if constexpr (std::is_same_v<M, std::optional<double>>) {
    return to_opt_double(value, name, member);
  } else if constexpr (std::is_same_v<M, std::int64_t>) {
    return to_int64(value, name, member);
  } else if constexpr (std::is_same_v<M, std::optional<std::int64_t>>) {
    return to_opt_int64(value, name, member);
  } else {
    static_assert(sizeof(M) == 0, "no conversion from Python for this member type");
  }
}

template <std::size_t... I>
bool convert_progress(PyObject* const* v, progress_update& u, held_objects& held, std::index_sequence<I...>) {
  return (convert(v[I], std::get<I>(progress_fields), u, held) && ...);
}

PyObject* emit_progress_on(py_emitter* e, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* v[progress_count];
  if (!parse_fast_args("emit_progress", progress_params.data(), progress_count, progress_required, args, nargs,
                       kwnames, v)) {
    return nullptr;
  }
  held_objects held;
  progress_update u;
  if (!convert_progress(v, u, held, std::make_index_sequence<progress_count>{})) return nullptr;
  const bool queued = e->push([&] { return e->core->emit_progress(u); });
  return PyBool_FromLong(queued);
}

bool metric_value(PyObject* key_text, PyObject* value, double& out) {
  if (PyFloat_CheckExact(value)) {
    out = PyFloat_AS_DOUBLE(value);
    return true;
  }
  const char* key = PyUnicode_AsUTF8(key_text);
  std::string field = std::string("metrics['") + (key != nullptr ? key : "?") + "']";
  PyErr_Clear();
  return to_double(value, field.c_str(), out);
}

PyObject* log_metrics_on(py_emitter* e, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* v[metrics_count];
  if (!parse_fast_args("log_metrics", metrics_params, metrics_count, 1, args, nargs, kwnames, v)) return nullptr;
  held_objects held;
  PyObject* dict = v[0];
  if (!PyDict_Check(dict)) {
    if (!PyMapping_Check(dict) || PyUnicode_Check(dict) || PySequence_Check(dict)) {
      raise_type_error(metrics_params[0].name, "a dict of name -> number", dict);
      return nullptr;
    }
    PyObject* copy = PyDict_New();
    if (copy == nullptr) return nullptr;
    held.keep(copy);
    if (PyDict_Update(copy, dict) != 0) {
      raise_type_error(metrics_params[0].name, "a dict of name -> number", v[0]);
      return nullptr;
    }
    dict = copy;
  }
  std::optional<std::int64_t> step, epoch;
  if (!to_opt_int64(v[1], metrics_params[1].name, step)) return nullptr;
  if (!to_opt_int64(v[2], metrics_params[2].name, epoch)) return nullptr;

  // A value's __float__ or a tensor's .item() runs Python code, which may change the dict: the
  // names are read from our own references to a snapshot of its items, never from the dict itself.
  const auto count = static_cast<std::size_t>(PyDict_GET_SIZE(dict));
  metric on_stack[stack_metrics];
  PyObject* pairs_on_stack[2 * stack_metrics];
  std::vector<metric> on_heap;
  std::vector<PyObject*> pairs_on_heap;
  metric* items = on_stack;
  PyObject** pairs = pairs_on_stack;
  if (count > stack_metrics) {
    on_heap.resize(count);
    pairs_on_heap.resize(2 * count);
    items = on_heap.data();
    pairs = pairs_on_heap.data();
  }
  Py_ssize_t pos = 0;
  PyObject *key = nullptr, *value = nullptr;
  std::size_t taken = 0;
  while (taken < count && PyDict_Next(dict, &pos, &key, &value)) {  // runs no Python code
    Py_INCREF(key);
    Py_INCREF(value);
    pairs[2 * taken] = key;
    pairs[2 * taken + 1] = value;
    ++taken;
  }
  struct release_pairs {
    PyObject** pairs;
    std::size_t n;
    ~release_pairs() {
      for (std::size_t i = 0; i < 2 * n; ++i) Py_DECREF(pairs[i]);
    }
  } release{pairs, taken};
  std::size_t n = 0;
  for (; n < taken; ++n) {
    key = pairs[2 * n];
    if (!PyUnicode_Check(key)) {
      raise_type_error("a metric name", "a str", key);
      return nullptr;
    }
    if (!to_string(key, "a metric name", items[n].name, held)) return nullptr;
    if (!metric_value(key, pairs[2 * n + 1], items[n].value)) return nullptr;
  }
  const std::int64_t at = step ? *step : e->next_step;
  e->next_step = at + 1;
  const bool queued = e->push([&] { return e->core->emit_metrics(at, items, n, epoch); });
  return PyBool_FromLong(queued);
}

PyObject* method_emit_progress(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  py_emitter* e = emitter_of(self);
  return e == nullptr ? nullptr : emit_progress_on(e, args, nargs, kwnames);
}

PyObject* method_log_metrics(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  py_emitter* e = emitter_of(self);
  return e == nullptr ? nullptr : log_metrics_on(e, args, nargs, kwnames);
}

// The module-level convenience calls: no-ops returning False while no global emitter is set.
PyObject* global_emit_progress(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* g = global_emitter();
  if (g == Py_None) {
    PyObject* v[progress_count];  // still reject bad calls, so a typo shows up without an emitter
    if (!parse_fast_args("emit_progress", progress_params.data(), progress_count, progress_required, args, nargs,
                         kwnames, v)) {
      return nullptr;
    }
    Py_RETURN_FALSE;
  }
  py_emitter* e = emitter_of(g);
  return e == nullptr ? nullptr : emit_progress_on(e, args, nargs, kwnames);
}

PyObject* global_log_metrics(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* g = global_emitter();
  if (g == Py_None) {
    PyObject* v[metrics_count];
    if (!parse_fast_args("log_metrics", metrics_params, metrics_count, 1, args, nargs, kwnames, v)) return nullptr;
    Py_RETURN_FALSE;
  }
  py_emitter* e = emitter_of(g);
  return e == nullptr ? nullptr : log_metrics_on(e, args, nargs, kwnames);
}

#define FOXML_FASTCALL(fn) reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn))

// The text signature of emit_progress, from the same field list as its parameters: the first
// `progress_required` without a default, then each with the default of its progress_update member.
template <class Field>
void append_parameter(std::string& out, const Field& f, const progress_update& defaults, int& i) {
  if (i > 0) out += ", ";
  out += schema::name_of(Field::key);
  if (i++ < progress_required) return;
  const auto& value = f.get(defaults);
  using M = std::decay_t<decltype(value)>;
  if constexpr (schema::detail::is_optional<M>::value) out += "=None";  // every optional member starts empty
  else if constexpr (std::is_same_v<M, std::int64_t>) out += "=" + std::to_string(value);
  else if constexpr (std::is_same_v<M, double>) out += "=" + std::to_string(value);
  else out += "='" + std::string(value) + "'";  // a string
}

const std::string progress_doc = [] {
  std::string doc = "emit_progress(";
  const progress_update defaults{};
  int i = 0;
  std::apply([&](const auto&... f) { (append_parameter(doc, f, defaults, i), ...); }, progress_fields);
  return doc + ") -> bool\n--\n\n"
               "Reports progress within a stage. Returns True when the event was queued, False when it was dropped.";
}();
const char* const metrics_doc =
    "log_metrics(metrics, step=None, epoch=None) -> bool\n--\n\n"
    "Reports a dict of metric name -> number at `step` (default: one after the last step logged).";

PyMethodDef method_defs[] = {
    {"emit_progress", FOXML_FASTCALL(method_emit_progress), METH_FASTCALL | METH_KEYWORDS, nullptr},
    {"log_metrics", FOXML_FASTCALL(method_log_metrics), METH_FASTCALL | METH_KEYWORDS, metrics_doc},
};
PyMethodDef function_defs[] = {
    {"emit_progress", FOXML_FASTCALL(global_emit_progress), METH_FASTCALL | METH_KEYWORDS, nullptr},
    {"log_metrics", FOXML_FASTCALL(global_log_metrics), METH_FASTCALL | METH_KEYWORDS, metrics_doc},
};

}  // namespace

void add_fast_emit_calls(pybind11::module_& m, pybind11::handle emitter_class) {
  if (!intern_parameters(progress_params.data(), progress_count) || !intern_parameters(metrics_params, metrics_count)) {
    throw pybind11::error_already_set();
  }
  method_defs[0].ml_doc = function_defs[0].ml_doc = progress_doc.c_str();
  auto* type = reinterpret_cast<PyTypeObject*>(emitter_class.ptr());
  for (PyMethodDef& def : method_defs) {
    PyObject* descr = PyDescr_NewMethod(type, &def);
    if (descr == nullptr || PyObject_SetAttrString(emitter_class.ptr(), def.ml_name, descr) != 0) {
      Py_XDECREF(descr);
      throw pybind11::error_already_set();
    }
    Py_DECREF(descr);
  }
  PyType_Modified(type);
  for (PyMethodDef& def : function_defs) {
    PyObject* fn = PyCFunction_NewEx(&def, nullptr, m.attr("__name__").ptr());
    if (fn == nullptr) throw pybind11::error_already_set();
    m.add_object(def.ml_name, pybind11::reinterpret_steal<pybind11::object>(fn), true);
  }
}

}  // namespace foxml::events::python
