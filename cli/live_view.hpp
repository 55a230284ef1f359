#pragma once
// The --live screen: every run with a progress bar, stage, ETA, latest metrics and targets,
// redrawn in place (the seed's Rust training view, in the terminal).

#include <string>

#include "foxml/events/reader/event_stream.hpp"
#include "foxml/events/reader/run_tracker.hpp"

namespace events_tail {

class live_view {
 public:
  // Switches to the alternate screen and hides the cursor.
  live_view(std::string origin, bool color, bool unicode);
  // Restores the screen and the cursor.
  ~live_view();
  live_view(const live_view&) = delete;
  live_view& operator=(const live_view&) = delete;

  // Redraws the whole screen from the tracker's state.
  void render(const foxml::events::reader::run_tracker& tracker, const foxml::events::reader::event_stream& stream,
              std::int64_t now_us);

  // Returns the frame as text (no escape codes for cursor movement); used by render().
  std::string frame(const foxml::events::reader::run_tracker& tracker, const foxml::events::reader::event_stream& stream,
                    std::int64_t now_us, int width) const;

 private:
  std::string origin_;
  bool color_;
  bool unicode_;
};

}  // namespace events_tail
