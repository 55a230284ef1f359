#include "values.hpp"

#include <string>

namespace foxml::events::python {
namespace {

const char* const number_expected = "a number (int, float, numpy scalar or one-element tensor)";
const char* const integer_expected = "an integer (int, numpy integer or one-element integer tensor)";

// A torch.Tensor, when torch was imported by the application (never imported here): its value
// through .item() (which, unlike __float__, does not warn for tensors that require grad).
// Returns 1 with a new reference in `item`, 0 when `value` is not a tensor, -1 with an exception.
int tensor_item(PyObject* value, PyObject*& item) {
  static PyObject* tensor_type = nullptr;  // leaked on purpose; torch is never unloaded
  if (tensor_type == nullptr) {
    PyObject* modules = PyImport_GetModuleDict();
    PyObject* module = PyDict_GetItemString(modules, "torch");  // borrowed
    if (module == nullptr) return 0;
    tensor_type = PyObject_GetAttrString(module, "Tensor");
    if (tensor_type == nullptr) {
      PyErr_Clear();
      return 0;
    }
  }
  const int is_tensor = PyObject_IsInstance(value, tensor_type);
  if (is_tensor <= 0) return is_tensor;
  // Interned names and no-argument calls: this runs every training step (PyObject_CallMethod
  // would build the name and an empty argument tuple each time).
  static PyObject* const numel_name = PyUnicode_InternFromString("numel");
  static PyObject* const item_name = PyUnicode_InternFromString("item");
  if (numel_name == nullptr || item_name == nullptr) return -1;
  // .item() alone: it refuses a tensor of several elements itself, and a numel() call first cost
  // as much again (about 0.5 us a tensor, measured in the digits loop).
  item = PyObject_CallMethodNoArgs(value, item_name);
  if (item != nullptr) return 1;
  // Refused: say why in our words when it is the element count, else keep torch's error.
  PyObject *type = nullptr, *error = nullptr, *traceback = nullptr;
  PyErr_Fetch(&type, &error, &traceback);
  PyObject* numel = PyObject_CallMethodNoArgs(value, numel_name);
  const long long count = numel != nullptr ? PyLong_AsLongLong(numel) : -1;
  Py_XDECREF(numel);
  PyErr_Clear();
  if (count >= 0 && count != 1) {
    Py_XDECREF(type);
    Py_XDECREF(error);
    Py_XDECREF(traceback);
    PyErr_Format(PyExc_ValueError, "a tensor with %lld elements is not a scalar", count);
  } else {
    PyErr_Restore(type, error, traceback);
  }
  return -1;
}

}  // namespace

bool raise_type_error(const char* field, const char* expected, PyObject* value) {
  PyObject *cause_type = nullptr, *cause = nullptr, *cause_tb = nullptr;
  PyErr_Fetch(&cause_type, &cause, &cause_tb);
  std::string message = std::string("foxml_events: ") + field + " must be " + expected + ", got " +
                        Py_TYPE(value)->tp_name;
  if (cause != nullptr) {
    PyErr_NormalizeException(&cause_type, &cause, &cause_tb);
    if (PyObject* text = PyObject_Str(cause)) {
      if (const char* utf8 = PyUnicode_AsUTF8(text)) message += std::string(" (") + utf8 + ")";
      Py_DECREF(text);
    }
    PyErr_Clear();
  }
  PyErr_SetString(PyExc_TypeError, message.c_str());
  if (cause != nullptr) {
    PyObject *type = nullptr, *error = nullptr, *tb = nullptr;
    PyErr_Fetch(&type, &error, &tb);
    PyErr_NormalizeException(&type, &error, &tb);
    if (cause_tb != nullptr) PyException_SetTraceback(cause, cause_tb);
    PyException_SetCause(error, cause);  // steals `cause`
    Py_INCREF(cause);
    PyException_SetContext(error, cause);  // steals the extra reference
    PyErr_Restore(type, error, tb);
  }
  Py_XDECREF(cause_type);
  Py_XDECREF(cause_tb);
  return false;
}

bool to_double(PyObject* value, const char* field, double& out) {
  if (PyFloat_CheckExact(value)) {
    out = PyFloat_AS_DOUBLE(value);
    return true;
  }
  if (PyLong_CheckExact(value)) {
    out = PyLong_AsDouble(value);
    if (out == -1.0 && PyErr_Occurred()) return raise_type_error(field, number_expected, value);
    return true;
  }
  if (PyFloat_Check(value)) {  // numpy.float64 is a float subclass
    out = PyFloat_AsDouble(value);
    return !(out == -1.0 && PyErr_Occurred()) || raise_type_error(field, number_expected, value);
  }
  PyObject* item = nullptr;
  const int tensor = tensor_item(value, item);
  if (tensor < 0) return raise_type_error(field, number_expected, value);
  if (tensor > 0) {
    const bool converted = PyLong_Check(item) || PyFloat_Check(item);
    out = converted ? PyFloat_AsDouble(item) : 0.0;
    Py_DECREF(item);
    if (!converted || (out == -1.0 && PyErr_Occurred())) return raise_type_error(field, number_expected, value);
    return true;
  }
  // No text, bytes or None: they have no __float__, but a subclass could add one by accident.
  if (value == Py_None || PyUnicode_Check(value) || PyBytes_Check(value) || PyByteArray_Check(value)) {
    return raise_type_error(field, number_expected, value);
  }
  if (Py_TYPE(value)->tp_as_number == nullptr ||
      (Py_TYPE(value)->tp_as_number->nb_float == nullptr && Py_TYPE(value)->tp_as_number->nb_index == nullptr)) {
    return raise_type_error(field, number_expected, value);
  }
  // numpy scalars and one-element tensors implement __float__; this calls it without a Python frame.
  out = PyFloat_AsDouble(value);
  if (out == -1.0 && PyErr_Occurred()) return raise_type_error(field, number_expected, value);
  return true;
}

bool to_opt_double(PyObject* value, const char* field, std::optional<double>& out) {
  if (value == nullptr || value == Py_None) {
    out.reset();
    return true;
  }
  double d = 0;
  if (!to_double(value, field, d)) return false;
  out = d;
  return true;
}

bool to_int64(PyObject* value, const char* field, std::int64_t& out) {
  PyObject* index = nullptr;
  if (PyLong_Check(value)) {
    index = value;
    Py_INCREF(index);
  } else if (PyFloat_Check(value) || value == Py_None || PyUnicode_Check(value)) {
    return raise_type_error(field, integer_expected, value);
  } else if (const int tensor = tensor_item(value, index); tensor != 0) {
    if (tensor < 0) return raise_type_error(field, integer_expected, value);
    if (!PyLong_Check(index)) {  // a float tensor where an integer belongs
      Py_DECREF(index);
      return raise_type_error(field, integer_expected, value);
    }
  } else {
    index = PyNumber_Index(value);  // numpy integers
    if (index == nullptr) return raise_type_error(field, integer_expected, value);
  }
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(index, &overflow);
  Py_DECREF(index);
  if (overflow != 0) {
    PyErr_Format(PyExc_OverflowError, "foxml_events: %s does not fit in 64 bits", field);
    return false;
  }
  if (v == -1 && PyErr_Occurred()) return raise_type_error(field, integer_expected, value);
  out = static_cast<std::int64_t>(v);
  return true;
}

bool to_opt_int64(PyObject* value, const char* field, std::optional<std::int64_t>& out) {
  if (value == nullptr || value == Py_None) {
    out.reset();
    return true;
  }
  std::int64_t v = 0;
  if (!to_int64(value, field, v)) return false;
  out = v;
  return true;
}

bool to_string(PyObject* value, const char* field, std::string_view& out, held_objects& held) {
  if (!PyUnicode_Check(value)) return raise_type_error(field, "a str", value);
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(value, &size);
  if (data == nullptr) {  // lone surrogates: send replacement characters rather than fail
    PyErr_Clear();
    PyObject* bytes = PyUnicode_AsEncodedString(value, "utf-8", "replace");
    if (bytes == nullptr) return raise_type_error(field, "a str", value);
    held.keep(bytes);
    data = PyBytes_AS_STRING(bytes);
    size = PyBytes_GET_SIZE(bytes);
  }
  out = std::string_view(data, static_cast<std::size_t>(size));
  return true;
}

bool to_opt_string(PyObject* value, const char* field, std::optional<std::string_view>& out,
                   held_objects& held) {
  if (value == nullptr || value == Py_None) {
    out.reset();
    return true;
  }
  std::string_view s;
  if (!to_string(value, field, s, held)) return false;
  out = s;
  return true;
}

}  // namespace foxml::events::python
