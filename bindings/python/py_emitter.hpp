#pragma once
// The object behind a Python emitter: the core emitter plus the little state the Python API adds
// (the current stage for `stage()`, the automatic metrics step, the memory sink for tests).

#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "foxml/events/emitter.hpp"
#include "foxml/events/memory_sink.hpp"

namespace foxml::events::python {

struct py_emitter {
  std::unique_ptr<training_event_emitter> core;
  std::string sink_description;
  std::shared_ptr<memory_store> memory;
  std::optional<std::string> current_stage;
  std::int64_t next_step = 0;
  bool blocking = false;         // overflow_policy::block: a push may wait, so it drops the GIL
  bool closed = false;
  pybind11::object command_callbacks;  // list of on_command callables (None until the first)

  py_emitter() = default;
  py_emitter(const py_emitter&) = delete;
  py_emitter& operator=(const py_emitter&) = delete;
  ~py_emitter();

  /// Runs an emit call, without the GIL when the overflow policy can make it wait.
  template <class Push>
  bool push(const Push& call) {
    if (!blocking) return call();
    bool queued = false;
    Py_BEGIN_ALLOW_THREADS queued = call();
    Py_END_ALLOW_THREADS return queued;
  }
};

/// Returns the py_emitter of `self` (an instance of the bound class or a Python subclass), or
/// nullptr with RuntimeError set when its __init__ did not run.
py_emitter* emitter_of(PyObject* self);

/// The emitter the module-level convenience functions use (a new reference's borrow; may be None).
PyObject* global_emitter();

/// Adds the control methods (should_stop, poll_command...: control_binding.cpp) to the class.
void bind_control(pybind11::handle emitter_class);

/// Adds the fast emit_progress / log_metrics (METH_FASTCALL) to the class and to the module.
void add_fast_emit_calls(pybind11::module_& m, pybind11::handle emitter_class);

}  // namespace foxml::events::python
