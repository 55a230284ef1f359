#pragma once
/// Several sources read as one: a followed file and a socket an emitter also writes to, or many
/// sockets, behind one live_reader (one event stream, so one dedup across them; one tracker; one
/// ring). Each child is polled by a thread of its own; their lines meet in a bounded queue. A full
/// queue stops the children's threads (backpressure on the sources, as a slow single reader would
/// apply it), so nothing is lost here. Each line keeps its child's origin for malformed reports.

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "foxml/events/reader/source.hpp"

namespace foxml::events::reader {

struct merged_source_options {
  /// Lines queued from all children together before their threads wait for poll() to take them.
  std::size_t max_lines = 4096;
  /// Bytes queued likewise (one line over it still passes when the queue is empty).
  std::size_t max_bytes = 16 * 1024 * 1024;
};

class merged_source final : public source {
 public:
  /// Takes the children (at least one) and starts their threads. Throws std::invalid_argument
  /// for none, std::system_error when an eventfd or thread cannot be made.
  explicit merged_source(std::vector<std::unique_ptr<source>> children, merged_source_options options = {});
  /// Stops and joins the children's threads, then closes the children.
  ~merged_source() override;
  merged_source(const merged_source&) = delete;
  merged_source& operator=(const merged_source&) = delete;

  /// Hands out queued lines in arrival order. Returns false once every child has finished and the
  /// queue is empty; a child that threw has finished (its error is in stats_json()).
  bool poll(std::chrono::milliseconds timeout, const line_handler& on_line) override;
  void wake() noexcept override;
  /// `merged:` and the children's descriptions joined by `,`.
  std::string describe() const override;
  /// `{"queued":..,"waits":..,"children":[{"source":..,"stats":{..},"finished":..,"error":..}]}`;
  /// each child's own stats as of its latest poll.
  std::string stats_json() const override;

  std::size_t size() const noexcept { return children_.size(); }
  /// The child at `index` (describe() and immutable accessors such as a socket's path() only:
  /// its own thread polls it).
  const source& child(std::size_t index) const { return *children_.at(index)->input; }

 private:
  struct queued_line {
    std::string text;
    std::size_t child = 0;
    line_position position;  // origin points into the child's description
    bool oversized = false;
  };
  struct child_state {
    std::unique_ptr<source> input;
    std::string description;
    std::thread thread;
    std::string stats = "{}";
    bool finished = false;
    std::string error;
  };

  void run_child(std::size_t index) noexcept;

  merged_source_options options_;
  std::vector<std::unique_ptr<child_state>> children_;
  int wake_fd_ = -1;  // eventfd: children's new lines and wake() make poll() return
  mutable std::mutex mutex_;
  std::condition_variable room_;  // children wait here while the queue is full
  std::deque<queued_line> queue_;
  std::size_t queued_bytes_ = 0;
  std::size_t running_ = 0;
  std::uint64_t waits_ = 0;  // times a child waited for room (backpressure applied)
  bool stopping_ = false;
};

}  // namespace foxml::events::reader
