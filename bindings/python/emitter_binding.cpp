// The emitter class of foxml_events._core: construction, the lifecycle emit calls, flush/close and
// stats. The per-step calls (emit_progress, log_metrics) are in fast_emit.cpp.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "foxml/events/emitter.hpp"
#include "foxml/events/schema.hpp"
#include "py_emitter.hpp"
#include "sink_choice.hpp"
#include "values.hpp"

namespace py = pybind11;

namespace foxml::events::python {
namespace {

PyObject* global_slot = Py_None;  // strong reference (None is immortal enough for us)

void check(bool converted) {
  if (!converted) throw py::error_already_set();
}

std::chrono::milliseconds seconds_arg(double seconds, const char* field) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 1e7) {
    throw py::value_error(std::string("foxml_events: ") + field + " must be a number of seconds >= 0");
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(seconds * 1000.0)));
}

template <class Duration>
Duration duration_arg(double seconds, const char* field) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 1e7) {
    throw py::value_error(std::string("foxml_events: ") + field + " must be a number of seconds >= 0");
  }
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
}

std::optional<std::string> sink_spec(const py::object& sink) {
  if (sink.is_none()) return std::nullopt;
  if (py::isinstance<py::str>(sink)) return sink.cast<std::string>();
  py::module_ os = py::module_::import("os");
  if (py::hasattr(sink, "__fspath__")) return os.attr("fsdecode")(os.attr("fspath")(sink)).cast<std::string>();
  throw py::type_error(std::string("foxml_events: sink must be None, a path, or a URI string, got ") +
                       Py_TYPE(sink.ptr())->tp_name);
}

std::unique_ptr<py_emitter> make_emitter(const py::object& run_id_obj, const py::object& sink, std::size_t queue_capacity,
                                         const std::string& overflow, double block_timeout, double close_timeout,
                                         std::optional<double> heartbeat_interval, double resources_interval,
                                         std::size_t max_line_bytes,
                                         std::optional<std::int64_t> rank, std::optional<std::int64_t> world_size,
                                         std::optional<std::string> host, const std::string& after_fork,
                                         const std::string& control_endpoint,
                                         std::optional<std::string> control_directory,
                                         std::optional<std::int64_t> local_rank,
                                         const std::vector<std::string>& rank_zero_only) {
  held_objects held;
  std::string_view run_id_view;
  check(to_string(run_id_obj.ptr(), "run_id", run_id_view, held));
  emitter_options options;
  options.queue_capacity = queue_capacity;
  if (overflow == "drop") {
    options.overflow = overflow_policy::drop;
  } else if (overflow == "block") {
    options.overflow = overflow_policy::block;
  } else {
    throw py::value_error("foxml_events: overflow must be 'drop' or 'block', got '" + overflow + "'");
  }
  options.block_timeout = duration_arg<std::chrono::microseconds>(block_timeout, "block_timeout");
  options.close_timeout = seconds_arg(close_timeout, "close_timeout");
  // None: the library's default (on with the sampler or a socket sink); 0: off.
  if (heartbeat_interval) options.heartbeat_interval = seconds_arg(*heartbeat_interval, "heartbeat_interval");
  options.resources_interval = seconds_arg(resources_interval, "resources_interval");
  options.max_line_bytes = max_line_bytes;
  options.rank = rank;
  options.world_size = world_size;
  options.host = std::move(host);
  options.local_rank = local_rank;
  for (const std::string& name : rank_zero_only) {
    const auto type = parse_event_type(name);
    if (!type) throw py::value_error("foxml_events: rank_zero_only: unknown event type '" + name + "'");
    options.rank_zero_only.push_back(*type);
  }
  if (after_fork == "restart") {
    options.after_fork = fork_policy::restart;
  } else if (after_fork == "disable") {
    options.after_fork = fork_policy::disable;
  } else {
    throw py::value_error("foxml_events: after_fork must be 'restart' or 'disable', got '" + after_fork + "'");
  }

  if (control_endpoint == "auto") {
    options.control_endpoint = control_endpoint_mode::automatic;
  } else if (control_endpoint == "on") {
    options.control_endpoint = control_endpoint_mode::on;
  } else if (control_endpoint == "off") {
    options.control_endpoint = control_endpoint_mode::off;
  } else {
    throw py::value_error("foxml_events: control_endpoint must be 'auto', 'on' or 'off', got '" + control_endpoint + "'");
  }
  if (control_directory) options.control_directory = *control_directory;

  auto e = std::make_unique<py_emitter>();
  chosen_sink chosen = choose_sink(sink_spec(sink));
  e->sink_description = chosen.destination->describe();
  e->memory = std::move(chosen.memory);
  e->blocking = options.overflow == overflow_policy::block;
  e->core = std::make_unique<training_event_emitter>(std::string(run_id_view), std::move(chosen.destination), options);
  return e;
}

