#pragma once
// The one event -> dict conversion (wire field names), shared by decode_line and the live reader.

#include <pybind11/pybind11.h>

#include <string>
#include <string_view>

#include "foxml/events/event.hpp"

namespace foxml::events::python {

/// Returns the event as a dict with the wire field names; NaN metrics come back as float('nan').
pybind11::dict event_to_dict(const event& e);

/// Returns `text` with every byte that is not part of valid UTF-8 written as `\xNN`: error
/// messages quote the bad line, and Python text must be valid UTF-8.
std::string escape_invalid_utf8(std::string_view text);

}  // namespace foxml::events::python
