#pragma once
/// Turns raw lines from any source into a clean stream of events: decodes with size and depth
/// caps, counts and skips malformed lines, drops duplicates and reports gaps in seqs.
///
/// What a `dropped` event means: "`count` events of this emitter were dropped; every one of them
/// has a seq in [first_seq, last_seq]; seqs in that range that were not dropped are delivered as
/// usual, possibly later (other producer threads)". The range is the min..max of the dropped seqs,
/// so it can interleave with events that were written. Hence:
/// - a seq is a duplicate only when an event with that seq was really seen, never because a report
///   covers it;
/// - `reported_drops` counts each report by its `count`;
/// - a seq that never arrives (declared missing once the reorder window has passed it, or at
///   `flush_gaps`) inside a report's range is explained by that report while the report has count
///   left; beyond that it is unexplained loss (`gaps`, `missing`);
/// - an event that arrives after its seq was declared missing is delivered (`late`) and gives the
///   explanation back to its report.
/// - memory is bounded: the newest 16384 missing runs of an emitter (262144 over all emitters) and
///   its newest 256 reports are kept one by one; older unexplained runs are summed into at most 64 ranges, which a report that comes
///   later still explains when its range covers one; seqs explained by a report that is no longer
///   kept stay explained. An event whose missing run was forgotten, arriving that late, is counted
///   as a duplicate (it can no longer be told apart from one).
/// No counter ever goes below zero.

#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "foxml/events/codec.hpp"
#include "foxml/events/event.hpp"
#include "foxml/events/reader/defaults.hpp"
#include "foxml/events/reader/source.hpp"

namespace foxml::events::reader {

/// Identifies one emitter: seqs count up per emitter, so dedup and gaps are per key. The same
/// key across sinks (a file and a socket fed by one emitter) means the same event.
struct emitter_key {
  std::string run_id;
  std::string host;
  std::int64_t pid = 0;

  friend bool operator<(const emitter_key& a, const emitter_key& b) {
    return std::tie(a.run_id, a.host, a.pid) < std::tie(b.run_id, b.host, b.pid);
  }
  friend bool operator==(const emitter_key& a, const emitter_key& b) {
    return a.run_id == b.run_id && a.host == b.host && a.pid == b.pid;
  }
};

/// A line that could not be decoded, and where it was.
struct malformed_line {
  std::string origin;
  std::uint64_t line = 0;
  std::uint64_t offset = 0;
  std::string error;
};

/// Seqs of one emitter that never arrived, or a `dropped` report. `reported_drop` for a report
/// of the emitter itself: `count` of the seqs in [first_seq, last_seq] were dropped (the rest of
/// the range may well arrive). Otherwise an unexplained loss of every seq in the range.
struct seq_gap {
  emitter_key key;
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  bool reported_drop = false;
  std::uint64_t count = 0;  ///< seqs dropped (a report) or missing (a loss)

  std::uint64_t size() const noexcept { return last_seq - first_seq + 1; }
};

/// Settings of an event_stream.
struct event_stream_options {
  decode_limits limits;
  /// Seqs may arrive this far out of order (several emitter threads, several sinks) before a
  /// missing one is declared a gap.
  std::uint64_t reorder_window = defaults::reorder_window;
  bool deduplicate = true;
  /// How many malformed lines and gaps are kept for reporting (all are counted).
  std::size_t max_reports = 100;
  /// Emitters (run, host, pid) whose dedup state is kept. Past it the least recently heard one
  /// is forgotten (finished ones, those that sent `run_complete`, first) and counted in
  /// `evicted`; a forgotten emitter that speaks again starts afresh (its old seqs can then no
  /// longer be told apart from duplicates). Each emitter's state is itself bounded by the
  /// reorder window, so the whole stage stays bounded.
  std::size_t max_emitters = 65536;
};

/// Counters of an event_stream.
struct event_stream_stats {
  std::uint64_t lines = 0;
  std::uint64_t bytes = 0;
  std::uint64_t events = 0;          ///< accepted: decoded and not duplicates
  std::uint64_t malformed = 0;
  /// Empty or whitespace-only lines: skipped, neither events nor malformed. A file sink that ends a
  /// dead writer's fragment can add one when it opens while another process is mid-write.
  std::uint64_t blank = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t gaps = 0;            ///< unexplained ranges of missing seqs outstanding
  std::uint64_t missing = 0;         ///< seqs in those ranges
  std::uint64_t reported_drops = 0;  ///< sum of the `count` of every `dropped` report
  std::uint64_t late = 0;            ///< events that arrived after their seq was declared missing
  std::uint64_t emitters = 0;        ///< emitters whose state was started (again after an eviction)
  std::uint64_t evicted = 0;         ///< emitters whose state was forgotten (`max_emitters`)
};

/// One accepted event with the line it came from.
struct stream_event {
  event value;
  std::string line;
};

/// Selects events by type and run; an empty set lets everything through.
struct event_filter {
  std::set<event_type> types;
  std::set<std::string> runs;

