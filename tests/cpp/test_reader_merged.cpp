// merged_source: several sources read as one (the bridge's default file + socket): every line
// once with its own origin, backpressure instead of loss, one dedup across a file and a socket fed
// the same events, wake() and shutdown with a child blocked in its wait.
#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <thread>

#include "fixtures/reader_helpers.hpp"
#include "fixtures/unix_peer.hpp"
#include "foxml/events/reader/file_source.hpp"
#include "foxml/events/reader/live_reader.hpp"
#include "foxml/events/reader/make_source.hpp"
#include "foxml/events/reader/merged_source.hpp"
#include "foxml/events/reader/socket_source.hpp"

using namespace foxml::events::reader;
using namespace std::chrono_literals;
using reader_test::append;
using reader_test::line;
using reader_test::temp_dir;

namespace {

std::vector<std::unique_ptr<source>> files(const std::vector<std::string>& paths, bool follow) {
  std::vector<std::unique_ptr<source>> out;
  source_options options;
  options.follow = follow;
  for (const auto& p : paths) out.push_back(make_source(p, options));
  return out;
}

}  // namespace

TEST_CASE("merged_source: every line of every child once, in each child's order, with its origin") {
  temp_dir dir;
  for (std::uint64_t seq = 1; seq <= 300; ++seq) {
    append(dir / "a.jsonl", line(seq, "ra"));
    append(dir / "b.jsonl", line(seq, "rb"));
  }
  merged_source merged(files({dir / "a.jsonl", dir / "b.jsonl"}, false));
  CHECK(merged.describe() == "merged:file://" + (dir / "a.jsonl") + ",file://" + (dir / "b.jsonl"));
  std::map<std::string, std::vector<std::uint64_t>> by_origin;
  event_stream stream;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (merged.poll(100ms, [&](const raw_line& l) {
    auto e = stream.push(l);
    REQUIRE(e);
    by_origin[std::string(l.position.origin)].push_back(e->value.seq);
    CHECK(l.position.line == e->value.seq);  // line numbers stay the child's own
  })) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
  }
  REQUIRE(by_origin.size() == 2);
  for (const auto& [origin, seqs] : by_origin) {
    REQUIRE(seqs.size() == 300);
    for (std::size_t i = 0; i < seqs.size(); ++i) CHECK(seqs[i] == i + 1);
  }
  CHECK(stream.stats().events == 600);
  const auto stats = merged.stats_json();
  CHECK(stats.find("\"finished\":true") != std::string::npos);
}

TEST_CASE("merged_source: a full queue holds the children back and loses nothing") {
  temp_dir dir;
  std::string text;
  for (std::uint64_t seq = 1; seq <= 2000; ++seq) text += line(seq, "big");
  append(dir / "big.jsonl", text);
  merged_source_options options;
  options.max_lines = 8;
  merged_source merged(files({dir / "big.jsonl"}, false), options);
  std::uint64_t expected = 1;
  while (merged.poll(100ms, [&](const raw_line& l) {
    const auto seq_at = l.text.find("\"seq\":");
    REQUIRE(seq_at != std::string_view::npos);
    CHECK(std::stoull(std::string(l.text.substr(seq_at + 6))) == expected);
    ++expected;
  })) {
    std::this_thread::sleep_for(1ms);  // a slow consumer: the child must wait, not drop
  }
  CHECK(expected == 2001);
  CHECK(merged.stats_json().find("\"waits\":0") == std::string::npos);
}

TEST_CASE("merged_source: one live_reader dedups a file and a socket fed the same events") {
  temp_dir dir;
  const std::string file = dir / "events.jsonl", sock = dir / "events.sock";
  std::vector<std::unique_ptr<source>> children = files({file}, true);
  children.push_back(std::make_unique<socket_source>(sock));
  live_reader reader(std::make_unique<merged_source>(std::move(children)), true);
  std::atomic<int> seen{0};
  reader.subscribe([&](const shared_event&, std::uint64_t) { ++seen; });
  reader.start();
  std::string text;
  for (std::uint64_t seq = 1; seq <= 100; ++seq) text += line(seq, "both");
  append(file, text);
  const int fd = reader_test::connect_to(sock);
  REQUIRE(fd >= 0);
  reader_test::send_all(fd, text);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (reader.stats().events + reader.stats().duplicates < 200) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(5ms);
  }
  ::close(fd);
  CHECK(reader.stats().events == 100);
  CHECK(reader.stats().duplicates == 100);
  CHECK(seen == 100);
  CHECK(reader.buffer().end() == 100);
  const auto runs = reader.runs();
  REQUIRE(runs.size() == 1);
  CHECK(runs.front().run_id == "both");
  reader.close();
}

TEST_CASE("merged_source: a malformed line is reported with its child's origin") {
  temp_dir dir;
  append(dir / "good.jsonl", line(1, "g"));
  append(dir / "bad.jsonl", "{not json\n");
  live_reader reader(std::make_unique<merged_source>(files({dir / "good.jsonl", dir / "bad.jsonl"}, false)), false);
  while (reader.poll(100ms, [](const live_item&) {})) {
  }
  const auto bad = reader.malformed();
  REQUIRE(bad.size() == 1);
  CHECK(bad.front().origin == "file://" + (dir / "bad.jsonl"));
  CHECK(bad.front().line == 1);
  CHECK(reader.stats().events == 1);
}

TEST_CASE("merged_source: wake() ends a wait early, and closing joins children blocked in theirs") {
  temp_dir dir;
  std::vector<std::unique_ptr<source>> children;
  children.push_back(std::make_unique<socket_source>(dir / "idle.sock"));
  auto merged = std::make_unique<merged_source>(std::move(children));
  std::thread waker([&] {
    std::this_thread::sleep_for(50ms);
    merged->wake();
  });
  const auto started = std::chrono::steady_clock::now();
  CHECK(merged->poll(60s, [](const raw_line&) { FAIL("no lines expected"); }));
  CHECK(std::chrono::steady_clock::now() - started < 30s);  // liveness: returned on the wake, not the timeout
  waker.join();
  merged.reset();  // joins the child's thread, then the socket server removes its file
  CHECK(::access((dir / "idle.sock").c_str(), F_OK) != 0);
  CHECK_THROWS_AS(merged_source(std::vector<std::unique_ptr<source>>{}), std::invalid_argument);
}
