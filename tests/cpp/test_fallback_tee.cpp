// The fallback chain and the tee with real sinks: a Unix socket with and without its listener, a
// file on a full device (/dev/full), and memory sinks.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "foxml/events/emitter.hpp"
#include "foxml/events/fallback_sink.hpp"
#include "foxml/events/file_sink.hpp"
#include "foxml/events/memory_sink.hpp"
#include "foxml/events/tee_sink.hpp"
#include "foxml/events/unix_socket_sink.hpp"
#include "support/unix_listener.hpp"

using namespace foxml::events;
using namespace foxml::events::testing;

namespace {

std::unique_ptr<unix_socket_sink> socket_to(const std::string& path) {
  unix_socket_options o;
  o.path = path;
  o.reconnect_min = std::chrono::milliseconds(1);
  o.reconnect_max = std::chrono::milliseconds(5);
  return std::make_unique<unix_socket_sink>(o);
}

fallback_options fast_retry() {
  fallback_options o;
  o.retry_min = std::chrono::milliseconds(1);
  o.retry_max = std::chrono::milliseconds(5);
  return o;
}

std::set<long long> seqs(const std::vector<std::string>& lines) {
  std::set<long long> out;
  for (const auto& line : lines) out.insert(seq_of(line));
  return out;
}

}  // namespace

TEST_CASE("a chain needs sinks") {
  CHECK_THROWS_AS(fallback_sink({}), std::invalid_argument);
  std::vector<std::unique_ptr<sink>> with_null;
  with_null.push_back(nullptr);
  CHECK_THROWS_AS(fallback_sink(std::move(with_null)), std::invalid_argument);
  CHECK_THROWS_AS(tee_sink({}), std::invalid_argument);
}

TEST_CASE("a failing primary hands over with no gap, and takes over again when it is back") {
  temp_dir dir;
  const std::string path = dir / "p.sock";
  auto memory = std::make_shared<memory_store>();
  std::vector<std::unique_ptr<sink>> links;
  links.push_back(socket_to(path));
  links.push_back(std::make_unique<memory_sink>(memory));
  fallback_sink chain(std::move(links), fast_retry());

  chain.poll(std::chrono::steady_clock::now());
  CHECK(chain.write(numbered_lines(0, 10)) == 10);  // no listener: all to the second link
  CHECK(memory->size() == 10);

  unix_listener listener(path, unix_listener::mode::ack);
  std::uint64_t next = 10;
  // Keep writing while the primary reconnects; every line lands somewhere, exactly once.
  REQUIRE(unix_listener::wait(
      [&] {
        chain.poll(std::chrono::steady_clock::now());
        CHECK(chain.write(numbered_lines(next, 5)) == 5);
        next += 5;
        return listener.count() > 0;
      },
      10));
  const std::size_t in_memory = memory->size();
  CHECK(chain.write(numbered_lines(next, 5)) == 5);  // the primary has taken over again
  next += 5;
  CHECK(memory->size() == in_memory);
  REQUIRE(unix_listener::wait([&] { return listener.count() + memory->size() == next; }, 10));
  std::set<long long> all = seqs(listener.lines());
  for (long long s : seqs(memory->lines())) CHECK(all.insert(s).second);
  CHECK(all.size() == next);
}

TEST_CASE("lines a broken socket hands back go to the next link, not back to the socket") {
  temp_dir dir;
  const std::string path = dir / "q.sock";
  auto memory = std::make_shared<memory_store>();
  std::vector<std::unique_ptr<sink>> links;
  links.push_back(socket_to(path));
  links.push_back(std::make_unique<memory_sink>(memory));
  fallback_sink chain(std::move(links), fast_retry());

  auto listener = std::make_unique<unix_listener>(path, unix_listener::mode::no_read);
  REQUIRE(unix_listener::wait(
      [&] {
        chain.poll(std::chrono::steady_clock::now());
        return chain.healthy() && listener->connected();
      },
      10));
  CHECK(chain.write(numbered_lines(0, 20)) == 20);
  CHECK(memory->size() == 0);
  listener->kill();  // dies without reading a line
  line_batch lost;
  REQUIRE(unix_listener::wait(
      [&] {
        chain.poll(std::chrono::steady_clock::now());
        CHECK(chain.reclaim(lost) == 0);  // all placed in memory, so nothing is lost
        return memory->size() == 20;
      },
      10));
  CHECK(seqs(memory->lines()).size() == 20);
}

TEST_CASE("a file that fails (a full device) falls back, and what nobody takes is refused") {
  auto memory = std::make_shared<memory_store>();
  std::vector<std::unique_ptr<sink>> links;
  links.push_back(std::make_unique<file_sink>("/dev/full"));
  links.push_back(std::make_unique<memory_sink>(memory));
  fallback_sink chain(std::move(links), fast_retry());
  CHECK(chain.write(numbered_lines(0, 7)) == 7);
  CHECK(memory->size() == 7);

  std::vector<std::unique_ptr<sink>> only_full;
  only_full.push_back(std::make_unique<file_sink>("/dev/full"));
  fallback_sink dead(std::move(only_full), fast_retry());
  CHECK(dead.write(numbered_lines(0, 3)) == 0);
}

