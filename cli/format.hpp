#pragma once
// How events-tail prints: one readable line per event, and the --stats summary (stream and runs).

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

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

// Returns "512 B", "3.4 KiB", "1.2 MiB", "7.9 GiB".
std::string format_bytes(double bytes);

// Returns a sparkline of `values` (scaled between their minimum and maximum), one character per
// value: block elements with `unicode`, else ASCII levels ("_.-=+*#"). Non-finite values are blanks.
std::string sparkline(const std::vector<double>& values, bool unicode);

// Returns `text` with control characters (newlines, tabs, escapes: a hostile line could move the
// cursor or restyle the terminal) shown as spaces, for text from the wire on a full-screen view.
std::string printable(std::string_view text);

// Returns the columns `text` takes on a terminal: ANSI escape sequences take none, a CJK or emoji
// character two, a combining mark none, any other character one.
std::size_t display_width(std::string_view text);

// Returns `text` cut to at most `width` columns (display_width), escape sequences kept whole; a
// wide character that would cross the edge is left out.
std::string fit_width(std::string_view text, std::size_t width);

}  // namespace events_tail
