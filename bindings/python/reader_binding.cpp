// The reader side of foxml_events._core: decode_line (the core codec) to Python dicts, and a file
// reader that iterates a JSONL file, optionally following it as it grows. The live reader over the
// C++ reader library (sources, event stream, ring buffer, run tracker) is in reader_live.cpp.

#include <fcntl.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <string>
#include <system_error>
#include <thread>

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
      gd["util_pct"] = g.util_pct;
      gd["mem_used_bytes"] = g.mem_used_bytes;
      gd["mem_total_bytes"] = g.mem_total_bytes;
      if (g.temperature_c) gd["temperature_c"] = *g.temperature_c;
      gpus.append(gd);
    }
    d["gpus"] = gpus;
  }
  return d;
}

py::dict decode_to_dict(std::string_view line) {
  decode_result result = decode_line(line);
  if (!result) throw py::value_error("foxml_events: cannot decode line: " + result.error);
  return to_dict(*result.value);
}

// Iterates the events of a JSONL file. With follow=True it waits at the end of the file for more
// (and for the file to appear), until idle_timeout passes without a new line or stop() is called.
class file_reader {
 public:
  file_reader(std::string path, bool follow, double poll_interval, std::optional<double> idle_timeout,
              std::string errors)
      : path_(std::move(path)), follow_(follow), idle_timeout_(idle_timeout), skip_errors_(errors == "skip") {
    if (errors != "skip" && errors != "raise") throw py::value_error("foxml_events: errors must be 'raise' or 'skip'");
    if (!(poll_interval > 0) || poll_interval > 60) throw py::value_error("foxml_events: poll_interval must be in (0, 60]");
    poll_ = std::chrono::duration<double>(poll_interval);
    if (!follow_) open_or_throw();
  }
  file_reader(const file_reader&) = delete;
  file_reader& operator=(const file_reader&) = delete;
  ~file_reader() { close_fd(); }

  py::dict next() {
    auto last_line = std::chrono::steady_clock::now();
    for (;;) {
      if (stopped_) throw py::stop_iteration();
      std::string_view line;
      if (take_line(line)) {
        last_line = std::chrono::steady_clock::now();
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        decode_result result = decode_line(line);
        if (result) return to_dict(*result.value);
        if (skip_errors_) {
          ++skipped_;
          continue;
        }
        throw py::value_error("foxml_events: " + path_ + ": line " + std::to_string(line_number_) + ": " + result.error);
      }
      // No complete line buffered: read more, without the GIL.
      std::size_t got = 0;
      {
        py::gil_scoped_release release;
        got = fill();
      }
      if (got > 0) continue;
      if (!follow_) {
        if (!buffer_.empty() && start_ < buffer_.size()) {  // a last line without '\n'
          buffer_.push_back('\n');
          continue;
        }
        throw py::stop_iteration();
      }
      if (idle_timeout_ &&
          std::chrono::duration<double>(std::chrono::steady_clock::now() - last_line).count() >= *idle_timeout_) {
        throw py::stop_iteration();
      }
      {
        py::gil_scoped_release release;
        std::this_thread::sleep_for(poll_);
      }
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();  // Ctrl-C while following
    }
  }

  void stop() { stopped_ = true; }
  std::size_t skipped() const { return skipped_; }
  const std::string& path() const { return path_; }

 private:
  void open_or_throw() {
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      const int err = errno;
      PyErr_SetFromErrnoWithFilename(err == ENOENT ? PyExc_FileNotFoundError : PyExc_OSError, path_.c_str());
      throw py::error_already_set();
    }
  }

  void close_fd() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Runs without the GIL. Returns the bytes read (0 at the end of the file for now).
  std::size_t fill() {
    if (fd_ < 0) {
      fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd_ < 0) return 0;  // following a file that does not exist yet
    }
    if (follow_) {  // the file was truncated or replaced: start again at its beginning
      struct stat st{};
      if (::fstat(fd_, &st) == 0 && static_cast<std::uint64_t>(st.st_size) < offset_) {
        ::lseek(fd_, 0, SEEK_SET);
        offset_ = 0;
        buffer_.clear();
        start_ = 0;
      }
    }
    if (start_ > 0 && start_ >= buffer_.size() / 2) {
      buffer_.erase(0, start_);
      start_ = 0;
    }
    char chunk[1 << 16];
    for (;;) {
      const ssize_t n = ::read(fd_, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return 0;
      buffer_.append(chunk, static_cast<std::size_t>(n));
      offset_ += static_cast<std::uint64_t>(n);
      return static_cast<std::size_t>(n);
    }
  }

  bool take_line(std::string_view& line) {
    const std::size_t end = buffer_.find('\n', start_);
    if (end == std::string::npos) return false;
    line = std::string_view(buffer_).substr(start_, end - start_);
    start_ = end + 1;
    ++line_number_;
    return true;
  }

  std::string path_;
  bool follow_;
  std::optional<double> idle_timeout_;
  bool skip_errors_;
  std::chrono::duration<double> poll_{0.1};
  int fd_ = -1;
  std::string buffer_;
  std::size_t start_ = 0;
  std::uint64_t offset_ = 0;
  std::uint64_t line_number_ = 0;
  std::size_t skipped_ = 0;
  bool stopped_ = false;
};

}  // namespace

py::dict event_to_dict(const event& e) { return to_dict(e); }

void bind_reader(py::module_& m) {
  m.def(
      "decode_line", [](py::handle line) {
        if (PyBytes_Check(line.ptr())) {
          return decode_to_dict(std::string_view(PyBytes_AS_STRING(line.ptr()), PyBytes_GET_SIZE(line.ptr())));
        }
        if (!PyUnicode_Check(line.ptr())) throw py::type_error("foxml_events: decode_line takes str or bytes");
        Py_ssize_t size = 0;
        const char* data = PyUnicode_AsUTF8AndSize(line.ptr(), &size);
        if (data == nullptr) throw py::error_already_set();
        return decode_to_dict(std::string_view(data, static_cast<std::size_t>(size)));
      },
      py::arg("line"),
      "Decodes one JSON line into a dict (wire field names; NaN metrics come back as float('nan')). "
      "Raises ValueError for a line that is not a valid event.");

  py::class_<file_reader>(m, "FileReader", "Iterates the events of a JSONL file (see foxml_events.read_events).")
      .def(py::init<std::string, bool, double, std::optional<double>, std::string>(), py::arg("path"),
           py::arg("follow") = false, py::arg("poll_interval") = 0.1, py::arg("idle_timeout") = py::none(),
           py::arg("errors") = "raise")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", &file_reader::next)
      .def("stop", &file_reader::stop, "Ends the iteration at the next call to __next__.")
      .def_property_readonly("skipped", &file_reader::skipped, "Lines skipped as undecodable (errors='skip').")
      .def_property_readonly("path", &file_reader::path);
}

}  // namespace foxml::events::python
