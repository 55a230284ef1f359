// The control back-channel on the Python emitter: should_stop (a METH_NOARGS call: one atomic load
// behind the cheapest call Python has), poll_command, on_command, paused, wait_while_paused,
// command_done and the endpoint's path. Commands reach Python as dicts; _emitter.py wraps them.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cmath>
#include <optional>
#include <string>

#include "foxml/events/control.hpp"
#include "foxml/events/emitter.hpp"
#include "foxml/events/schema_keys.hpp"
#include "py_emitter.hpp"
#include "values.hpp"

namespace py = pybind11;

namespace foxml::events::python {
namespace {

namespace names = schema::names;

py_emitter& self_of(py::handle self) {
  py_emitter* e = emitter_of(self.ptr());
  if (e == nullptr) throw py::error_already_set();
  return *e;
}

py::dict command_dict(const command& c) {
  py::dict d;
  d[names::command.data()] = c.name;
  d["id"] = c.id;
  d[names::sender.data()] = c.sender;
  d["run_id"] = c.run_id;
  if (c.arg_json.empty()) {
    d[names::arg.data()] = py::none();
  } else {
    d[names::arg.data()] = py::module_::import("json").attr("loads")(c.arg_json);
  }
  return d;
}

PyObject* method_should_stop(PyObject* self, PyObject*) {
  py_emitter* e = emitter_of(self);
  if (e == nullptr) return nullptr;
  return PyBool_FromLong(e->core->should_stop() ? 1 : 0);
}

PyMethodDef should_stop_def = {
    "should_stop", method_should_stop, METH_NOARGS,
    "should_stop() -> bool\n--\n\nTrue once a `cancel` command was received (one atomic load: call it every step)."};

// Runs the Python callables registered with on_command for one command, with the GIL, on the
// thread that emits or polls (the core calls this from there; with overflow='block' that thread
// released the GIL for the push, so take it back). An exception is reported as unraisable: an emit
// call never raises one of them.
void run_python_callbacks(py_emitter& e, const command& c) {
  py::gil_scoped_acquire gil;
  try {
    if (!e.command_callbacks) return;
    py::dict d = command_dict(c);
    py::list callbacks = py::reinterpret_borrow<py::list>(e.command_callbacks);
    for (py::handle callback : callbacks) {
      try {
        callback(d);
      } catch (py::error_already_set& err) {
        err.discard_as_unraisable("foxml_events: an on_command callback");
      }
    }
  } catch (py::error_already_set& err) {
    err.discard_as_unraisable("foxml_events: on_command");
  }
}

}  // namespace

void bind_control(py::handle emitter_class) {
  auto* type = reinterpret_cast<PyTypeObject*>(emitter_class.ptr());
  PyObject* descr = PyDescr_NewMethod(type, &should_stop_def);
  if (descr == nullptr || PyObject_SetAttrString(emitter_class.ptr(), should_stop_def.ml_name, descr) != 0) {
    Py_XDECREF(descr);
    throw py::error_already_set();
  }
  Py_DECREF(descr);
  PyType_Modified(type);

  auto cls = py::reinterpret_borrow<py::object>(emitter_class);
  const auto def = [&](const char* name, py::cpp_function fn) { py::setattr(cls, name, fn); };
  def("paused", py::cpp_function([](py::handle self) { return self_of(self).core->paused(); },
                                 py::is_method(cls), py::name("paused"),
                                 "True between a `pause` command and the next `resume` (or `cancel`)."));
  def("_poll_command", py::cpp_function(
                           [](py::handle self) -> py::object {
                             auto c = self_of(self).core->poll_command();
                             if (!c) return py::none();
                             return command_dict(*c);
                           },
                           py::is_method(cls), py::name("_poll_command")));
  def("_on_command", py::cpp_function(
                         [](py::handle self, py::object callback) {
                           py_emitter& e = self_of(self);
                           if (!PyCallable_Check(callback.ptr())) throw py::type_error("foxml_events: on_command needs a callable");
                           const bool first = !e.command_callbacks;
                           if (first) e.command_callbacks = py::list();
                           py::reinterpret_borrow<py::list>(e.command_callbacks).append(callback);
                           if (first) {
                             py_emitter* raw = &e;
                             e.core->on_command([raw](const command& c) { run_python_callbacks(*raw, c); });
                           }
                         },
                         py::is_method(cls), py::name("_on_command"), py::arg("callback")));
  def("wait_while_paused",
      py::cpp_function(
          [](py::handle self, std::optional<double> timeout) {
            py_emitter& e = self_of(self);
            if (timeout && (!std::isfinite(*timeout) || *timeout < 0)) {
              throw py::value_error("foxml_events: timeout must be a number of seconds >= 0");
            }
            const auto limit = timeout ? std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(*timeout * 1000)))
                                       : std::chrono::milliseconds(std::chrono::hours(24 * 365));
            py::gil_scoped_release release;
            return e.core->wait_while_paused(limit);
          },
          py::is_method(cls), py::name("wait_while_paused"), py::arg("timeout") = py::none(),
          "Blocks (without the GIL) while the run is paused, until `resume` or `cancel` or the timeout; "
          "True when no longer paused. Acknowledges the pause and resume commands with command_done."));
  def("_command_done",
      py::cpp_function(
          [](py::handle self, const std::string& id, const std::string& outcome, std::optional<std::string> message) {
            py_emitter& e = self_of(self);
            std::optional<std::string_view> text;
            if (message) text = *message;
            return e.push([&] { return e.core->emit_command_done(id, outcome, text); });
          },
          py::is_method(cls), py::name("_command_done"), py::arg("command_id"), py::arg("outcome"),
          py::arg("message")));
  py::setattr(cls, "control_endpoint",
              py::reinterpret_steal<py::object>(PyObject_CallFunctionObjArgs(
                  reinterpret_cast<PyObject*>(&PyProperty_Type),
                  py::cpp_function(
                      [](py::handle self) -> py::object {
                        const std::string path = self_of(self).core->control_endpoint_path();
                        if (path.empty()) return py::none();
                        return py::str(path);
                      },
                      py::is_method(cls))
                      .ptr(),
                  nullptr)));
}

}  // namespace foxml::events::python
