#include "foxml/events/reader/event_stream.hpp"

#include <algorithm>

namespace foxml::events::reader {

namespace {
constexpr std::size_t max_dropped_reports = 4096;  // per emitter; older ones are forgotten
}

event_stream::event_stream(event_stream_options options) : options_(options) {}

std::optional<stream_event> event_stream::push(const raw_line& line) {
  ++stats_.lines;
  stats_.bytes += line.text.size() + 1;
  if (line.oversized) {
    report_malformed(line, "line over the size cap of " + std::to_string(options_.limits.max_line_bytes) + " bytes");
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
    auto [it, inserted] = trackers_.try_emplace(key);
    tracker& t = it->second;
    if (inserted) {
      ++stats_.emitters;
      t.initial = t.low = ev.seq;
    }
    if (!accept_seq(key, t, ev.seq)) {
      ++stats_.duplicates;
      return std::nullopt;
    }
    if (ev.type == event_type::dropped && ev.first_seq && ev.last_seq && *ev.first_seq >= 0 &&
        *ev.last_seq >= *ev.first_seq) {
      note_dropped(key, t, static_cast<std::uint64_t>(*ev.first_seq), static_cast<std::uint64_t>(*ev.last_seq));
      advance(key, t);
    }
  }
  ++stats_.events;
  return stream_event{std::move(ev), std::string(line.text)};
}

bool event_stream::accept_seq(const emitter_key& key, tracker& t, std::uint64_t seq) {
  if (seq < t.initial) {
    // Older than the first seq seen from this emitter (joined mid-stream, or reordered at the start).
    if (!t.before.insert(seq).second) return false;
    if (t.before.size() > options_.reorder_window) t.before.erase(t.before.begin());
    return true;
  }
  if (seq < t.low) {
    auto it = t.missing.upper_bound(seq);
    if (it == t.missing.begin()) return false;
    --it;
    if (seq > it->second) return false;
    // Declared missing, and here it is after all: late, not lost.
    const std::uint64_t first = it->first, last = it->second;
    t.missing.erase(it);
    if (first < seq) t.missing.emplace(first, seq - 1);
    if (seq < last) t.missing.emplace(seq + 1, last);
    if (first == last) --stats_.gaps;
    --stats_.missing;
    ++stats_.late;
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
    auto report = t.dropped_reports.upper_bound(t.low);
    if (report != t.dropped_reports.begin() && std::prev(report)->second >= t.low) {
      t.low = std::prev(report)->second + 1;  // reported as dropped: never coming
      t.ahead.erase(t.ahead.begin(), t.ahead.lower_bound(t.low));
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

void event_stream::declare_missing(const emitter_key& key, tracker& t, std::uint64_t first, std::uint64_t last) {
  // Parts covered by a `dropped` report were counted when the report came; the rest is a gap.
  std::uint64_t cursor = first;
  auto report = t.dropped_reports.upper_bound(first);
  if (report != t.dropped_reports.begin()) --report;
  for (; cursor <= last; ++report) {
    std::uint64_t piece_end = last;
    if (report != t.dropped_reports.end()) {
      if (report->second < cursor) continue;
      if (report->first <= cursor) {
        if (report->second >= last) return;
        cursor = report->second + 1;
        continue;
      }
      piece_end = std::min(last, report->first - 1);
    }
    t.missing.emplace(cursor, piece_end);
    ++stats_.gaps;
    stats_.missing += piece_end - cursor + 1;
    report_gap(seq_gap{key, cursor, piece_end, false});
    if (piece_end == last || report == t.dropped_reports.end()) return;
    cursor = report->second + 1;
  }
}

void event_stream::note_dropped(const emitter_key& key, tracker& t, std::uint64_t first, std::uint64_t last) {
  stats_.reported_drops += last - first + 1;
  report_gap(seq_gap{key, first, last, true});
  // A gap declared before the report came is explained now.
  for (auto it = t.missing.begin(); it != t.missing.end();) {
    const std::uint64_t a = std::max(first, it->first), b = std::min(last, it->second);
    if (a > b) {
      ++it;
      continue;
    }
    const std::uint64_t m_first = it->first, m_last = it->second;
    it = t.missing.erase(it);
    stats_.missing -= b - a + 1;
    if (m_first < a) t.missing.emplace(m_first, a - 1);
    if (b < m_last) t.missing.emplace(b + 1, m_last);
    if (m_first >= a && m_last <= b) --stats_.gaps;
  }
  // Reported gaps shrink to what is still unexplained.
  std::deque<seq_gap> updated;
  for (auto& gap : gaps_) {
    if (gap.reported_drop || !(gap.key == key) || gap.last_seq < first || gap.first_seq > last) {
      updated.push_back(std::move(gap));
      continue;
    }
    if (gap.first_seq < first) updated.push_back(seq_gap{key, gap.first_seq, first - 1, false});
    if (gap.last_seq > last) updated.push_back(seq_gap{key, last + 1, gap.last_seq, false});
  }
  gaps_ = std::move(updated);
  t.dropped_reports[first] = std::max(last, t.dropped_reports[first]);
  while (t.dropped_reports.size() > max_dropped_reports) t.dropped_reports.erase(t.dropped_reports.begin());
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
