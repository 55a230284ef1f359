#include "foxml/events/reader/event_stream.hpp"

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

namespace foxml::events::reader {

namespace {
// Per emitter; the oldest are forgotten. A forgotten report can no longer explain a seq that goes
// missing later, a forgotten missing run no longer recognises its late arrival: both are far
// behind the reorder window by then.
constexpr std::size_t max_drop_reports = 256;
// Runs are kept one by one per emitter up to this many, and up to max_absent_runs_total across all
// emitters (~80 bytes each: 1.3 MiB and 21 MiB). Under a drop flood with interleaving producers
// every other seq can be its own run; an event that is late by more runs than are kept is no
// longer told apart from a duplicate, so the per-emitter figure is what buys tolerance to a
// producer thread that was descheduled between taking its seq and queueing its event.
constexpr std::size_t max_absent_runs = 16384;
constexpr std::size_t max_absent_runs_total = 262144;
constexpr std::size_t max_forgotten_ranges = 64;
constexpr std::uint64_t seq_max = std::numeric_limits<std::uint64_t>::max();

// Counters move down only by what they were moved up by; the floor is belt and braces, so a
// mistake shows as a wrong count, never as 2^64-1.
void decrease(std::uint64_t& counter, std::uint64_t by) { counter = counter > by ? counter - by : 0; }

// `from + n - 1`, or the largest seq when that overflows (hostile seqs near 2^64).
std::uint64_t last_of(std::uint64_t from, std::uint64_t n) { return n - 1 > seq_max - from ? seq_max : from + n - 1; }
}  // namespace

event_stream::event_stream(event_stream_options options) : options_(options) {
  options_.max_emitters = std::max<std::size_t>(options_.max_emitters, 1);
}

std::optional<stream_event> event_stream::push(const raw_line& line) {
  ++stats_.lines;
  stats_.bytes += line.text.size() + 1;
  if (line.oversized) {
    report_malformed(line, "line over the size cap of " + std::to_string(options_.limits.max_line_bytes) + " bytes");
    return std::nullopt;
  }
  if (line.text.find_first_not_of(" \t\r") == std::string_view::npos) {
    ++stats_.blank;
    return std::nullopt;
  }
  auto decoded = decode_line(line.text, options_.limits);
  if (!decoded) {
    report_malformed(line, std::move(decoded.error));
    return std::nullopt;
  }
  event& ev = *decoded.value;
  if (options_.deduplicate) {
    emitter_key key{ev.run_id, ev.host, ev.pid};
    tracker& t = tracker_of(ev);
    if (!accept_seq(key, t, ev.seq)) {
      ++stats_.duplicates;
      return std::nullopt;
    }
    if (ev.type == event_type::dropped && ev.first_seq && ev.last_seq && *ev.first_seq >= 0 &&
        *ev.last_seq >= *ev.first_seq) {
      const auto first = static_cast<std::uint64_t>(*ev.first_seq), last = static_cast<std::uint64_t>(*ev.last_seq);
      // A report without a usable count (not one of ours) stands for its whole range.
      const std::uint64_t count = ev.count && *ev.count >= 0 ? static_cast<std::uint64_t>(*ev.count) : last - first + 1;
      note_dropped(key, t, first, last, count);
    }
  }
  ++stats_.events;
  return stream_event{std::move(ev), std::string(line.text)};
}

event_stream::tracker& event_stream::tracker_of(const event& ev) {
  auto [it, inserted] = trackers_.try_emplace(emitter_key{ev.run_id, ev.host, ev.pid});
  tracker& t = it->second;
  if (inserted) {
    ++stats_.emitters;
    t.initial = t.low = ev.seq;
    t.lru = active_lru_.insert(active_lru_.end(), it);
    if (trackers_.size() > options_.max_emitters) evict_one();  // never the new one: it is the most recent
  } else {
    auto& list = t.finished ? finished_lru_ : active_lru_;
    list.splice(list.end(), list, t.lru);
  }
  if (ev.type == event_type::run_complete && !t.finished) {
    finished_lru_.splice(finished_lru_.end(), active_lru_, t.lru);
    t.finished = true;
  }
  return t;
}

void event_stream::evict_one() {
  auto& list = finished_lru_.empty() ? active_lru_ : finished_lru_;
  const auto victim = list.front();
  list.pop_front();
  absent_runs_total_ -= victim->second.absent_runs.size();
  trackers_.erase(victim);
  ++stats_.evicted;
}

bool event_stream::accept_seq(const emitter_key& key, tracker& t, std::uint64_t seq) {
  if (seq < t.initial) {
    // Older than the first seq seen from this emitter (joined mid-stream, or reordered at the start).
    if (!t.before.insert(seq).second) return false;
    if (t.before.size() > options_.reorder_window) t.before.erase(t.before.begin());
    return true;
  }
  if (seq < t.low) {
    auto it = t.absent_runs.upper_bound(seq);
    if (it == t.absent_runs.begin()) return false;
    --it;
    if (seq > it->second.last) return false;
    // Declared missing, and here it is after all: late, not lost. A report that explained it
    // explained a seq that was not dropped, so it gets that explanation back for another one.
    const bool explained = it->second.report != 0;
    remove_absent(key, t, it, seq, seq);
    ++stats_.late;
    if (explained) rematch(key, t, 0);
    return true;
  }
  if (!t.ahead.insert(seq).second) return false;
  advance(key, t);
  return true;
}

void event_stream::advance(const emitter_key& key, tracker& t) {
  for (;;) {
    if (!t.ahead.empty() && *t.ahead.begin() == t.low) {
      t.ahead.erase(t.ahead.begin());
      ++t.low;
      continue;
    }
    if (!t.ahead.empty() && *t.ahead.rbegin() - t.low >= options_.reorder_window) {
      declare_missing(key, t, t.low, *t.ahead.begin() - 1);
      t.low = *t.ahead.begin();
      continue;
    }
    return;
  }
}

void event_stream::add_absent(const emitter_key&, tracker& t, std::uint64_t first, std::uint64_t last,
                              std::uint64_t report) {
  if (t.absent_runs.insert_or_assign(first, absent{last, report}).second) ++absent_runs_total_;
  if (report == 0) {
    ++stats_.gaps;
    stats_.missing += last - first + 1;
  }
  forget_beyond_bounds(t);
}

void event_stream::forget_beyond_bounds(tracker& t) {
  // An emitter past the global bound gives up its own oldest: the one flooding pays for it.
  while (t.absent_runs.size() > max_absent_runs || (absent_runs_total_ > max_absent_runs_total && !t.absent_runs.empty())) {
    forget_oldest_absent(t);
  }
}

void event_stream::forget_oldest_absent(tracker& t) {
  // Its seqs stay counted as they are: an explained run keeps its report's budget spent, an
  // unexplained one joins the summed-up ranges a later report can still explain.
  const auto oldest = t.absent_runs.begin();
  const std::uint64_t first = oldest->first, last = oldest->second.last, size = last - first + 1;
  if (oldest->second.report != 0) {
    if (auto r = t.reports.find(oldest->second.report); r != t.reports.end()) r->second.spent_on_forgotten += size;
  } else {
    t.forgotten.push_back(forgotten_loss{first, last, size, 1, 0, 0});
    if (t.forgotten.size() > max_forgotten_ranges) {
      // The two oldest merge: the least likely to be covered by a report still to come.
      forgotten_loss& into = t.forgotten[0];
      const forgotten_loss& next = t.forgotten[1];
      into.last = next.last;
      into.seqs += next.seqs;
      into.runs += next.runs;
      into.explained += next.explained;
      into.settled += next.settled;
      t.forgotten.erase(t.forgotten.begin() + 1);
    }
  }
  t.absent_runs.erase(oldest);
  --absent_runs_total_;
}

void event_stream::remove_absent(const emitter_key& key, tracker& t, std::map<std::uint64_t, absent>::iterator it,
                                 std::uint64_t first, std::uint64_t last) {
  const std::uint64_t run_first = it->first;
  const absent run = it->second;
  t.absent_runs.erase(it);
  --absent_runs_total_;
  if (run.report == 0) {
    decrease(stats_.gaps, 1);
    decrease(stats_.missing, run.last - run_first + 1);
    unreport_gap(key, first, last);
  }
  if (run_first < first) add_absent(key, t, run_first, first - 1, run.report);
  if (last < run.last) add_absent(key, t, last + 1, run.last, run.report);
}

void event_stream::declare_missing(const emitter_key& key, tracker& t, std::uint64_t first, std::uint64_t last) {
  assign(key, t, first, last, true);
}

void event_stream::assign(const emitter_key& key, tracker& t, std::uint64_t first, std::uint64_t last, bool announce) {
  // Missing seqs are taken in ascending order, each by the report that covers it, has count left
  // and ends first (earliest deadline): that explains as many seqs as the reports' counts allow.
  std::uint64_t cursor = first;
  for (;;) {
    std::uint64_t best = 0, best_last = seq_max, next_start = seq_max;
    for (const auto& [id, r] : t.reports) {
      if (r.left == 0 || r.last < cursor) continue;
      if (r.first <= cursor) {
        if (best == 0 || r.last < best_last) best = id, best_last = r.last;
      } else {
        next_start = std::min(next_start, r.first);
      }
    }
    std::uint64_t end = last;
    if (next_start != seq_max) end = std::min(end, next_start - 1);
    if (best != 0) {
      drop_report& r = t.reports[best];
      end = std::min({end, best_last, last_of(cursor, r.left)});
      r.left -= end - cursor + 1;
      add_absent(key, t, cursor, end, best);
    } else {
      add_absent(key, t, cursor, end, 0);
      if (announce) report_gap(seq_gap{key, cursor, end, false, end - cursor + 1});
    }
    if (end == last) return;
    cursor = end + 1;
  }
}

void event_stream::rematch(const emitter_key& key, tracker& t, std::uint64_t forget) {
  // A report that came late, or a seq that turned up after all, can change which missing seqs the
  // reports explain best; matching them all again from the bottom finds the most. The sweep goes
  // up the seqs and gives each missing piece to the covering report with budget that ends first
  // (earliest deadline: optimal for points against intervals with capacities), in
  // O((runs + reports) log reports). `forget`: a report to drop afterwards; what it explains now
  // stays explained.
  // Runs are matched again in place: most keep their node and only change report.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> unexplained_before;
  auto is_settled = [&](const absent& a) { return a.report != 0 && t.reports.count(a.report) == 0; };
  for (const auto& [first, a] : t.absent_runs) {
    if (a.report != 0) continue;
    unexplained_before.emplace_back(first, a.last);
    decrease(stats_.gaps, 1);
    decrease(stats_.missing, a.last - first + 1);
  }

  auto unexplained_runs = [](const forgotten_loss& f) {
    return f.explained + f.settled >= f.seqs ? 0 : f.runs;
  };
  std::vector<std::uint64_t> forgotten_unexplained_before;
  for (forgotten_loss& f : t.forgotten) {
    forgotten_unexplained_before.push_back(f.seqs - std::min(f.seqs, f.explained + f.settled));
    decrease(stats_.missing, forgotten_unexplained_before.back());
    decrease(stats_.gaps, unexplained_runs(f));
    f.explained = 0;
  }

  // Reports by where their range starts; the active ones in a heap by where it ends.
  struct candidate {
    std::uint64_t id;
    drop_report* report;
  };
  std::vector<candidate> by_first;
  by_first.reserve(t.reports.size());
  for (auto& [id, r] : t.reports) {
    r.left = r.budget - std::min(r.budget, r.spent_on_forgotten);
    by_first.push_back(candidate{id, &r});
  }
  std::sort(by_first.begin(), by_first.end(),
            [](const candidate& a, const candidate& b) { return a.report->first < b.report->first; });
  auto ends_later = [](const candidate& a, const candidate& b) { return a.report->last > b.report->last; };
  std::vector<candidate> active;  // min-heap on `last`
  std::size_t next = 0;
  auto activate_up_to = [&](std::uint64_t seq) {
    for (; next < by_first.size() && by_first[next].report->first <= seq; ++next) {
      active.push_back(by_first[next]);
      std::push_heap(active.begin(), active.end(), ends_later);
    }
  };
  auto retire_before = [&](std::uint64_t seq) {  // reports that end below `seq` or have no budget left
    while (!active.empty() && (active.front().report->last < seq || active.front().report->left == 0)) {
      std::pop_heap(active.begin(), active.end(), ends_later);
      active.pop_back();
    }
  };
  const drop_report* forgotten_report = nullptr;
  if (auto it = t.reports.find(forget); it != t.reports.end()) forgotten_report = &it->second;

  // The forgotten ranges lie below every kept run. Which of a range's seqs are missing is no
  // longer known, so only a report that covers all of it explains any of them. A report that
  // ends inside a range cannot cover anything above it either, so retiring it is final.
  for (forgotten_loss& f : t.forgotten) {
    activate_up_to(f.first);
    retire_before(f.last);
    std::vector<candidate> passed;  // started after f.first: cannot cover f, may cover later ones
    while (!active.empty() && f.explained + f.settled < f.seqs) {
      const candidate c = active.front();
      std::pop_heap(active.begin(), active.end(), ends_later);
      active.pop_back();
      if (c.report->first > f.first) {
        passed.push_back(c);
        continue;
      }
      const std::uint64_t take = std::min(c.report->left, f.seqs - f.explained - f.settled);
      c.report->left -= take;
      (c.report == forgotten_report ? f.settled : f.explained) += take;
      if (c.report->left != 0) passed.push_back(c);
    }
    for (const candidate& c : passed) {
      active.push_back(c);
      std::push_heap(active.begin(), active.end(), ends_later);
    }
  }

  for (auto it = t.absent_runs.begin(); it != t.absent_runs.end(); ++it) {
    // Explained by a report no longer kept: it stays so (that report cannot be matched again).
    if (is_settled(it->second)) continue;
    const std::uint64_t run_last = it->second.last;
    std::uint64_t cursor = it->first;
    for (;;) {
      activate_up_to(cursor);
      retire_before(cursor);
      std::uint64_t end = run_last;
      if (next < by_first.size()) end = std::min(end, by_first[next].report->first - 1);  // a new candidate starts
      std::uint64_t report = 0;
      if (!active.empty()) {
        const candidate c = active.front();
        end = std::min({end, c.report->last, last_of(cursor, c.report->left)});
        c.report->left -= end - cursor + 1;
        report = c.id;
      } else {
        ++stats_.gaps;
        stats_.missing += end - cursor + 1;
      }
      if (cursor == it->first) {
        it->second = absent{end, report};
      } else {
        it = t.absent_runs.emplace_hint(std::next(it), cursor, absent{end, report});
        ++absent_runs_total_;
      }
      if (end == run_last) break;
      cursor = end + 1;
    }
  }

  for (std::size_t i = 0; i < t.forgotten.size(); ++i) {
    const forgotten_loss& f = t.forgotten[i];
    const std::uint64_t unexplained = f.seqs - std::min(f.seqs, f.explained + f.settled);
    stats_.missing += unexplained;
    stats_.gaps += unexplained_runs(f);
    if (forgotten_unexplained_before[i] != 0 && unexplained == 0) unreport_gap(key, f.first, f.last);
    if (forgotten_unexplained_before[i] == 0 && unexplained != 0) report_gap(seq_gap{key, f.first, f.last, false, unexplained});
  }
  if (forgotten_report != nullptr) t.reports.erase(forget);

  // The gap reports follow: explained parts leave them, newly unexplained parts join them (both
  // lists are sorted: one pass each).
  auto before = unexplained_before.begin();
  for (const auto& [first, a] : t.absent_runs) {
    while (before != unexplained_before.end() && before->second < first) ++before;
    if (a.report != 0) {
      if (before != unexplained_before.end() && before->first <= a.last) unreport_gap(key, first, a.last);
      continue;
    }
    std::uint64_t cursor = first;
    for (auto old = before; old != unexplained_before.end() && old->first <= a.last; ++old) {
      if (old->first > cursor) report_gap(seq_gap{key, cursor, old->first - 1, false, old->first - cursor});
      if (old->second >= a.last) {
        cursor = seq_max;
        break;
      }
      cursor = old->second + 1;
    }
    if (cursor != seq_max && cursor <= a.last) report_gap(seq_gap{key, cursor, a.last, false, a.last - cursor + 1});
  }
  forget_beyond_bounds(t);
}

void event_stream::note_dropped(const emitter_key& key, tracker& t, std::uint64_t first, std::uint64_t last,
                                std::uint64_t count) {
  stats_.reported_drops += count;
  report_gap(seq_gap{key, first, last, true, count});
  const std::uint64_t budget = std::min(count, last - first + 1);
  if (budget == 0) return;
  t.reports[t.next_report++] = drop_report{first, last, budget, budget};
  if (t.reports.size() > max_drop_reports) {
    rematch(key, t, t.reports.begin()->first);
    return;
  }
  // Seqs declared missing before the report came may be explained now; when none are in its
  // range, nothing changes (the report waits for seqs still to be declared missing).
  auto below = t.absent_runs.upper_bound(last);
  const bool covers_a_run = below != t.absent_runs.begin() && std::prev(below)->second.last >= first;
  const bool covers_forgotten = std::any_of(t.forgotten.begin(), t.forgotten.end(), [&](const forgotten_loss& f) {
    return f.first >= first && f.last <= last;
  });
  if (covers_a_run || covers_forgotten) rematch(key, t, 0);
}

void event_stream::unreport_gap(const emitter_key& key, std::uint64_t first, std::uint64_t last) {
  // Reported gaps shrink to what is still unexplained.
  std::deque<seq_gap> updated;
  for (auto& gap : gaps_) {
    if (gap.reported_drop || !(gap.key == key) || gap.last_seq < first || gap.first_seq > last) {
      updated.push_back(std::move(gap));
      continue;
    }
    if (gap.first_seq < first) updated.push_back(seq_gap{key, gap.first_seq, first - 1, false, first - gap.first_seq});
    if (gap.last_seq > last) updated.push_back(seq_gap{key, last + 1, gap.last_seq, false, gap.last_seq - last});
  }
  gaps_ = std::move(updated);
}

void event_stream::flush_gaps() {
  for (auto& [key, t] : trackers_) {
    while (!t.ahead.empty()) {
      advance(key, t);
      if (t.ahead.empty()) break;
      declare_missing(key, t, t.low, *t.ahead.begin() - 1);
      t.low = *t.ahead.begin();
    }
  }
}

void event_stream::report_malformed(const raw_line& line, std::string error) {
  ++stats_.malformed;
  if (options_.max_reports == 0) return;
  if (malformed_.size() >= options_.max_reports) malformed_.pop_front();
  malformed_.push_back(malformed_line{std::string(line.position.origin), line.position.line, line.position.offset,
                                      std::move(error)});
}

void event_stream::report_gap(seq_gap gap) {
  if (options_.max_reports == 0) return;
  if (gaps_.size() >= options_.max_reports) gaps_.pop_front();
  gaps_.push_back(std::move(gap));
}

}  // namespace foxml::events::reader
