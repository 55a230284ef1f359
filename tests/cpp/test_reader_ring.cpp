// The ring buffer: history then live events, nothing missed or doubled at the seam.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "fixtures/reader_helpers.hpp"
#include "foxml/events/reader/ring_buffer.hpp"

using namespace foxml::events::reader;

namespace {
stream_event make(std::uint64_t seq) {
  stream_event e;
  e.value.run_id = "r";
  e.value.host = "h";
  e.value.pid = 1;
  e.value.seq = seq;
  return e;
}
}  // namespace

TEST_CASE("a late joiner at 50k of 100k events sees all 100k exactly once") {
  constexpr std::uint64_t total = 100000;
  ring_buffer ring(1 << 17);
  std::atomic<bool> half{false};
  std::thread writer([&] {
    for (std::uint64_t i = 0; i < total; ++i) {
      ring.push(make(i));
      if (i + 1 == total / 2) half = true;
    }
  });
  while (!half) std::this_thread::yield();
  std::vector<std::uint64_t> seen;
  std::uint64_t cursor = 0, missed = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (seen.size() < total && std::chrono::steady_clock::now() < deadline) {
    auto r = ring.wait_since(cursor, std::chrono::milliseconds(100), 4096);
    for (const auto& e : r.events) seen.push_back(e->value.seq);
    missed += r.missed;
    cursor = r.next;
  }
  writer.join();
  CHECK(missed == 0);
  REQUIRE(seen.size() == total);
  for (std::uint64_t i = 0; i < total; ++i) {
    if (seen[i] != i) FAIL("event " << i << " out of place: " << seen[i]);
  }
  CHECK(ring.read_since(cursor).events.empty());
}

TEST_CASE("a reader that falls behind the ring learns how much it missed") {
  ring_buffer ring(10);
  for (std::uint64_t i = 0; i < 25; ++i) ring.push(make(i));
  auto r = ring.read_since(0);
  CHECK(r.missed == 15);
  REQUIRE(r.events.size() == 10);
  CHECK(r.events.front()->value.seq == 15);
  CHECK(r.next == 25);
  CHECK(ring.begin() == 15);
  CHECK(ring.end() == 25);
}

TEST_CASE("find() gives the cursor of 'since seq X of that emitter'") {
  ring_buffer ring(100);
  for (std::uint64_t i = 0; i < 20; ++i) ring.push(make(i));
  const auto cursor = ring.find(emitter_key{"r", "h", 1}, 12);
  CHECK(cursor == 12);
  CHECK(ring.read_since(cursor).events.front()->value.seq == 12);
  CHECK(ring.find(emitter_key{"other", "h", 1}, 0) == ring.end());
}

TEST_CASE("close() wakes a waiting reader") {
  ring_buffer ring(4);
  std::thread closer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ring.close();
  });
  auto r = ring.wait_since(0, std::chrono::seconds(30));
  closer.join();
  CHECK(r.events.empty());
}
