// emit_progress and log_metrics, the calls a training loop makes every step, as METH_FASTCALL
// functions: no argument tuple or dict, no pybind11 dispatch, values read straight from the objects.

#include <pybind11/pybind11.h>

#include <vector>

#include "fast_args.hpp"
#include "py_emitter.hpp"
#include "values.hpp"

namespace foxml::events::python {
namespace {

parameter progress_params[] = {{"stage"},           {"progress_pct"}, {"current_target"},
                               {"targets_complete"}, {"targets_total"}, {"step"},
                               {"total_steps"},      {"epoch"},        {"total_epochs"}};
constexpr int progress_count = 9;

parameter metrics_params[] = {{"metrics"}, {"step"}, {"epoch"}};
constexpr int metrics_count = 3;

constexpr std::size_t stack_metrics = 32;

PyObject* emit_progress_on(py_emitter* e, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* v[progress_count];
  if (!parse_fast_args("emit_progress", progress_params, progress_count, 2, args, nargs, kwnames, v)) return nullptr;
  held_objects held;
  progress_update u;
  if (!to_string(v[0], "stage", u.stage, held)) return nullptr;
  if (!to_double(v[1], "progress_pct", u.progress_pct)) return nullptr;
  if (!to_opt_string(v[2], "current_target", u.current_target, held)) return nullptr;
  if (v[3] != nullptr && !to_int64(v[3], "targets_complete", u.targets_complete)) return nullptr;
  if (v[4] != nullptr && !to_int64(v[4], "targets_total", u.targets_total)) return nullptr;
  if (!to_opt_int64(v[5], "step", u.step)) return nullptr;
  if (!to_opt_int64(v[6], "total_steps", u.total_steps)) return nullptr;
  if (!to_opt_int64(v[7], "epoch", u.epoch)) return nullptr;
  if (!to_opt_int64(v[8], "total_epochs", u.total_epochs)) return nullptr;
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
      raise_type_error("metrics", "a dict of name -> number", dict);
      return nullptr;
    }
    PyObject* copy = PyDict_New();
    if (copy == nullptr) return nullptr;
    held.keep(copy);
    if (PyDict_Update(copy, dict) != 0) {
      raise_type_error("metrics", "a dict of name -> number", v[0]);
      return nullptr;
    }
    dict = copy;
  }
  std::optional<std::int64_t> step, epoch;
  if (!to_opt_int64(v[1], "step", step)) return nullptr;
  if (!to_opt_int64(v[2], "epoch", epoch)) return nullptr;

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
    if (!parse_fast_args("emit_progress", progress_params, progress_count, 2, args, nargs, kwnames, v)) return nullptr;
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

const char* const progress_doc =
    "emit_progress(stage, progress_pct, current_target=None, targets_complete=0, targets_total=0, "
    "step=None, total_steps=None, epoch=None, total_epochs=None) -> bool\n--\n\n"
    "Reports progress within a stage. Returns True when the event was queued, False when it was dropped.";
const char* const metrics_doc =
    "log_metrics(metrics, step=None, epoch=None) -> bool\n--\n\n"
    "Reports a dict of metric name -> number at `step` (default: one after the last step logged).";

PyMethodDef method_defs[] = {
    {"emit_progress", FOXML_FASTCALL(method_emit_progress), METH_FASTCALL | METH_KEYWORDS, progress_doc},
    {"log_metrics", FOXML_FASTCALL(method_log_metrics), METH_FASTCALL | METH_KEYWORDS, metrics_doc},
};
PyMethodDef function_defs[] = {
    {"emit_progress", FOXML_FASTCALL(global_emit_progress), METH_FASTCALL | METH_KEYWORDS, progress_doc},
    {"log_metrics", FOXML_FASTCALL(global_log_metrics), METH_FASTCALL | METH_KEYWORDS, metrics_doc},
};

}  // namespace

void add_fast_emit_calls(pybind11::module_& m, pybind11::handle emitter_class) {
  if (!intern_parameters(progress_params, progress_count) || !intern_parameters(metrics_params, metrics_count)) {
    throw pybind11::error_already_set();
  }
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