py_emitter& self_of(py::handle self) {
  py_emitter* e = emitter_of(self.ptr());
  if (e == nullptr) throw py::error_already_set();
  return *e;
}

py::dict stats_dict(const emitter_stats& s) {
  py::dict d;
  d["emitted"] = s.emitted;
  d["generated"] = s.generated;
  d["written"] = s.written;
  d["dropped"] = s.dropped();
  d["dropped_queue_full"] = s.dropped_queue_full;
  d["dropped_spill_budget"] = s.dropped_spill_budget;
  d["dropped_sink"] = s.dropped_sink;
  d["dropped_oversize"] = s.dropped_oversize;
  d["dropped_closed"] = s.dropped_closed;
  d["truncated"] = s.truncated;
  d["lifecycle_reserved"] = s.lifecycle_reserved;
  d["commands_received"] = s.commands_received;
  d["commands_duplicate"] = s.commands_duplicate;
  d["commands_refused"] = s.commands_refused;
  d["dropped_by_policy"] = s.dropped_by_policy;
  return d;
}

}  // namespace

py_emitter::~py_emitter() {
  if (!core) return;
  const bool can_release = Py_IsInitialized() && PyGILState_Check() && !_Py_IsFinalizing();
  if (can_release) {
    Py_BEGIN_ALLOW_THREADS core.reset();
    Py_END_ALLOW_THREADS
  } else {
    core.reset();
  }
}

py_emitter* emitter_of(PyObject* self) {
  auto* inst = reinterpret_cast<py::detail::instance*>(self);
  if (inst->simple_layout) {
    auto* e = static_cast<py_emitter*>(inst->simple_value_holder[0]);
    if (e != nullptr && inst->simple_holder_constructed) return e;
  } else {
    try {
      if (auto* e = py::handle(self).cast<py_emitter*>()) return e;
    } catch (const std::exception&) {
    }
  }
  PyErr_SetString(PyExc_RuntimeError,
                  "foxml_events: this emitter was not initialised (a subclass __init__ must call super().__init__)");
  return nullptr;
}

PyObject* global_emitter() { return global_slot; }

