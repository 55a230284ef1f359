// The Unix socket sink against real listeners on temp paths: acknowledgements, breaks, cut lines,
// and the acceptance runs (a listener that comes and goes; one that stops reading).
#include <doctest/doctest.h>

#include <fstream>
#include <functional>
#include <set>

#include "foxml/events.hpp"
#include "foxml/events/fallback_sink.hpp"
#include "foxml/events/unix_socket_sink.hpp"
#include "support/unix_listener.hpp"

using namespace foxml::events;
using namespace foxml::events::testing;
using listener_mode = unix_listener::mode;

namespace {

bool poll_until(sink& s, const std::function<bool()>& pred, double seconds = 10) {
  return unix_listener::wait(
      [&] {
        s.poll(std::chrono::steady_clock::now());
        return pred();
      },
      seconds);
}

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("options are checked when the sink is made") {
  CHECK_THROWS_AS(unix_socket_sink("relative.sock"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(unix_socket_sink("/" + std::string(200, 'a')), doctest::Contains("at most 107"),
                       std::invalid_argument);
}

TEST_CASE("without a listener the sink refuses at once and says it is unhealthy") {
  temp_dir dir;
  unix_socket_sink s(fast_options(dir / "none.sock"));
  s.poll(std::chrono::steady_clock::now());
  CHECK_FALSE(s.healthy());
  CHECK(s.write(numbered_lines(0, 3)) == 0);
}

TEST_CASE("acknowledged lines are released, and a break hands back the rest in order") {
  temp_dir dir;
  auto listener = std::make_unique<unix_listener>(dir / "a.sock", listener_mode::ack);
  unix_socket_sink s(fast_options(dir / "a.sock"));
  REQUIRE(poll_until(s, [&] { return s.connected(); }));
  CHECK(s.healthy());
  CHECK(s.write(numbered_lines(0, 10)) == 10);
  REQUIRE(poll_until(s, [&] { return s.unacked_lines() == 0; }));
  CHECK(s.counters()->acked == 10);
  CHECK(listener->count() == 10);

  // Stop reading, then die with lines unread: they must come back through reclaim().
  listener->kill();
  listener = std::make_unique<unix_listener>(dir / "a.sock", listener_mode::no_read);
  REQUIRE(poll_until(s, [&] { return s.connected() && listener->connected(); }));
  CHECK(s.write(numbered_lines(10, 5)) == 5);
  // No ack on this connection yet: held until the listener acknowledges or the connection breaks.
  CHECK(s.unacked_lines() == 5);
  listener->kill();
  line_batch back;
  REQUIRE(poll_until(s, [&] { return !s.connected(); }));
  REQUIRE(s.reclaim(back) == 5);
  for (std::size_t i = 0; i < 5; ++i) CHECK(back.seq(i) == 10 + i);
  CHECK(s.reclaim(back) == 0);  // handed back once
}

TEST_CASE("replies that are not acks are ignored, and an ack names a seq, not a count") {
  temp_dir dir;
  const std::string path = dir / "b.sock";
  unix_listener listener(path, listener_mode::no_read);
  unix_socket_sink s(fast_options(path));
  REQUIRE(poll_until(s, [&] { return s.connected() && listener.connected(); }));
  // Lines whose seqs are not in send order (lifecycle events take a side lane).
  line_batch batch;
  for (std::uint64_t seq : {7u, 3u, 9u, 4u}) batch.append("{\"seq\":" + std::to_string(seq) + "}\n", seq);
  REQUIRE(s.write(batch) == 4);
  REQUIRE(listener.send_raw("hello\n{\"cancel\":1}\n{\"ack_seq\":x}\n{\"ack_seq\":99}\n{\"ack_seq\":9"));
  s.poll(std::chrono::steady_clock::now());
  CHECK(s.unacked_lines() == 4);  // nothing known, and the last ack is not finished yet
  REQUIRE(listener.send_raw("}\n"));
  REQUIRE(poll_until(s, [&] { return s.unacked_lines() == 1; }));  // 7, 3 and 9 released
  REQUIRE(listener.send_raw(" { \"ack_seq\" : 4 } \n"));
  REQUIRE(poll_until(s, [&] { return s.unacked_lines() == 0; }));
  CHECK(s.connected());
}

TEST_CASE("a line larger than the socket buffer goes on the wire whole") {
  temp_dir dir;
  const std::string path = dir / "c.sock";
  unix_listener listener(path, listener_mode::no_read);
  unix_socket_sink s(fast_options(path));
  REQUIRE(poll_until(s, [&] { return s.connected() && listener.connected(); }));
  const line_batch big = numbered_lines(0, 2, 4u << 20);  // two 4 MiB lines
  // The first is cut by the full buffer, the second waits in the sink's buffer: both accepted
  // (8 MiB is within max_unacked_bytes), and they go out whole, in order, as the reader reads.
  CHECK(s.write(big) == 2);
  CHECK(s.unsent_bytes() > 4u << 20);
  CHECK(s.write(numbered_lines(2, 1)) == 1);
  listener.start_reading();
  REQUIRE(poll_until(s, [&] { return s.unsent_bytes() == 0; }));
  s.close();
  REQUIRE(listener.wait_for_eof(10));
  const auto lines = listener.lines();
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == std::string(big.line(0).substr(0, big.line(0).size() - 1)));
  CHECK(lines[1] == std::string(big.line(1).substr(0, big.line(1).size() - 1)));
  CHECK(seq_of(lines[2]) == 2);
}

TEST_CASE("a listener that never acknowledges is fire-and-forget with a bounded buffer") {
  temp_dir dir;
  const std::string path = dir / "d.sock";
  unix_listener listener(path, listener_mode::no_ack);
  auto options = fast_options(path);
  options.max_unacked_lines = 8;
  unix_socket_sink s(options);
  REQUIRE(poll_until(s, [&] { return s.connected(); }));
  for (std::uint64_t i = 0; i < 5; ++i) CHECK(s.write(numbered_lines(i * 10, 10)) == 10);
  CHECK(s.unacked_lines() <= 8);
  CHECK(s.counters()->released_unacked >= 42);
  s.close();  // no ack ever seen: nothing is handed back, the listener is presumed to have read
  line_batch back;
  CHECK(s.reclaim(back) == 0);
  REQUIRE(listener.wait_for_eof(10));
  CHECK(listener.count() == 50);
}

namespace {

struct socket_then_file {
  unix_socket_sink* socket = nullptr;
  std::unique_ptr<sink> chain;
};

socket_then_file make_chain(const std::string& socket_path, const std::string& file_path) {
  socket_then_file out;
  auto socket = std::make_unique<unix_socket_sink>(fast_options(socket_path));
  out.socket = socket.get();
  std::vector<std::unique_ptr<sink>> links;
  links.push_back(std::move(socket));
  links.push_back(std::make_unique<file_sink>(file_path));
  fallback_options retry;
  retry.retry_min = std::chrono::milliseconds(2);
  retry.retry_max = std::chrono::milliseconds(20);
  out.chain = std::make_unique<fallback_sink>(std::move(links), retry);
  return out;
}

// Checks that a sink's lines parse and hold no seq twice; adds their seqs to `all`.
std::string missing(const std::set<std::uint64_t>& all, std::uint64_t total) {
  std::string out;
  int shown = 0;
  for (std::uint64_t seq = 0; seq < total && shown < 10; ++seq) {
    if (all.count(seq) == 0) {
      out += std::to_string(seq) + " ";
      ++shown;
    }
  }
  return out;
}

void collect(const std::vector<std::string>& lines, std::set<std::uint64_t>& all, const char* name) {
  std::set<std::uint64_t> own;
  for (const std::string& line : lines) {
    const decode_result decoded = decode_line(line);
    REQUIRE_MESSAGE(decoded, name << ": " << decoded.error << " in: " << line.substr(0, 200));
    const auto seq = static_cast<std::uint64_t>(seq_of(line));
    REQUIRE_MESSAGE(own.insert(seq).second, name << " holds seq " << seq << " twice");
    all.insert(seq);
  }
}

}  // namespace

TEST_CASE("acceptance: a listener absent, then present, killed and restarted three times, loses nothing") {
  temp_dir dir;
  const std::string socket_path = dir / "events.sock";
  const std::string file_path = dir / "events.jsonl";
  auto chain = make_chain(socket_path, file_path);
  auto counters = chain.socket->counters();
  emitter_options options;
  options.queue_capacity = 1u << 14;
  options.overflow = overflow_policy::block;  // this test is about the sinks: no queue drops
  options.block_timeout = std::chrono::seconds(10);
  training_event_emitter emitter("acceptance", std::move(chain.chain), options);

  constexpr int total = 100'000;
  std::vector<std::vector<std::string>> received;
  std::unique_ptr<unix_listener> listener;
  int kills = 0;
  int i = 0;
  const auto emit = [&] { emitter.emit_progress("train", i++ * 100.0 / total); };
  while (i < total) {
    if (i == 10'000 || i == 35'000 || i == 60'000 || i == 85'000) {
      listener = std::make_unique<unix_listener>(socket_path, listener_mode::ack);
    }
    if (i == 30'000 || i == 55'000 || i == 80'000 || i == 95'000) {
      // The emit loop outruns a reconnect, so keep emitting (slowly) until the listener has lines
      // of its own: each one must really be part of the run.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (listener->count() == 0 && std::chrono::steady_clock::now() < deadline) {
        emit();
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      REQUIRE(listener->count() > 0);
      if (i >= 95'000) {
        emit();
        continue;
      }
      for (int k = 0; k < 500; ++k) emit();  // and kill it with a burst in flight
      listener->kill();
      received.push_back(listener->lines());
      listener.reset();
      ++kills;
    }
    emit();
  }
  REQUIRE(emitter.close(std::chrono::seconds(20)).ok());
  listener->kill();
  received.push_back(listener->lines());

  const emitter_stats stats = emitter.stats();
  CHECK(kills == 3);
  CHECK(stats.dropped() == 0);
  CHECK(counters->connects >= 4);
  CHECK(counters->breaks >= 3);
  std::set<std::uint64_t> all;
  std::vector<std::string> listeners_lines;
  for (const auto& lines : received) {
    CHECK(!lines.empty());
    listeners_lines.insert(listeners_lines.end(), lines.begin(), lines.end());
  }
  collect(listeners_lines, all, "the listeners");
  const auto file_lines = read_lines(file_path);
  CHECK(!file_lines.empty());  // the absent and dead listener's share
  collect(file_lines, all, "the fallback file");
  const std::uint64_t seqs = stats.emitted + stats.generated;
  CHECK_MESSAGE(all.size() == seqs, "missing: " << missing(all, seqs));
  CHECK(*all.rbegin() == seqs - 1);
  MESSAGE("listeners " << listeners_lines.size() << " in " << received.size() << ", file " << file_lines.size() << ", reclaimed "
                       << counters->reclaimed.load() << ", acked " << counters->acked.load());
}

TEST_CASE("acceptance: a listener that stops reading slows nothing, and events flow to the fallback") {
  temp_dir dir;
  const std::string socket_path = dir / "events.sock";
  const std::string file_path = dir / "events.jsonl";
  unix_listener listener(socket_path, listener_mode::no_read);
  auto chain = make_chain(socket_path, file_path);
  auto counters = chain.socket->counters();
  emitter_options options;
  // A small queue with the blocking policy: were the worker held up by the socket, emit calls
  // would wait for it (up to block_timeout each) and show up as blocked calls.
  options.queue_capacity = 1024;
  options.overflow = overflow_policy::block;
  options.block_timeout = std::chrono::seconds(2);
  training_event_emitter emitter("stalled", std::move(chain.chain), options);

  constexpr int total = 50'000;
  int blocked = 0;
  for (int i = 0; i < total; ++i) {
    const auto start = std::chrono::steady_clock::now();
    emitter.emit_progress("train", i * 100.0 / total);
    // Far above any scheduling hiccup, far below block_timeout.
    if (std::chrono::steady_clock::now() - start > std::chrono::milliseconds(250)) ++blocked;
  }
  REQUIRE(emitter.close(std::chrono::seconds(20)).ok());
  CHECK(blocked <= 2);
  CHECK(emitter.stats().dropped() == 0);
  CHECK(listener.connected());
  CHECK(counters->would_block > 0);  // the socket really was full
  const auto file_lines = read_lines(file_path);
  CHECK(file_lines.size() > total / 2);

  // What the socket did take is in the listener's buffer: read it now, and nothing is missing.
  listener.start_reading();
  REQUIRE(listener.wait_for_eof(20));
  std::set<std::uint64_t> all;
  collect(listener.lines(), all, "the listener");
  collect(file_lines, all, "the fallback file");
  const std::uint64_t seqs = emitter.stats().emitted + emitter.stats().generated;
  CHECK_MESSAGE(all.size() == seqs, "missing: " << missing(all, seqs));
  MESSAGE("listener " << listener.count() << ", file " << file_lines.size() << ", blocked calls " << blocked);
}

TEST_CASE("a live listener slower than a burst gets every event, buffered within the bound, none to the fallback") {
  temp_dir dir;
  const std::string socket_path = dir / "slow.sock";
  const std::string file_path = dir / "slow.jsonl";
  unix_listener listener(socket_path, listener_mode::no_read);
  auto chain = make_chain(socket_path, file_path);
  emitter_options options;
  options.overflow = overflow_policy::block;  // only the sinks decide where events go
  options.block_timeout = std::chrono::seconds(60);
  options.heartbeat_interval = std::chrono::milliseconds(0);  // counts lines exactly: none of the library's own
  training_event_emitter emitter("slow-listener", std::move(chain.chain), options);
  REQUIRE(unix_listener::wait([&] { return listener.connected(); }, 20));
  constexpr int total = 20'000;  // ~5 MB: far over the socket buffer, within the sink's 16 MiB
  for (int i = 0; i < total; ++i) emitter.emit_metrics(i, {{"loss", 0.5}, {"acc", 0.25}});
  REQUIRE(emitter.flush().ok());
  // The listener was alive all along, only behind: it catches up and gets everything.
  listener.start_reading();
  REQUIRE(unix_listener::wait([&] { return listener.count() >= total; }, 60));
  REQUIRE(emitter.close(std::chrono::seconds(20)).ok());
  REQUIRE(listener.wait_for_eof(20));
  CHECK(emitter.stats().dropped() == 0);
  CHECK(listener.count() == total);
  CHECK(read_lines(file_path).empty());
}

TEST_CASE("when a listener falls behind past the bound, the stream says where the rest went") {
  temp_dir dir;
  const std::string socket_path = dir / "behind.sock";
  const std::string file_path = dir / "behind.jsonl";
  unix_listener listener(socket_path, listener_mode::no_read);
  auto socket_options = fast_options(socket_path);
  socket_options.max_unacked_bytes = 64u << 10;  // a small bound, so the burst overflows it
  std::vector<std::unique_ptr<sink>> links;
  links.push_back(std::make_unique<unix_socket_sink>(socket_options));
  links.push_back(std::make_unique<file_sink>(file_path));
  fallback_options retry;
  retry.retry_min = std::chrono::milliseconds(2);
  retry.retry_max = std::chrono::milliseconds(20);
  emitter_options options;
  options.overflow = overflow_policy::block;
  options.block_timeout = std::chrono::seconds(60);
  training_event_emitter emitter("behind", std::make_unique<fallback_sink>(std::move(links), retry), options);
  REQUIRE(unix_listener::wait([&] { return listener.connected(); }, 20));
  constexpr int total = 20'000;
  for (int i = 0; i < total; ++i) emitter.emit_metrics(i, {{"loss", 0.5}});
  REQUIRE(emitter.flush().ok());
  listener.start_reading();
  // Once it reads again the socket takes over with the next events, and tells its reader where
  // the rest went.
  const auto said = [&](const std::vector<std::string>& lines, const std::string& what) {
    for (const auto& line : lines) {
      if (line.find("\"event_type\":\"log\"") != std::string::npos && line.find(what) != std::string::npos) return true;
    }
    return false;
  };
  REQUIRE(unix_listener::wait(
      [&] {
        emitter.emit_log("info", "later");
        return said(listener.lines(), "took over again");
      },
      30));
  REQUIRE(emitter.close(std::chrono::seconds(20)).ok());
  REQUIRE(listener.wait_for_eof(20));
  const auto file_lines = read_lines(file_path);
  CHECK(emitter.stats().dropped() == 0);
  CHECK(said(file_lines, "unix://" + socket_path + " fell behind; events from seq "));
  CHECK(said(file_lines, " continue in file://" + file_path));
  CHECK(said(listener.lines(), "unix://" + socket_path + " took over again at seq "));
  CHECK(said(listener.lines(), " went to file://" + file_path));
  std::set<std::uint64_t> all;
  collect(listener.lines(), all, "the listener");
  collect(file_lines, all, "the fallback file");
  const std::uint64_t seqs = emitter.stats().emitted + emitter.stats().generated;
  CHECK_MESSAGE(all.size() == seqs, "missing: " << missing(all, seqs));
}

TEST_CASE("a command the listener writes on the connection reaches the emitter and is acknowledged in the stream") {
  temp_dir dir;
  const std::string path = dir / "c.sock";
  unix_listener listener(path, listener_mode::ack);
  emitter_options o;
  o.control_endpoint = control_endpoint_mode::off;  // the connection alone carries the command
  training_event_emitter emitter("sock-run", std::make_unique<unix_socket_sink>(fast_options(path)), o);
  emitter.emit_log("info", "hello");
  REQUIRE(unix_listener::wait([&] { return listener.count() >= 1; }, 20));
  // Not a command (another run, an ack-like line, garbage) next to one that is, cut in two writes.
  REQUIRE(listener.send_raw("{\"command\":\"cancel\",\"id\":\"x1\",\"run_id\":\"other\"}\nnoise\n{\"command\":\"ca"));
  REQUIRE(listener.send_raw("ncel\",\"id\":\"s1\",\"run_id\":\"sock-run\",\"sender\":\"u@h:9\"}\n"));
  REQUIRE(unix_listener::wait([&] { return emitter.should_stop(); }, 20));
  auto c = emitter.poll_command();
  REQUIRE(c);
  CHECK(c->id == "s1");
  CHECK(c->sender == "u@h:9");
  // Sent again (a relay's retry): acknowledged once only.
  REQUIRE(listener.send_raw("{\"command\":\"cancel\",\"id\":\"s1\",\"run_id\":\"sock-run\"}\n"));
  REQUIRE(unix_listener::wait([&] { return emitter.stats().commands_duplicate == 1; }, 20));
  CHECK(emitter.stats().commands_refused == 1);  // the other run's
  REQUIRE(emitter.close().ok());
  std::size_t acknowledged = 0;
  for (const auto& line : listener.lines()) {
    if (line.find("\"event_type\":\"command_received\"") != std::string::npos) {
      ++acknowledged;
      CHECK(line.find("\"command_id\":\"s1\"") != std::string::npos);
    }
  }
  CHECK(acknowledged == 1);
}
