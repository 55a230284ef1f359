#pragma once
// The one event -> dict conversion (wire field names), shared by decode_line, FileReader and the
// live reader.

#include <pybind11/pybind11.h>

#include "foxml/events/event.hpp"

namespace foxml::events::python {

/// Returns the event as a dict with the wire field names; NaN metrics come back as float('nan').
pybind11::dict event_to_dict(const event& e);

}  // namespace foxml::events::python
