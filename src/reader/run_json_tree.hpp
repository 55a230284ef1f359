#pragma once
// The run state as a JSON tree, for in-tree front ends that convert it further without a text
// round trip (the Python binding builds its dicts from it). Not installed: the public API is
// to_json() in run_json.hpp, which keeps nlohmann-json out of the installed headers.

#include <nlohmann/json.hpp>

#include "foxml/events/reader/run_json.hpp"

namespace foxml::events::reader {

/// What to_json() writes out, before it is written: insertion order kept (the documented order).
/// Without `with_history`, `metric_history` is an empty object, for a caller that builds its own
/// (it is most of a run's size; Python gives its points as tuples).
nlohmann::ordered_json run_json_tree(const run_state& run, std::int64_t now_us, bool with_history);

/// The tree of to_json(run, now_us, options).
nlohmann::ordered_json run_json_tree(const run_state& run, std::int64_t now_us, const run_json_options& options);

}  // namespace foxml::events::reader
