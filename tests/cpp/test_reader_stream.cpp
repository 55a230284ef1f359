// The event stream: malformed lines counted and skipped, JSONTestSuite-style hostile input,
// dedup by (run_id, host, pid, seq), and gaps told apart from reported drops.
#include <doctest/doctest.h>

#include <map>
#include <random>
#include <set>

#include "fixtures/reader_helpers.hpp"
#include "foxml/events/reader/file_source.hpp"

using namespace foxml::events::reader;
using reader_test::line;

namespace {
std::optional<stream_event> feed(event_stream& stream, std::string_view text, std::uint64_t no = 1) {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  return stream.push(raw_line{text, line_position{"test", no, 0}, false});
}
std::string dropped_line(std::uint64_t seq, std::uint64_t first, std::uint64_t last) {
  std::string l = line(seq, "r1", "dropped");
  l.insert(l.size() - 2, ",\"count\":" + std::to_string(last - first + 1) + ",\"first_seq\":" + std::to_string(first) +
                             ",\"last_seq\":" + std::to_string(last));
  return l;
}
}  // namespace

TEST_CASE("10k malformed lines mixed with 10k good ones: every good one delivered, every bad one counted") {
  reader_test::temp_dir dir;
  const auto path = dir / "mixed.jsonl";
  const std::vector<std::string> bad = {
      "not json",           "{",         "{\"event_type\":\"progress\"}",  "[]", "{\"event_type\":\"nope\",\"run_id\":\"r\"}",
      "\"just a string\"", "{\"a\":1}x", "{\"event_type\":1,\"run_id\":\"r\"}", "",   "\x01\x02\x03"};
  std::string text;
  std::mt19937 rng(42);
  for (std::uint64_t i = 0; i < 10000; ++i) {
    text += line(i);
    text += bad[rng() % bad.size()] + "\n";
  }
  reader_test::append(path, text);
  file_source src(path);
  event_stream stream;
  std::vector<stream_event> got;
  src.poll(std::chrono::milliseconds(0), [&](const raw_line& l) {
    if (auto e = stream.push(l)) got.push_back(std::move(*e));
  });
  REQUIRE(got.size() == 10000);
  for (std::uint64_t i = 0; i < got.size(); ++i) CHECK(got[i].value.seq == i);
  CHECK(stream.stats().malformed + stream.stats().blank == 10000);  // the generator makes some bad lines blank
  CHECK(stream.stats().lines == 20000);
  CHECK(stream.stats().gaps == 0);
  REQUIRE(!stream.malformed().empty());
  CHECK(stream.malformed().back().line == 20000);  // positions are kept: the last line of the file
  CHECK(stream.malformed().back().origin == "file://" + path);
}

