// The event stream: malformed lines counted and skipped, JSONTestSuite-style hostile input,
// dedup by (run_id, host, pid, seq), and gaps told apart from reported drops.
#include <doctest/doctest.h>

#include <random>

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
  CHECK(stream.stats().malformed == 10000);
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
  CHECK(stream.stats().events + stream.stats().malformed + stream.stats().duplicates == cases.size());
  CHECK(stream.stats().malformed >= cases.size() - 6);

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

TEST_CASE("an unexplained gap is reported; one covered by a dropped event is a reported drop") {
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
