#pragma once
// The --live screen, redrawn in place (the seed's Rust training view, in the terminal): with
// several runs a run list that scrolls (keys move the selection; by default it follows the newest
// run), and the selected run in detail: progress bar, elapsed time and throughput, stages with
// their durations, a sparkline per metric series (training and validation of a name adjacent),
// targets, errors, a resources line, ranks and the last log lines.

#include <termios.h>

#include <cstddef>
#include <string>

#include "foxml/events/reader/event_stream.hpp"
#include "foxml/events/reader/run_tracker.hpp"

namespace events_tail {

class live_view {
 public:
  // Switches to the alternate screen and hides the cursor; with `keys` (stdin a terminal) reads
  // keys unbuffered and unechoed.
  live_view(std::string origin, bool color, bool unicode, bool keys);
  // Restores the screen, the cursor and the terminal's modes.
  ~live_view();
  live_view(const live_view&) = delete;
  live_view& operator=(const live_view&) = delete;

  // Redraws the whole screen from the tracker's state.
  void render(const foxml::events::reader::run_tracker& tracker, const foxml::events::reader::event_stream& stream,
              std::int64_t now_us);

  // Returns the frame as text, `height` lines at most, none wider than `width` columns (no escape
  // codes for cursor movement); used by render(). Scrolls the run list to the selected run.
  std::string frame(const foxml::events::reader::run_tracker& tracker, const foxml::events::reader::event_stream& stream,
                    std::int64_t now_us, int width, int height);

  // Takes the keys typed since the last call (never waits): up/down/k/j, PgUp/PgDn, Home/g move the
  // selection (and stop following the newest run), End/G/f follow the newest again, q quits.
  // Returns whether a key changed anything, and sets `quit` on q.
  bool read_keys(const foxml::events::reader::run_tracker& tracker, bool& quit);

 private:
  enum class key { up, down, page_up, page_down, home, follow, quit };
  void apply(key k, const foxml::events::reader::run_tracker& tracker);
  std::size_t selected_index(const foxml::events::reader::run_tracker& tracker) const;
  std::string run_list(const foxml::events::reader::run_tracker& tracker, std::int64_t now_us, int width, int rows);
  std::string run_detail(const foxml::events::reader::run_state& run, std::int64_t now_us, int width) const;

  std::string origin_;
  bool color_;
  bool unicode_;
  bool keys_;
  termios saved_{};
  bool follow_ = true;      // the selection is the newest run
  std::string selected_;    // the run selected by keys, when not following
  std::size_t list_top_ = 0;  // the first run the list shows
  int list_rows_ = 1;        // rows the list showed last: what a page is
};

}  // namespace events_tail
