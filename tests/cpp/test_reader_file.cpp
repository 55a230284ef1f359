// The file source: reading, following like `tail -F` across rotation and truncation, a file that
// appears later, and a line written in two halves.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cstdio>
#include <thread>

#include "fixtures/reader_helpers.hpp"
#include "foxml/events/reader/file_source.hpp"

using namespace foxml::events::reader;
using reader_test::append;
using reader_test::line;

namespace {
std::vector<std::uint64_t> seqs(const std::vector<stream_event>& events) {
  std::vector<std::uint64_t> out;
  for (const auto& e : events) out.push_back(e.value.seq);
  return out;
}
std::vector<std::uint64_t> iota(std::uint64_t first, std::uint64_t last) {
  std::vector<std::uint64_t> out;
  for (auto s = first; s <= last; ++s) out.push_back(s);
  return out;
}
}  // namespace

TEST_CASE("reads a whole file without following, including an unterminated last line") {
  reader_test::temp_dir dir;
  const auto path = dir / "events.jsonl";
  append(path, line(0) + line(1));
  std::string last = line(2);
  last.pop_back();
  append(path, last);
  file_source src(path);
  event_stream stream;
  std::vector<stream_event> got;
  CHECK_FALSE(src.poll(std::chrono::milliseconds(0), [&](const raw_line& l) {
    if (auto e = stream.push(l)) got.push_back(*e);
  }));
  CHECK(seqs(got) == iota(0, 2));
  CHECK(got[0].value.type == foxml::events::event_type::heartbeat);
}

TEST_CASE("a missing file without follow throws") {
  reader_test::temp_dir dir;
  CHECK_THROWS_AS(file_source(dir / "nope.jsonl"), std::system_error);
}

TEST_CASE("follows a file that does not exist yet, then one that grows") {
  reader_test::temp_dir dir;
  const auto path = dir / "later.jsonl";
  file_source src(path, file_source_options{true});
  event_stream stream;
  std::vector<stream_event> got;
  src.poll(std::chrono::milliseconds(10), [](const raw_line&) { FAIL("nothing to read yet"); });
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    append(path, line(0));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    append(path, line(1) + line(2));
  });
  CHECK(reader_test::pump_until(src, stream, got, [&] { return got.size() >= 3; }));
  writer.join();
  CHECK(seqs(got) == iota(0, 2));
}

TEST_CASE("a line written in two halves 200 ms apart comes out once, whole") {
  reader_test::temp_dir dir;
  const auto path = dir / "half.jsonl";
  append(path, line(0));
  file_source src(path, file_source_options{true});
  event_stream stream;
  std::vector<stream_event> got;
  CHECK(reader_test::pump_until(src, stream, got, [&] { return got.size() == 1; }));
  std::string second = line(1);
  append(path, second.substr(0, 40));
  const auto half_time = std::chrono::steady_clock::now();
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    append(path, second.substr(40));
  });
  CHECK(reader_test::pump_until(src, stream, got, [&] { return got.size() == 2; }));
  writer.join();
  CHECK(std::chrono::steady_clock::now() - half_time >= std::chrono::milliseconds(200));
  CHECK(seqs(got) == iota(0, 1));
  CHECK(stream.stats().malformed == 0);
}

TEST_CASE("follows across rotation by rename and by delete, and across truncation") {
  reader_test::temp_dir dir;
  const auto path = dir / "rot.jsonl";
  append(path, line(0) + line(1));
  file_source src(path, file_source_options{true});
  event_stream stream;
  std::vector<stream_event> got;
  CHECK(reader_test::pump_until(src, stream, got, [&] { return got.size() == 2; }));

  // logrotate's default: rename, then a new file at the path.
  append(path, line(2));
  REQUIRE(std::rename(path.c_str(), (dir / "rot.jsonl.1").c_str()) == 0);
  append(path, line(3) + line(4));
  CHECK(reader_test::pump_until(src, stream, got, [&] { return got.size() == 5; }));

  // Delete, wait, recreate.
  REQUIRE(std::remove(path.c_str()) == 0);
  src.poll(std::chrono::milliseconds(20), [&](const raw_line& l) {
    if (auto e = stream.push(l)) got.push_back(*e);
  });
  append(path, line(5));
  CHECK(reader_test::pump_until(src, stream, got, [&] { return got.size() == 6; }));

  // copytruncate: the same file is emptied and written again from the top.
  // Like tail -F, truncation is seen as the file getting shorter than the read position, so the
  // reader looks once before the writer starts again.
  REQUIRE(::truncate(path.c_str(), 0) == 0);
  src.poll(std::chrono::milliseconds(20), [&](const raw_line& l) {
    if (auto e = stream.push(l)) got.push_back(*e);
  });
  append(path, line(6));
  CHECK(reader_test::pump_until(src, stream, got, [&] { return got.size() == 7; }));

  CHECK(seqs(got) == iota(0, 6));
  CHECK(src.stats().rotations == 2);
  CHECK(src.stats().truncations == 1);
  CHECK(stream.stats().malformed == 0);
}