TEST_CASE("hostile lines never crash the decoder") {
  std::vector<std::string> cases = {
      std::string(100000, '['),
      std::string(100000, '{'),
      "{\"event_type\":\"heartbeat\",\"run_id\":\"r\",\"x\":" + std::string(5000, '[') + std::string(5000, ']') + "}",
      "{\"event_type\":\"heartbeat\",\"run_id\":\"r\",\"seq\":1e999999}",
      "{\"event_type\":\"heartbeat\",\"run_id\":\"r\",\"seq\":123456789012345678901234567890}",
      "{\"event_type\":\"heartbeat\",\"run_id\":\"r\",\"seq\":-1}",
      "{\"event_type\":\"progress\",\"run_id\":\"r\",\"progress_pct\":1e400,\"stage\":\"s\"}",
      "{\"event_type\":\"heartbeat\",\"run_id\":\"\\ud800\"}",          // lone high surrogate
      "{\"event_type\":\"heartbeat\",\"run_id\":\"\\udc00\\ud800\"}",   // reversed pair
      "{\"event_type\":\"heartbeat\",\"run_id\":\"\\u0000\"}",          // escaped NUL
      std::string("{\"event_type\":\"heartbeat\",\"run_id\":\"a\0b\"}", 41),  // raw NUL
      "\xEF\xBB\xBF{\"event_type\":\"heartbeat\",\"run_id\":\"r\"}",  // BOM
      "{\"event_type\":\"heartbeat\",\"run_id\":\"\xC3\x28\"}",         // invalid UTF-8
      "{\"event_type\":\"heartbeat\",\"run_id\":\"\xF4\x90\x80\x80\"}", // beyond U+10FFFF
      "{\"event_type\":\"heartbeat\",\"run_id\":\"r\",\"run_id\":\"s\"}",  // duplicate key
      "{\"event_type\":\"heartbeat\",\"run_id\":\"r\"",
      "{\"event_type\":\"heartbeat\",\"run_id\":\"r\",}",
      "{'event_type':'heartbeat'}",
      "{\"event_type\":\"heartbeat\",\"run_id\":\"r\",\"seq\":01}",
      "{\"event_type\":\"heartbeat\",\"run_id\":\"r\",\"seq\":NaN}",
      "{\"event_type\":\"heartbeat\",\"run_id\":\"r\",\"x\":\"\\x41\"}",
      "{\"event_type\":\"metrics\",\"run_id\":\"r\",\"step\":1,\"metrics\":{\"loss\":\"NaN\",\"l2\":[1]}}",
      "{\"event_type\":\"resources\",\"run_id\":\"r\",\"gpus\":[1,2]}",
      "{\"event_type\":\"run_start\",\"run_id\":\"r\",\"config\":" + std::string(40, '[') + "}",
      std::string("\0\0\0\0", 4),
      "\xFF\xFE{}",
      "1",
      "null",
      "{}",
      "  ",
  };
  event_stream stream;
  std::uint64_t no = 0;
  for (const auto& c : cases) {
    CAPTURE(c.substr(0, 80));
    CHECK_NOTHROW(feed(stream, c, ++no));
  }
  CHECK(stream.stats().lines == cases.size());
  CHECK(stream.stats().events + stream.stats().malformed + stream.stats().blank + stream.stats().duplicates ==
        cases.size());
  CHECK(stream.stats().malformed + stream.stats().blank >= cases.size() - 6);

  // The emitter's NaN convention survives the decoder.
  event_stream fresh;
  auto e = feed(fresh,
                "{\"event_type\":\"metrics\",\"run_id\":\"r\",\"seq\":0,\"step\":3,\"metrics\":{\"loss\":\"NaN\"}}");
  REQUIRE(e);
  CHECK(std::isnan(*e->value.metric_value("loss")));
}

TEST_CASE("an oversized line is counted with its position") {
  event_stream stream;
  CHECK_FALSE(stream.push(raw_line{"{\"event_type\"", line_position{"x", 9, 100}, true}));
  REQUIRE(stream.malformed().size() == 1);
  CHECK(stream.malformed()[0].line == 9);
  CHECK(stream.malformed()[0].offset == 100);
}

TEST_CASE("duplicates by (run_id, host, pid, seq) are dropped, other emitters are not") {
  event_stream stream;
  CHECK(feed(stream, line(0)));
  CHECK(feed(stream, line(1)));
  CHECK_FALSE(feed(stream, line(1)));
  CHECK_FALSE(feed(stream, line(0)));
  CHECK(feed(stream, line(1, "r2")));          // another run
  CHECK(feed(stream, line(1, "r1", "heartbeat", 8)));  // another process
  CHECK(stream.stats().duplicates == 2);
  CHECK(stream.stats().events == 4);
  CHECK(stream.stats().emitters == 3);
}

TEST_CASE("slightly out-of-order seqs are neither gaps nor duplicates") {
  event_stream_options options;
  options.reorder_window = 8;
  event_stream stream(options);
  for (std::uint64_t s : {5, 3, 4, 7, 6, 9, 8, 10, 2, 11}) CHECK(feed(stream, line(s)));
  CHECK_FALSE(feed(stream, line(4)));
  CHECK_FALSE(feed(stream, line(2)));
  stream.flush_gaps();
  CHECK(stream.stats().gaps == 0);
  CHECK(stream.stats().duplicates == 2);
}

TEST_CASE("an unexplained gap is reported - one covered by a dropped event is a reported drop") {
  event_stream_options options;
  options.reorder_window = 4;
  event_stream stream(options);
  for (std::uint64_t s = 0; s < 10; ++s) feed(stream, line(s));
  // 10..14 lost silently; 15..19 dropped by the emitter, which says so in seq 21.
  for (std::uint64_t s = 20; s < 30; ++s) feed(stream, s == 21 ? dropped_line(21, 15, 19) : line(s));
  stream.flush_gaps();
  CHECK(stream.stats().gaps == 1);
  CHECK(stream.stats().missing == 5);
  CHECK(stream.stats().reported_drops == 5);
  bool saw_gap = false, saw_drop = false;
  for (const auto& g : stream.gaps()) {
    if (!g.reported_drop && g.first_seq == 10 && g.last_seq == 14) saw_gap = true;
    if (g.reported_drop && g.first_seq == 15 && g.last_seq == 19) saw_drop = true;
  }
  CHECK(saw_gap);
  CHECK(saw_drop);
}

