#pragma once
// The live reader's state as Python objects: run dicts (from the reader library's one run-state
// serialiser), counters, malformed lines, gaps and the training status.

#include <pybind11/pybind11.h>

#include <cstdint>
#include <vector>

#include "foxml/events/reader/event_stream.hpp"
#include "foxml/events/reader/run_tracker.hpp"

namespace foxml::events::python {

/// Returns the run as a dict: the JSON of reader::to_json(), with metric_history points as
/// (step, value) tuples (the Python API's shape).
pybind11::dict run_dict(const reader::run_state& run, std::int64_t now_us);
/// Returns a JSON object text as a dict.
pybind11::dict json_dict(const std::string& text);
pybind11::list malformed_list(const std::vector<reader::malformed_line>& lines);
pybind11::list gap_list(const std::vector<reader::seq_gap>& gaps);
/// The training status, with the recent events parsed back into dicts.
pybind11::dict status_dict(const reader::training_status_snapshot& status);

}  // namespace foxml::events::python
