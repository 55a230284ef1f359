#pragma once
/// The tee: every event to every sink (the usual pairing: a live socket and a file record).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "foxml/events/composite_sink.hpp"

namespace foxml::events {

/// Settings of a tee_sink.
struct tee_options {
  /// Bytes of lines each branch may hold back while it lags behind the others (its backlog).
  std::size_t backlog_bytes = 16u << 20;
  /// A branch whose backlog makes no progress this long loses its backlog (counted).
  std::chrono::milliseconds retry_timeout{1000};
};

/// Writes every batch to every sink, and each sink gets every line or a counted drop.
///
/// write() accepts the lines that at least one branch took (so the emitter retries what every
/// branch refused, under its own sink_retry_timeout). A branch that took fewer keeps the rest in
/// its own bounded backlog and gets them, in order and before any newer line, on later writes and
/// polls. A branch loses lines only when its backlog is over `backlog_bytes`, or has made no
/// progress for `retry_timeout`, or at close; lines a branch hands back through reclaim() (a broken
/// socket) go back to the head of its backlog. Lost lines are counted per branch (dropped()) and
/// handed to the emitter through reclaim(), once per line even when several branches lost it:
/// the emitter counts them in dropped_sink (a line counts as written only when no branch lost it,
/// so emitted + generated == written + dropped() still holds) and reports them in its next
/// `dropped` event. That report goes to every branch like every line: the lagging branch gets it
/// after its backlog, so its reader learns which seqs it will never see; the other branches see a
/// report for seqs they do hold (the report says the lines are missing somewhere, not everywhere).
/// To re-route a branch's losses instead, make that branch a fallback_sink.
class tee_sink final : public composite_sink {
 public:
  /// Throws std::invalid_argument when `branches` is empty or holds a null sink.
  explicit tee_sink(std::vector<std::unique_ptr<sink>> branches, tee_options options = {});

  /// Lines branch `i` lost (over its backlog bound, stalled past retry_timeout, or at close).
  std::uint64_t dropped(std::size_t i) const noexcept { return branches_[i].lost; }
  /// Lines branch `i` holds back, waiting for it to take them.
  std::size_t backlog(std::size_t i) const noexcept { return branches_[i].backlog.size(); }

  std::size_t write(const line_batch& batch) noexcept override;
  /// Gives each backlog a last try, then flushes every branch.
  void flush() noexcept override;
  void close() noexcept override;
  std::size_t reclaim(line_batch& out) noexcept override;
  /// Polls every branch, then retries the backlogs.
  void poll(std::chrono::steady_clock::time_point now) noexcept override;
  /// Lines held in backlogs (the emitter's flush and close wait for them, bounded by retry_timeout).
  std::size_t pending() const noexcept override;

 private:
  struct branch {
    line_batch backlog;  // lines the others took and this one has not yet
    std::chrono::steady_clock::time_point stalled_since{};
    bool stalled = false;
    std::uint64_t lost = 0;
  };
  struct pending_line {
    std::uint32_t holders = 0;  // backlogs that hold the line
    bool lost = false;          // some branch already lost it (counted once)
  };

  // Retries branch i's backlog; returns true when it is empty afterwards.
  bool drain(std::size_t i, std::chrono::steady_clock::time_point now) noexcept;
  // Adds lines [first, last) of `batch` to a branch's backlog, losing what is over the bound.
  void hold(branch& b, const line_batch& batch, std::size_t first, std::size_t last,
            std::chrono::steady_clock::time_point now) noexcept;
  // Counts a line lost to `b`; hands it to reclaim() unless another branch lost it already.
  void lose(branch& b, std::string_view line, std::uint64_t seq) noexcept;
  void lose_backlog(branch& b) noexcept;
  void release(std::uint64_t seq) noexcept;  // a backlog let go of a line (sent or lost)
  // Takes back what branch i lost after taking it (a broken connection) into its backlog.
  void take_back(std::size_t i) noexcept;
  std::unique_ptr<sink> remake(std::vector<std::unique_ptr<sink>> branches) const override;

  std::vector<branch> branches_;
  tee_options options_;
  std::unordered_map<std::uint64_t, pending_line> pending_;  // lines in any backlog, by seq
  line_batch lost_;       // lines lost by some branch, waiting for reclaim()
  std::size_t lost_untold_ = 0;  // lines lost whose text memory ran out to keep (counted all the same)
  line_batch returned_;   // scratch: lines a branch reclaimed
  line_batch merged_;     // scratch: a backlog with returned lines in front
  std::vector<std::size_t> took_;  // scratch: lines each branch took in this write
};

}  // namespace foxml::events