TEST_CASE("a dropped report that comes after the gap was declared explains it") {
  event_stream_options options;
  options.reorder_window = 2;
  event_stream stream(options);
  feed(stream, line(0));
  for (std::uint64_t s = 5; s < 10; ++s) feed(stream, line(s));
  CHECK(stream.stats().gaps == 1);
  CHECK(stream.stats().missing == 4);
  feed(stream, dropped_line(10, 1, 4));
  CHECK(stream.stats().gaps == 0);
  CHECK(stream.stats().missing == 0);
  CHECK(stream.gaps().front().reported_drop);
}

TEST_CASE("a seq that arrives after being declared missing is delivered as late") {
  event_stream_options options;
  options.reorder_window = 2;
  event_stream stream(options);
  feed(stream, line(0));
  for (std::uint64_t s = 2; s < 6; ++s) feed(stream, line(s));
  CHECK(stream.stats().missing == 1);
  CHECK(feed(stream, line(1)));
  CHECK(stream.stats().late == 1);
  CHECK(stream.stats().missing == 0);
  CHECK_FALSE(feed(stream, line(1)));
}

namespace {
std::string report_line(std::uint64_t seq, std::int64_t pid, std::uint64_t count, std::uint64_t first,
                        std::uint64_t last) {
  std::string l = line(seq, "r1", "dropped", pid);
  l.insert(l.size() - 2, ",\"count\":" + std::to_string(count) + ",\"first_seq\":" + std::to_string(first) +
                             ",\"last_seq\":" + std::to_string(last));
  return l;
}

// One emitter as the library builds it: producer threads take seqs from one counter and finish
// them (write or drop) in any order; drops are noted as min..max + count, and the worker's report
// takes a seq above everything it covers (a refused report is itself a drop for the next one).
struct modelled_emitter {
  std::int64_t pid;
  std::vector<std::string> lines;    // in the order they reach the file
  std::set<std::uint64_t> written;
  std::uint64_t reported = 0;        // sum of the counts of the reports written
};

modelled_emitter model_emitter(std::mt19937_64& rng, std::int64_t pid) {
  modelled_emitter m{pid, {}, {}, 0};
  std::uint64_t next_seq = 0, pending = 0, pending_first = 0, pending_last = 0;
  const auto drop = [&](std::uint64_t seq) {
    pending_first = pending == 0 ? seq : std::min(pending_first, seq);
    pending_last = pending == 0 ? seq : std::max(pending_last, seq);
    ++pending;
  };
  const auto write = [&](std::uint64_t seq, std::string text) {
    m.written.insert(seq);
    m.lines.push_back(std::move(text));
  };
  write(next_seq++, line(0, "r1", "run_start", pid));
  std::vector<std::uint64_t> in_flight;
  const unsigned drop_pct = 5 + rng() % 40;
  const std::size_t steps = 200 + rng() % 1500;
  for (std::size_t i = 0; i < steps; ++i) {
    const unsigned action = rng() % 100;
    if (action < 50) {
      in_flight.push_back(next_seq++);
    } else if (action < 95 && !in_flight.empty()) {
      const std::size_t pick = rng() % in_flight.size();
      const std::uint64_t seq = in_flight[pick];
      in_flight.erase(in_flight.begin() + static_cast<std::ptrdiff_t>(pick));
      if (rng() % 100 < drop_pct) {
        drop(seq);
      } else {
        write(seq, line(seq, "r1", "heartbeat", pid));
      }
    } else if (pending > 0) {
      const std::uint64_t seq = next_seq++;
      const std::uint64_t count = pending, first = pending_first, last = pending_last;
      if (rng() % 10 == 0) {
        drop(seq);  // the report itself refused: its drops and it go into the next one
      } else {
        pending = 0;
        write(seq, report_line(seq, pid, count, first, last));
        m.reported += count;
      }
    }
  }
  for (const auto seq : in_flight) write(seq, line(seq, "r1", "heartbeat", pid));
  if (pending > 0) {
    const std::uint64_t seq = next_seq++;
    write(seq, report_line(seq, pid, pending, pending_first, pending_last));
    m.reported += pending;
  }
  return m;
}
}  // namespace

