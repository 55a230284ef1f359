#include "fast_args.hpp"

namespace foxml::events::python {

bool intern_parameters(parameter* params, int count) {
  for (int i = 0; i < count; ++i) {
    if (params[i].interned != nullptr) continue;
    params[i].interned = PyUnicode_InternFromString(params[i].name);
    if (params[i].interned == nullptr) return false;
  }
  return true;
}

bool parse_fast_args(const char* function, const parameter* params, int count, int required, PyObject* const* args,
                     Py_ssize_t nargs, PyObject* kwnames, PyObject** out) {
  if (nargs > count) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most %d positional arguments (%zd given)", function, count, nargs);
    return false;
  }
  for (int i = 0; i < count; ++i) out[i] = i < nargs ? args[i] : nullptr;
  if (kwnames != nullptr) {
    const Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < nkw; ++k) {
      PyObject* key = PyTuple_GET_ITEM(kwnames, k);
      int found = -1;
      for (int i = 0; i < count; ++i) {
        if (key == params[i].interned) {
          found = i;
          break;
        }
      }
      if (found < 0) {
        for (int i = 0; i < count; ++i) {
          if (PyUnicode_Compare(key, params[i].interned) == 0) {
            found = i;
            break;
          }
        }
        if (PyErr_Occurred()) return false;
      }
      if (found < 0) {
        PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", function, key);
        return false;
      }
      if (out[found] != nullptr) {
        PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", function, params[found].name);
        return false;
      }
      out[found] = args[nargs + k];
    }
  }
  for (int i = 0; i < required; ++i) {
    if (out[i] == nullptr) {
      PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", function, params[i].name);
      return false;
    }
  }
  return true;
}

}  // namespace foxml::events::python
