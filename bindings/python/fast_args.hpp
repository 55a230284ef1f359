#pragma once
// Argument parsing for METH_FASTCALL | METH_KEYWORDS functions: positional and keyword arguments
// land in one array of borrowed references, in parameter order, with no tuple or dict built.

#include <Python.h>

namespace foxml::events::python {

struct parameter {
  const char* name;
  PyObject* interned = nullptr;  // filled by intern_parameters()
};

/// Interns the parameter names once (keyword names at call sites are interned too, so the usual
/// match is a pointer comparison). Returns false with an exception set on failure.
bool intern_parameters(parameter* params, int count);

/// Puts argument i in out[i] (nullptr when not given). Raises TypeError as CPython does for too many
/// positional arguments, an unknown keyword, a duplicate or a missing required argument.
bool parse_fast_args(const char* function, const parameter* params, int count, int required, PyObject* const* args,
                     Py_ssize_t nargs, PyObject* kwnames, PyObject** out);

}  // namespace foxml::events::python