TEST_CASE("property: with drops, reports, duplicates and late arrivals, the reader delivers exactly what was written") {
  for (std::uint64_t seed = 1; seed <= 300; ++seed) {
    CAPTURE(seed);
    std::mt19937_64 rng(seed);
    std::vector<modelled_emitter> emitters;
    const std::size_t n_emitters = 1 + rng() % 4;
    for (std::size_t i = 0; i < n_emitters; ++i) emitters.push_back(model_emitter(rng, static_cast<std::int64_t>(100 + i)));
    // The file: the emitters' lines interleaved at random, each emitter's own order kept.
    std::vector<std::string> arrival;
    std::vector<std::size_t> next(n_emitters, 0);
    std::uint64_t reported = 0;
    for (std::size_t left = 0;;) {
      left = 0;
      for (std::size_t i = 0; i < n_emitters; ++i) left += emitters[i].lines.size() - next[i];
      if (left == 0) break;
      std::size_t pick = rng() % n_emitters;
      while (next[pick] == emitters[pick].lines.size()) pick = (pick + 1) % n_emitters;
      arrival.push_back(emitters[pick].lines[next[pick]++]);
    }
    for (const auto& m : emitters) reported += m.reported;
    // Transport: some lines come late (a few far beyond the reorder window), some twice. Each
    // emitter's first line stays first, so no seq falls below the first one seen.
    event_stream_options options;
    options.reorder_window = seed % 3 == 0 ? 16 : 4096;
    const std::size_t distinct = arrival.size();
    for (std::size_t moves = arrival.size() / 20; moves > 0; --moves) {
      const std::size_t from = n_emitters + rng() % (arrival.size() - n_emitters);
      const std::size_t to = std::min(arrival.size() - 1, from + 1 + rng() % 64);
      std::string moved = std::move(arrival[from]);
      arrival.erase(arrival.begin() + static_cast<std::ptrdiff_t>(from));
      arrival.insert(arrival.begin() + static_cast<std::ptrdiff_t>(to), std::move(moved));
    }
    std::uint64_t injected = 0;
    for (std::size_t dups = arrival.size() / 30; dups > 0; --dups, ++injected) {
      const std::size_t from = n_emitters + rng() % (arrival.size() - n_emitters);
      const std::size_t to = from + 1 + rng() % (arrival.size() - from);
      arrival.insert(arrival.begin() + static_cast<std::ptrdiff_t>(to), arrival[from]);
    }
    event_stream stream(options);
    std::map<std::int64_t, std::set<std::uint64_t>> delivered;
    std::uint64_t delivered_twice = 0;
    for (const auto& l : arrival) {
      if (auto e = feed(stream, l)) delivered_twice += !delivered[e->value.pid].insert(e->value.seq).second;
    }
    stream.flush_gaps();
    CHECK(delivered_twice == 0);
    for (const auto& m : emitters) CHECK(delivered[m.pid] == m.written);
    const auto& s = stream.stats();
    CHECK(s.duplicates == injected);
    CHECK(s.events == distinct);
    CHECK(s.reported_drops == reported);
    CHECK(s.gaps == 0);
    CHECK(s.missing == 0);
    if (s.gaps != 0 || s.missing != 0 || s.duplicates != injected) break;  // one seed's story is enough
  }
}

TEST_CASE("emitter state is bounded: past max_emitters the least recent is evicted, finished ones first") {
  event_stream_options options;
  options.max_emitters = 1000;
  event_stream stream(options);
  for (std::int64_t pid = 0; pid < 100000; ++pid) {
    REQUIRE(feed(stream, line(0, "r1", "heartbeat", pid)));
    REQUIRE(stream.tracked_emitters() <= 1000);
  }
  CHECK(stream.stats().emitters == 100000);
  CHECK(stream.stats().evicted == 99000);
  CHECK(stream.tracked_emitters() == 1000);
  // The most recent ones are still known: their seqs are still deduplicated.
  CHECK_FALSE(feed(stream, line(0, "r1", "heartbeat", 99999)));
  CHECK(stream.stats().duplicates == 1);

  event_stream_options small;
  small.max_emitters = 3;
  event_stream lru(small);
  CHECK(feed(lru, line(0, "a")));
  CHECK(feed(lru, line(0, "b")));
  CHECK(feed(lru, line(1, "b", "run_complete")));  // b is finished
  CHECK(feed(lru, line(0, "c")));
  CHECK(feed(lru, line(0, "d")));  // evicts b although a is older: b has finished
  CHECK(lru.stats().evicted == 1);
  CHECK_FALSE(feed(lru, line(0, "a")));
  CHECK_FALSE(feed(lru, line(0, "c")));
  CHECK(feed(lru, line(0, "e")));  // no finished one left: d, the least recently heard, goes
  CHECK(lru.stats().evicted == 2);
  CHECK_FALSE(feed(lru, line(0, "a")));
  CHECK(feed(lru, line(0, "d")));  // forgotten, so it starts afresh
}