TEST_CASE("a tee sends every line to every sink and counts a line delivered if any took it") {
  temp_dir dir;
  auto a = std::make_shared<memory_store>();
  auto b = std::make_shared<memory_store>();
  std::vector<std::unique_ptr<sink>> branches;
  branches.push_back(std::make_unique<memory_sink>(a));
  branches.push_back(socket_to(dir / "absent.sock"));  // refuses everything
  branches.push_back(std::make_unique<memory_sink>(b));
  tee_sink tee(std::move(branches));
  CHECK(tee.write(numbered_lines(0, 4)) == 4);
  CHECK(a->lines() == b->lines());
  CHECK(a->size() == 4);
  CHECK(tee.healthy());
  CHECK(tee.describe() == "memory:// | unix://" + (dir / "absent.sock") + " | memory://");
}

TEST_CASE("a socket in a tee gets the very first line when its listener is already there") {
  temp_dir dir;
  const std::string path = dir / "tee.sock";
  unix_listener listener(path, unix_listener::mode::ack);
  auto file = std::make_shared<memory_store>();
  std::vector<std::unique_ptr<sink>> branches;
  branches.push_back(socket_to(path));
  branches.push_back(std::make_unique<memory_sink>(file));
  tee_sink tee(std::move(branches));
  // No poll() before the first write: the socket connects on its own first write.
  CHECK(tee.write(numbered_lines(0, 3)) == 3);
  REQUIRE(unix_listener::wait([&] { return listener.count() == 3; }, 10));
  CHECK(seqs(listener.lines()) == std::set<long long>{0, 1, 2});
  CHECK(file->size() == 3);
}

namespace {

struct tee_run {
  std::vector<std::string> listened;
  std::vector<std::string> filed;
  emitter_stats stats;
  std::uint64_t socket_branch_lost = 0;
  std::uint64_t file_branch_lost = 0;
};

// A burst through `unix:// | file://` while the listener reads nothing; it starts reading after
// the burst (a slow consumer), then the emitter closes.
tee_run tee_burst(std::size_t events, tee_options options) {
  temp_dir dir;
  const std::string path = dir / "slow.sock";
  unix_listener listener(path, unix_listener::mode::no_read);
  std::vector<std::unique_ptr<sink>> branches;
  auto socket = socket_to(path);
  // The socket sink's own buffer is kept small, so the lag lands in the tee's backlog.
  unix_socket_options small = socket->options();
  small.max_unacked_bytes = 64u << 10;
  branches.push_back(std::make_unique<unix_socket_sink>(small));
  branches.push_back(std::make_unique<file_sink>(dir / "tee.jsonl"));
  auto tee = std::make_unique<tee_sink>(std::move(branches), options);
  tee_sink* view = tee.get();
  emitter_options eo;
  eo.overflow = overflow_policy::block;  // the queue loses nothing: only the tee's branch can
  eo.block_timeout = std::chrono::seconds(60);
  eo.heartbeat_interval = std::chrono::milliseconds(0);  // counts lines exactly: none of the library's own
  tee_run run;
  {
    training_event_emitter emitter("run-tee", std::move(tee), eo);
    const std::string padding(100, 'p');
    for (std::size_t i = 0; i < events; ++i) emitter.emit_log("info", padding);
    REQUIRE(unix_listener::wait([&] { return listener.connected(); }, 20));
    listener.start_reading();
    REQUIRE(emitter.close(std::chrono::seconds(60)).ok());
    run.stats = emitter.stats();
    run.socket_branch_lost = view->dropped(0);
    run.file_branch_lost = view->dropped(1);
  }
  REQUIRE(listener.wait_for_eof(20));
  run.listened = listener.lines();
  {
    std::ifstream in(dir / "tee.jsonl");
    for (std::string line; std::getline(in, line);) run.filed.push_back(line);
  }
  return run;
}

}  // namespace

TEST_CASE("a tee's lagging socket branch gets every line from its backlog, in order") {
  tee_options options;
  options.retry_timeout = std::chrono::seconds(60);  // only the bound may cost lines here
  constexpr std::size_t events = 100'000;            // ~20 MB: over the socket buffer, within the backlog
  options.backlog_bytes = 64u << 20;
  const auto run = tee_burst(events, options);
  CHECK(run.filed.size() == events);
  REQUIRE(run.listened.size() == events);
  for (std::size_t i = 0; i < run.listened.size(); ++i) REQUIRE(seq_of(run.listened[i]) == static_cast<long long>(i));
  CHECK(run.socket_branch_lost == 0);
  CHECK(run.stats.dropped() == 0);
  CHECK(run.stats.written == events);
}

TEST_CASE("a tee branch over its backlog bound loses lines counted for that branch and reported in its stream") {
  tee_options options;
  options.retry_timeout = std::chrono::seconds(60);
  options.backlog_bytes = 256u << 10;
  constexpr std::size_t events = 50'000;
  const auto run = tee_burst(events, options);
  CHECK(run.file_branch_lost == 0);
  CHECK(run.socket_branch_lost > 0);
  // Each line the tee took reached the file; the socket got it or counted it lost.
  CHECK(run.listened.size() + run.socket_branch_lost == run.filed.size());
  // The emitter counts each lost line once, and its books still balance.
  CHECK(run.stats.dropped_sink == run.socket_branch_lost);
  CHECK(run.stats.emitted + run.stats.generated == run.stats.written + run.stats.dropped());
  // The listener is told: `dropped` events in its stream account for what it did not get.
  std::uint64_t reported = 0;
  for (const auto& line : run.listened) {
    if (line.find("\"event_type\":\"dropped\"") != std::string::npos) reported += nlohmann::json::parse(line)["count"].get<std::uint64_t>();
  }
  CHECK(reported > 0);
  CHECK(reported <= run.socket_branch_lost);
}
