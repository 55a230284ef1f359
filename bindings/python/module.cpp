// foxml_events._core: the compiled half of the Python package.

#include <pybind11/pybind11.h>

#include <system_error>

#include "foxml/events/codec.hpp"
#include "foxml/events/defaults.hpp"
#include "foxml/events/identity.hpp"
#include "foxml/events/signals.hpp"
#include "foxml/events/sink_uri.hpp"
#include "sink_choice.hpp"

namespace py = pybind11;

namespace foxml::events::python {
void bind_emitter(py::module_& m);
void bind_reader(py::module_& m);
void bind_live_reader(py::module_& m);
}  // namespace foxml::events::python

PYBIND11_MODULE(_core, m) {
  m.doc() = "Compiled core of foxml_events (emitter and reader bindings). Import foxml_events instead.";
  m.attr("__version__") = FOXML_EVENTS_VERSION_STRING;
  // A sink that cannot open its file raises the matching OSError subclass (FileNotFoundError...).
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const std::system_error& e) {
      py::object error = py::module_::import("builtins").attr("OSError")(e.code().value(), e.what());
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
    }
  });
  // run_start's config may nest this deep (the config object is level 1): deeper, the reader's
  // depth cap would refuse the line.
  m.attr("max_config_depth") = foxml::events::max_config_depth;
  m.def("default_event_file", &foxml::events::default_event_file,
        "The file the default sink writes: $FOXML_TRAINING_EVENT_FILE, else <per-user dir>/events.jsonl.");
  m.def("default_event_socket", &foxml::events::default_event_socket,
        "The socket the default sink tries first: $FOXML_TRAINING_EVENT_SOCKET, else <per-user dir>/events.sock.");
  m.def("default_sink_list", &foxml::events::default_sink_list,
        "The sink list used for sink=None: $FOXML_EVENTS_SINKS, else unix://<socket>,file://<file>.");
  m.def("default_run_id", &foxml::events::default_run_id,
        "The run id all ranks share when none is given: $TORCHELASTIC_RUN_ID (not its placeholder 'none'), "
        "else $SLURM_JOB_ID (-$SLURM_STEP_ID), else ''.");
  m.def("_zmq_sinks_available", &foxml::events::python::zmq_sinks_available);
  m.def("default_event_directory", &foxml::events::default_event_directory,
        "The per-user directory for event files and sockets ($XDG_RUNTIME_DIR/foxml or ~/.cache/foxml).");
  m.def("_install_signal_hook", [](double deadline_s, bool termination, bool fatal) {
    foxml::events::signal_hook_options options;
    options.deadline = std::chrono::milliseconds(static_cast<long long>(deadline_s * 1000.0));
    options.termination_signals = termination;
    options.fatal_signals = fatal;
    foxml::events::install_signal_hook(options);
  });
  m.def("_remove_signal_hook", &foxml::events::remove_signal_hook);
  m.def("_signal_hook_installed", &foxml::events::signal_hook_installed);
  // zmq+tcp:// and zmq+ipc:// sink URIs work from the first emitter on (no-op without the component).
  foxml::events::python::enable_zmq_sinks();
  foxml::events::python::bind_emitter(m);
  foxml::events::python::bind_reader(m);
  foxml::events::python::bind_live_reader(m);
}