namespace {

namespace names = schema::names;

// The lifecycle emit calls, each converting its arguments (TypeError naming the field) and
// pushing without the GIL when the overflow policy may wait.
bool emit_stage_change(py::handle self, py::handle previous_stage, py::handle new_stage) {
  py_emitter& e = self_of(self);
  held_objects held;
  std::optional<std::string_view> previous;
  std::string_view next;
  check(to_opt_string(previous_stage.ptr(), names::previous_stage.data(), previous, held));
  check(to_string(new_stage.ptr(), names::new_stage.data(), next, held));
  e.current_stage = std::string(next);
  return e.push([&] { return e.core->emit_stage_change(previous, next); });
}

// A snapshot of `metrics` holding its own references, alive until the event is queued: a value's
// __float__ may change the dict (and free its keys) while later values are converted.
py::list metric_items(py::handle metrics, std::vector<metric>& items, held_objects& held) {
  if (!PyDict_Check(metrics.ptr())) {
    check(raise_type_error(names::metrics.data(), "a dict of name -> number", metrics.ptr()));
  }
  auto snapshot = py::reinterpret_steal<py::list>(PyDict_Items(metrics.ptr()));
  if (!snapshot) throw py::error_already_set();
  for (py::handle item : snapshot) {
    metric m{};
    check(to_string(PyTuple_GET_ITEM(item.ptr(), 0), "a metric name", m.name, held));
    const std::string field = std::string(names::metrics) + "['" + std::string(m.name) + "']";
    check(to_double(PyTuple_GET_ITEM(item.ptr(), 1), field.c_str(), m.value));
    items.push_back(m);
  }
  return snapshot;
}

bool emit_target_complete(py::handle self, py::handle target, py::handle status, py::handle models_trained,
                          py::handle best_auc, py::handle metrics) {
  py_emitter& e = self_of(self);
  held_objects held;
  target_result r;
  check(to_string(target.ptr(), names::target.data(), r.target, held));
  check(to_string(status.ptr(), names::status.data(), r.status, held));
  check(to_int64(models_trained.ptr(), names::models_trained.data(), r.models_trained));
  check(to_opt_double(best_auc.ptr(), names::best_auc.data(), r.best_auc));
  std::vector<metric> items;
  py::list snapshot;
  if (!metrics.is_none()) {
    snapshot = metric_items(metrics, items, held);
    r.metrics = items.data();
    r.metric_count = items.size();
  }
  return e.push([&] { return e.core->emit_target_complete(r); });
}

bool emit_run_complete(py::handle self, py::handle status, py::handle duration_s) {
  py_emitter& e = self_of(self);
  held_objects held;
  std::string_view s;
  std::optional<double> duration;
  check(to_string(status.ptr(), names::status.data(), s, held));
  check(to_opt_double(duration_s.ptr(), names::duration_s.data(), duration));
  return e.push([&] { return e.core->emit_run_complete(s, duration); });
}

bool emit_error(py::handle self, py::handle error_message, py::handle error_type, py::handle recoverable) {
  py_emitter& e = self_of(self);
  held_objects held;
  std::string_view message, type;
  check(to_string(error_message.ptr(), names::error_message.data(), message, held));
  check(to_string(error_type.ptr(), names::error_type.data(), type, held));
  const int flag = PyObject_IsTrue(recoverable.ptr());
  if (flag < 0) throw py::error_already_set();
  return e.push([&] { return e.core->emit_error(message, type, flag != 0); });
}

bool emit_log(py::handle self, py::handle level, py::handle message) {
  py_emitter& e = self_of(self);
  held_objects held;
  std::string_view l, text;
  check(to_string(level.ptr(), names::level.data(), l, held));
  check(to_string(message.ptr(), names::message.data(), text, held));
  return e.push([&] { return e.core->emit_log(l, text); });
}

bool emit_run_start(py::handle self, std::optional<std::string> config_json, py::handle name, py::handle tags,
                    py::handle total_steps, py::handle total_epochs, py::handle process_start_time,
                    py::handle heartbeat_interval_s, py::handle stale_after_heartbeats) {
  py_emitter& e = self_of(self);
  held_objects held;
  run_start_info info;
  check(to_opt_string(name.ptr(), names::name.data(), info.name, held));
  if (config_json) info.config_json = *config_json;
  std::vector<std::string_view> tag_views;
  if (!tags.is_none()) {
    if (PyUnicode_Check(tags.ptr()) || !PySequence_Check(tags.ptr())) {
      check(raise_type_error(names::tags.data(), "a list of str", tags.ptr()));
    }
    for (auto tag : py::reinterpret_borrow<py::sequence>(tags)) {
      std::string_view t;
      check(to_string(tag.ptr(), "each tag", t, held));
      tag_views.push_back(t);
    }
    info.tags = tag_views.data();
    info.tag_count = tag_views.size();
  }
  check(to_opt_int64(total_steps.ptr(), names::total_steps.data(), info.total_steps));
  check(to_opt_int64(total_epochs.ptr(), names::total_epochs.data(), info.total_epochs));
  // Liveness fields: None (the wrapper's) lets the library fill them.
  check(to_opt_double(process_start_time.ptr(), names::process_start_time.data(), info.process_start_time));
  check(to_opt_double(heartbeat_interval_s.ptr(), names::heartbeat_interval_s.data(), info.heartbeat_interval_s));
  check(to_opt_int64(stale_after_heartbeats.ptr(), names::stale_after_heartbeats.data(), info.stale_after_heartbeats));
  return e.push([&] { return e.core->emit_run_start(info); });
}

void bind_delivery_report(py::module_& m) {
  py::class_<delivery_report>(m, "DeliveryReport", "Outcome of flush() and close().")
      .def_property_readonly("status", [](const delivery_report& r) { return to_string(r.status); },
                             "'ok', 'timed_out' or 'closed'.")
      .def_readonly("dropped", &delivery_report::dropped, "Total events dropped since the emitter was created.")
      .def_readonly("pending", &delivery_report::pending, "Events not yet handed to the sink when the call returned.")
      .def_property_readonly("ok", &delivery_report::ok)
      .def("__repr__", [](const delivery_report& r) {
        return std::string("DeliveryReport(status='") + to_string(r.status) + "', dropped=" + std::to_string(r.dropped) +
               ", pending=" + std::to_string(r.pending) + ")";
      });
}

// Construction and the read-only properties.
void bind_construction(py::class_<py_emitter>& cls) {
  cls.def(py::init(&make_emitter), py::arg("run_id"), py::arg("sink") = py::none(), py::kw_only(),
          py::arg("queue_capacity") = 16384, py::arg("overflow") = "drop", py::arg("block_timeout") = 0.01,
          py::arg("close_timeout") = 2.0, py::arg("heartbeat_interval") = py::none(), py::arg("resources_interval") = 0.0,
          py::arg("max_line_bytes") = 1u << 20,
          py::arg("rank") = py::none(), py::arg("world_size") = py::none(), py::arg("host") = py::none(),
          py::arg("after_fork") = "restart", py::arg("control_endpoint") = "auto",
          py::arg("control_directory") = py::none(), py::arg("local_rank") = py::none(),
          py::arg("rank_zero_only") = std::vector<std::string>{});

  cls.def_property_readonly("run_id", [](py::handle self) { return self_of(self).core->run_id(); });
  cls.def_property_readonly("sink", [](py::handle self) { return self_of(self).sink_description; },
                            "The destination as a URI list (unix:///...,file:///... for the default chain; memory://).");
  cls.def_property_readonly("current_stage", [](py::handle self) { return self_of(self).current_stage; },
                            "The new_stage of the last stage_change this emitter sent (None before any).");
  cls.def_property_readonly("closed", [](py::handle self) { return self_of(self).closed; });
}

// The emit calls other than the per-step ones (fast_emit.cpp). The keyword names are the wire
// names of the fields they fill (tests/python/test_stub.py checks them against the schema).
void bind_emit_calls(py::class_<py_emitter>& cls) {
  cls.def("emit_stage_change", &emit_stage_change, py::arg("previous_stage"), py::arg("new_stage"),
          "Reports a move from previous_stage (None at the start) to new_stage.");
  cls.def("emit_target_complete", &emit_target_complete, py::arg("target"), py::arg("status"),
          py::arg("models_trained") = 0, py::arg("best_auc") = py::none(), py::arg("metrics") = py::none(),
          "Reports that a target finished: status is success, failed or skipped.");
  cls.def("emit_run_complete", &emit_run_complete, py::arg("status") = "success", py::arg("duration_s") = py::none(),
          "Reports the end of the run (success, failed, cancelled, killed); duration_s defaults to the "
          "emitter's age.");
  cls.def("emit_error", &emit_error, py::arg("error_message"), py::arg("error_type") = "unknown",
          py::arg("recoverable") = true, "Reports an error; recoverable says whether training goes on.");
  cls.def("log", &emit_log, py::arg("level"), py::arg("message"),
          "Emits a log event (level: debug, info, warning, error).");
  cls.def("emit_log", &emit_log, py::arg("level"), py::arg("message"), "Same as log().");
  cls.def(
      "emit_heartbeat", [](py::handle self) { return self_of(self).core->emit_heartbeat(); },
      "Says the run is alive.");
  cls.def("_emit_run_start", &emit_run_start, py::arg("config_json"), py::arg("name"), py::arg("tags"),
          py::arg("total_steps"), py::arg("total_epochs"), py::arg("process_start_time") = py::none(),
          py::arg("heartbeat_interval_s") = py::none(), py::arg("stale_after_heartbeats") = py::none());
}

// flush, close, stats and the memory sink's lines.
void bind_delivery(py::class_<py_emitter>& cls) {
  cls.def(
      "flush",
      [](py::handle self, double timeout) {
        py_emitter& e = self_of(self);
        const auto deadline = seconds_arg(timeout, "timeout");
        py::gil_scoped_release release;
        return e.core->flush(deadline);
      },
      py::arg("timeout") = 1.0,
      "Waits (without the GIL) until every event emitted so far reached the sink, or the timeout passed.");

  cls.def(
      "close",
      [](py::handle self, std::optional<double> timeout) {
        py_emitter& e = self_of(self);
        const auto deadline = timeout ? seconds_arg(*timeout, "timeout") : std::chrono::milliseconds(-1);
        delivery_report report;
        {
          py::gil_scoped_release release;
          report = deadline.count() < 0 ? e.core->close() : e.core->close(deadline);
        }
        e.closed = true;
        return report;
      },
      py::arg("timeout") = py::none(),
      "Delivers what is queued and closes the sink within the timeout (default: close_timeout), without "
      "the GIL. Later emits are counted as dropped.");

  cls.def("stats", [](py::handle self) { return stats_dict(self_of(self).core->stats()); },
          "Counters since creation: emitted (your emit calls), generated (the library's own dropped reports and heartbeats), written, dropped (and its parts), truncated. After close(): emitted + generated == written + dropped.");

  cls.def(
      "_memory_lines",
      [](py::handle self) {
        py_emitter& e = self_of(self);
        if (!e.memory) throw py::value_error("foxml_events: this emitter does not write to memory://");
        return e.memory->lines();
      },
      "The lines a memory:// sink received (tests).");
}

// The emitter the module-level functions use.
void bind_global(py::module_& m) {
  Py_INCREF(global_slot);  // the slot owns a reference, None included
  m.def(
      "_set_global",
      [](py::object emitter) {
        if (!emitter.is_none()) (void)self_of(emitter);
        PyObject* old = global_slot;
        global_slot = emitter.release().ptr();
        Py_DECREF(old);
      },
      py::arg("emitter"), "Sets the emitter the module-level functions use (None: they do nothing).");
  m.def(
      "_get_global", []() { return py::reinterpret_borrow<py::object>(global_slot); },
      "The emitter the module-level functions use, or None.");
}

}  // namespace

void bind_emitter(py::module_& m) {
  bind_delivery_report(m);
  py::class_<py_emitter> cls(m, "EmitterBase", R"doc(
The compiled emitter; use foxml_events.TrainingEventEmitter, which adds the context managers.

Emit calls stamp seq, time, pid, host and rank, push to a bounded queue and return at once (True when
queued, False when counted as dropped); a background thread writes JSON lines to the sink.)doc");
  bind_construction(cls);
  bind_emit_calls(cls);
  bind_delivery(cls);
  add_fast_emit_calls(m, cls);
  bind_control(cls);
  bind_global(m);
}

}  // namespace foxml::events::python
