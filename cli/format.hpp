#pragma once
// How events-tail prints: one readable line per event, and the --stats summary (stream and runs).

#include <cstdio>
#include <string>

#include "foxml/events/reader/event_stream.hpp"
#include "foxml/events/reader/run_tracker.hpp"

namespace events_tail {

// Returns the one-line rendering of `e` (with ANSI colours when `color`), without a newline.
std::string format_event(const foxml::events::event& e, bool color);

// Returns the --stats report: counters, rates over `elapsed_s`, recent malformed lines and gaps.
std::string format_stats(const foxml::events::reader::event_stream& stream, double elapsed_s);

// Returns a line per run: its status (stale, killed...), and for a run of several ranks how many,
// the stale and killed ones and the straggler.
std::string format_runs(const foxml::events::reader::run_tracker& tracker);

// Returns "1:02:03" / "2:03" for a duration in seconds.
std::string format_duration(double seconds);

}  // namespace events_tail