TEST_CASE("a seq explained by a report that arrives late gives the explanation back - no counter wraps") {
  event_stream_options options;
  options.reorder_window = 2;
  event_stream stream(options);
  CHECK(feed(stream, line(0)));
  // 1 and 2 do not come in time; the report says one seq of 1..2 was dropped.
  for (std::uint64_t s = 3; s < 8; ++s) CHECK(feed(stream, line(s)));
  CHECK(feed(stream, report_line(8, 7, 1, 1, 2)));
  CHECK(stream.stats().missing == 1);
  CHECK(stream.stats().reported_drops == 1);
  CHECK(feed(stream, line(1)));  // late: so 2 was the dropped one
  CHECK(stream.stats().late == 1);
  CHECK(stream.stats().missing == 0);
  CHECK(stream.stats().gaps == 0);
  CHECK_FALSE(feed(stream, line(1)));
  CHECK_FALSE(feed(stream, line(2)) == std::nullopt);  // never seen: a late arrival, not a duplicate
  CHECK(stream.stats().missing == 0);
  CHECK(stream.stats().gaps == 0);
  CHECK(stream.stats().duplicates == 1);
}

TEST_CASE("blank lines are skipped and counted, neither events nor malformed") {
  event_stream stream;
  std::size_t delivered = 0;
  for (const std::string text : {reader_test::line(0), std::string(), std::string(" \t\r"), reader_test::line(1)}) {
    std::string body = text;
    if (!body.empty() && body.back() == '\n') body.pop_back();
    if (stream.push(raw_line{body, line_position{"test", 1, 0}, false})) ++delivered;
  }
  CHECK(delivered == 2);
  CHECK(stream.stats().blank == 2);
  CHECK(stream.stats().malformed == 0);
}

TEST_CASE("a report that comes after more missing runs than the reader keeps still explains them all") {
  // A drop flood with producers interleaving: every other seq dropped, 10,000 single-seq runs
  // declared missing before the one report arrives (the worker writes it once the queue has room):
  // 20,000 single-seq runs, more than the 16,384 the reader keeps one by one.
  event_stream_options options;
  options.reorder_window = 16;
  event_stream stream(options);
  constexpr std::uint64_t n = 40000;
  for (std::uint64_t s = 0; s < n; s += 2) REQUIRE(feed(stream, line(s)));
  CHECK(stream.stats().missing > 16384);
  CHECK(feed(stream, report_line(n, 7, n / 2, 1, n - 1)));
  stream.flush_gaps();
  CHECK(stream.stats().reported_drops == n / 2);
  CHECK(stream.stats().missing == 0);
  CHECK(stream.stats().gaps == 0);
}

TEST_CASE("seqs explained by reports the reader no longer keeps stay explained") {
  // 600 drops, each reported on its own: more reports than the reader keeps per emitter. Every
  // new report rematches what is missing; the old explanations must survive that.
  event_stream_options options;
  options.reorder_window = 2;
  event_stream stream(options);
  constexpr std::uint64_t rounds = 600;
  for (std::uint64_t i = 0; i < rounds; ++i) {
    REQUIRE(feed(stream, line(3 * i)));
    // 3i + 1 is dropped; its report is 3i + 2
    REQUIRE(feed(stream, report_line(3 * i + 2, 7, 1, 3 * i + 1, 3 * i + 1)));
  }
  REQUIRE(feed(stream, line(3 * rounds)));
  stream.flush_gaps();
  CHECK(stream.stats().reported_drops == rounds);
  CHECK(stream.stats().missing == 0);
  CHECK(stream.stats().gaps == 0);
}

TEST_CASE("more late reports than the reader keeps, over more missing runs than it keeps: each explains one") {
  // Hostile shape (and the cost case of the threat model): every report covers everything, so
  // each one matches all missing seqs again. What reports no longer kept explained stays explained.
  event_stream_options options;
  options.reorder_window = 16;
  event_stream stream(options);
  constexpr std::uint64_t n = 40000, reports = 400;
  for (std::uint64_t s = 0; s < n; s += 2) REQUIRE(feed(stream, line(s)));
  for (std::uint64_t k = 0; k < reports; ++k) REQUIRE(feed(stream, report_line(n + k, 7, 1, 1, n - 1)));
  stream.flush_gaps();
  CHECK(stream.stats().reported_drops == reports);
  CHECK(stream.stats().missing == n / 2 - reports);
}