  bool matches(const event& e) const { return (types.empty() || types.count(e.type)) && (runs.empty() || runs.count(e.run_id)); }
};

/// The decode, dedup and gap-detection stage between sources and consumers. Not thread-safe:
/// feed it from the thread that polls the sources.
class event_stream {
 public:
  explicit event_stream(event_stream_options options = {});

  /// Decodes one raw line. Returns the event when it is new; empty when the line is malformed
  /// (counted, its position kept) or a duplicate (counted).
  std::optional<stream_event> push(const raw_line& line);

  /// Declares every seq still outstanding inside the reorder window as missing (call at the end
  /// of a finite stream, or when a report is due).
  void flush_gaps();

  const event_stream_stats& stats() const noexcept { return stats_; }
  /// The most recent malformed lines (up to `max_reports`).
  const std::deque<malformed_line>& malformed() const noexcept { return malformed_; }
  /// The most recent gaps (up to `max_reports`); a gap's `reported_drop` may turn true when the
  /// emitter's `dropped` event arrives after the gap was declared.
  const std::deque<seq_gap>& gaps() const noexcept { return gaps_; }
  /// Emitters whose state is held now (at most `max_emitters`).
  std::size_t tracked_emitters() const noexcept { return trackers_.size(); }

 private:
  struct drop_report {
    std::uint64_t first = 0, last = 0;
    std::uint64_t budget = 0;  // its count (at most the size of its range)
    std::uint64_t left = 0;    // of the budget, not yet matched to a missing seq
    std::uint64_t spent_on_forgotten = 0;  // of the budget, on missing runs no longer kept
  };
  // Unexplained missing runs no longer kept one by one, summed up: `seqs` of them lie in
  // [first, last] (the rest of the range arrived); of those, `explained` by a kept report (matched
  // again at every rematch) and `settled` by reports no longer kept. Oldest first; neighbours merge
  // when there are too many.
  struct forgotten_loss {
    std::uint64_t first = 0, last = 0;
    std::uint64_t seqs = 0, runs = 0;
    std::uint64_t explained = 0, settled = 0;
  };
  struct absent {  // a run of seqs declared missing
    std::uint64_t last = 0;
    std::uint64_t report = 0;  // the report id that explains them; 0: unexplained
  };
  struct tracker;
  using tracker_map = std::map<emitter_key, tracker>;
  struct tracker {
    std::uint64_t initial = 0;     // first seq seen: below it lies history from before we joined
    std::set<std::uint64_t> before;  // history seqs seen (bounded by the reorder window)
    std::uint64_t low = 0;    // every seq below is seen or declared missing
    std::set<std::uint64_t> ahead;                 // seen, at or above `low`
    std::map<std::uint64_t, absent> absent_runs;   // declared missing: first -> run
    std::map<std::uint64_t, drop_report> reports;  // id (in arrival order) -> report
    std::vector<forgotten_loss> forgotten;         // ascending, all below `absent_runs`
    std::uint64_t next_report = 1;
    bool finished = false;
    std::list<tracker_map::iterator>::iterator lru;
  };

  tracker& tracker_of(const event& ev);
  void evict_one();
  bool accept_seq(const emitter_key& key, tracker& t, std::uint64_t seq);
  void note_dropped(const emitter_key& key, tracker& t, std::uint64_t first, std::uint64_t last, std::uint64_t count);
  void declare_missing(const emitter_key& key, tracker& t, std::uint64_t first, std::uint64_t last);
  void assign(const emitter_key& key, tracker& t, std::uint64_t first, std::uint64_t last, bool announce);
  void rematch(const emitter_key& key, tracker& t, std::uint64_t forget_report);
  void forget_oldest_absent(tracker& t);
  void forget_beyond_bounds(tracker& t);
  void add_absent(const emitter_key& key, tracker& t, std::uint64_t first, std::uint64_t last, std::uint64_t report);
  void remove_absent(const emitter_key& key, tracker& t, std::map<std::uint64_t, absent>::iterator it,
                     std::uint64_t first, std::uint64_t last);
  void unreport_gap(const emitter_key& key, std::uint64_t first, std::uint64_t last);
  void advance(const emitter_key& key, tracker& t);
  void report_malformed(const raw_line& line, std::string error);
  void report_gap(seq_gap gap);

  event_stream_options options_;
  event_stream_stats stats_;
  tracker_map trackers_;
  std::size_t absent_runs_total_ = 0;  // over all trackers
  // Least recently heard first; finished emitters are evicted before active ones.
  std::list<tracker_map::iterator> active_lru_, finished_lru_;
  std::deque<malformed_line> malformed_;
  std::deque<seq_gap> gaps_;
};

}  // namespace foxml::events::reader