TEST_CASE("from_end skips what is already there") {
  reader_test::temp_dir dir;
  const auto path = dir / "end.jsonl";
  append(path, line(0) + line(1));
  file_source_options options;
  options.follow = true;
  options.from_end = true;
  file_source src(path, options);
  event_stream stream;
  std::vector<stream_event> got;
  append(path, line(2));
  CHECK(reader_test::pump_until(src, stream, got, [&] { return got.size() == 1; }));
  CHECK(got[0].value.seq == 2);
}

TEST_CASE("wake() returns a blocked poll early") {
  reader_test::temp_dir dir;
  file_source src(dir / "idle.jsonl", file_source_options{true});
  std::thread waker([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    src.wake();
  });
  const auto start = std::chrono::steady_clock::now();
  src.poll(std::chrono::seconds(30), [](const raw_line&) {});
  waker.join();
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
}

TEST_CASE("a FIFO at the path is refused, never opened: a clear error without follow, counted and skipped with it") {
  reader_test::temp_dir dir;
  const auto path = dir / "events.jsonl";
  REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(file_source{path}, doctest::Contains("not a regular file"), std::system_error);

  file_source_options follow;
  follow.follow = true;
  file_source src(path, follow);  // used to block here in open() until a writer came
  event_stream stream;
  std::vector<stream_event> got;
  for (int i = 0; i < 3; ++i) src.poll(std::chrono::milliseconds(10), [&](const raw_line& l) {
    if (auto e = stream.push(l)) got.push_back(std::move(*e));
  });
  CHECK(src.stats().not_regular == 1);  // once per file, not once per look
  // The FIFO goes, a regular file comes: it is read.
  ::unlink(path.c_str());
  reader_test::append(path, reader_test::line(0));
  CHECK(reader_test::pump_until(src, stream, got, [&] { return got.size() == 1; }));
}

TEST_CASE("max_poll_bytes: each poll reads a bounded slice and every line comes out once (also across rotation)") {
  // A pull-mode reader holds a poll's lines until they are consumed (issue 9, defect 10).
  reader_test::temp_dir dir;
  const auto path = dir / "sliced.jsonl";
  std::string content;
  for (std::uint64_t s = 0; s < 200; ++s) content += line(s);
  append(path, content);
  const std::size_t cap = 1000;
  const std::size_t longest = line(199).size();
  event_stream stream;
  std::vector<stream_event> got;
  const auto take = [&](const raw_line& l) {
    if (auto e = stream.push(l)) got.push_back(*e);
  };
  {
    file_source_options o;
    o.max_poll_bytes = cap;
    file_source src(path, o);
    std::size_t polls = 0;
    for (bool more = true; more; ++polls) {
      const std::size_t before = got.size();
      more = src.poll(std::chrono::milliseconds(0), take);
      CHECK((got.size() - before) * line(0).size() <= cap + longest);
      REQUIRE(polls < 10000);
    }
    CHECK(polls > content.size() / cap);
    CHECK(seqs(got) == iota(0, 199));
  }

  got.clear();
  event_stream followed;
  file_source_options o{true};
  o.max_poll_bytes = cap;
  file_source src(path, o);
  REQUIRE(std::rename(path.c_str(), (dir / "sliced.jsonl.1").c_str()) == 0);  // before any read
  std::string rest;
  for (std::uint64_t s = 200; s < 300; ++s) rest += line(s);
  append(path, rest);
  const auto took = [&](const raw_line& l) {
    if (auto e = followed.push(l)) got.push_back(*e);
  };
  for (int i = 0; i < 10000 && got.size() < 300; ++i) src.poll(std::chrono::milliseconds(10), took);
  CHECK(seqs(got) == iota(0, 299));  // the old file to its end, then the new one
  CHECK(src.stats().rotations == 1);
}
