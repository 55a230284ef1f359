#pragma once
// Converts Python arguments into the values emit calls take, without intermediate Python objects on
// the common path. Every function returns false with a Python exception set (a TypeError naming the
// field) when the value does not fit.

#include <Python.h>

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace foxml::events::python {

/// Keeps alive the few Python objects a conversion had to create (a re-encoded string); most calls
/// create none, so nothing is allocated.
class held_objects {
 public:
  held_objects() = default;
  held_objects(const held_objects&) = delete;
  held_objects& operator=(const held_objects&) = delete;
  ~held_objects() {
    for (PyObject* o : objects_) Py_DECREF(o);
  }
  void keep(PyObject* o) { objects_.push_back(o); }

 private:
  std::vector<PyObject*> objects_;
};

/// Reads a number: int, float, bool, numpy scalar, 0-d array, or a one-element torch tensor (through
/// its own __float__, so torch is never imported here).
bool to_double(PyObject* value, const char* field, double& out);
/// Like to_double, for `None` too (-> empty).
bool to_opt_double(PyObject* value, const char* field, std::optional<double>& out);
/// Reads an integer: int, bool, numpy integer, or an integer tensor with one element (__index__).
/// Floats are refused (a step of 2.5 is a bug in the caller).
bool to_int64(PyObject* value, const char* field, std::int64_t& out);
bool to_opt_int64(PyObject* value, const char* field, std::optional<std::int64_t>& out);
/// Reads a str as UTF-8 without copying; a str with lone surrogates is re-encoded with
/// replacement characters into an object kept in `held`.
bool to_string(PyObject* value, const char* field, std::string_view& out, held_objects& held);
bool to_opt_string(PyObject* value, const char* field, std::optional<std::string_view>& out, held_objects& held);

/// Raises TypeError "foxml_events: <field> must be <expected>, got <type>", chained to any
/// exception already set. Returns false so callers can `return raise_type_error(...)`.
bool raise_type_error(const char* field, const char* expected, PyObject* value);

}  // namespace foxml::events::python
