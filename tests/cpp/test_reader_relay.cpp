// The socket listener's command relay: a control client's command reaches the run's emitter
// connections (not the others, not the event stream), the client gets the answer and then the
// forwarded command_received; unknown runs, refused lines, and a backed-up emitter (the listener
// never waits on it: dropped, counted). live_reader::send_command drives the relay in pull mode.
#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <thread>

#include "fixtures/reader_helpers.hpp"
#include "fixtures/unix_peer.hpp"
#include "foxml/events.hpp"
#include "foxml/events/reader/commands.hpp"
#include "foxml/events/reader/live_reader.hpp"
#include "foxml/events/reader/socket_source.hpp"

using namespace foxml::events::reader;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

using reader_test::connect_to;
using reader_test::send_all;

// Reads lines from `fd` (acks skipped) until one contains `needle`, or 10 s pass.
std::string read_until(int fd, const std::string& needle, std::string& buffer) {
  const auto until = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    for (auto nl = buffer.find('\n'); nl != std::string::npos; nl = buffer.find('\n')) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      if (line.find(needle) != std::string::npos) return line;
    }
    if (std::chrono::steady_clock::now() > until) return {};
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char chunk[4096];
    const auto n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return {};
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
}

// As the emitter writes it: event_type, then run_id, first.
std::string received_line(const std::string& run, const std::string& id, std::uint64_t seq) {
  return nlohmann::ordered_json{{"event_type", "command_received"}, {"run_id", run}, {"timestamp", "2026-01-21T10:00:00.000000+00:00"},
              {"seq", seq}, {"pid", 7}, {"host", "h"}, {"rank", 0}, {"world_size", 1}, {"command", "cancel"},
              {"command_id", id}, {"sender", "u@h:1"}}.dump() + "\n";
}

}  // namespace

TEST_CASE("relay: the command reaches the run's connection only, the client gets delivered and command_received") {
  reader_test::temp_dir dir;
  const std::string path = dir / "s.sock";
  socket_source src(path);
  event_stream stream;
  std::vector<stream_event> got;
  const int e1 = connect_to(path);
  const int e2 = connect_to(path);
  send_all(e1, reader_test::line(0, "r1"));
  send_all(e2, reader_test::line(0, "r2", "heartbeat", 8));
  REQUIRE(reader_test::pump_until(src, stream, got, [&] { return got.size() == 2; }));

  auto reply = std::async(std::launch::async, [&] {
    return send_command_relay(path, command_request{"r1", "cancel", "{\"why\":1}", "", ""}, 10s);
  });
  std::string b1, b2;
  std::string cmd_text;
  std::thread emitter([&] {
    cmd_text = read_until(e1, "\"command\"", b1);
    if (cmd_text.empty()) return;
    send_all(e1, received_line("r1", json::parse(cmd_text)["id"], 1));
  });
  REQUIRE(reader_test::pump_until(src, stream, got, [&] { return reply.wait_for(0ms) == std::future_status::ready; }));
  emitter.join();
  const auto result = reply.get();
  CHECK(result.ok);
  CHECK(result.acknowledged);
  CHECK(result.via == "relay");
  CHECK(result.delivered == 1);
  REQUIRE(result.received.size() == 1);
  CHECK(json::parse(result.received[0])["command_id"] == result.id);
  const json cmd = json::parse(cmd_text);
  CHECK(cmd["command"] == "cancel");
  CHECK(cmd["id"] == result.id);
  CHECK(cmd["arg"] == json{{"why", 1}});
  // The other run's connection got nothing but its ack; the stream saw only events.
  pollfd p{e2, POLLIN, 0};
  std::string other;
  while (::poll(&p, 1, 50) > 0) {
    char chunk[4096];
    const auto n = ::recv(e2, chunk, sizeof chunk, 0);
    if (n <= 0) break;
    other.append(chunk, static_cast<std::size_t>(n));
  }
  CHECK(other.find("command") == std::string::npos);
  REQUIRE(got.size() == 3);
  CHECK(got[2].line.find("command_received") != std::string::npos);
  const auto stats = src.stats();
  CHECK(stats.control_clients == 1);
  CHECK(stats.commands_relayed == 1);
  CHECK(stats.acks_forwarded == 1);
  ::close(e1);
  ::close(e2);
}

TEST_CASE("relay: unknown run and non-command lines are answered with an error, counted") {
  reader_test::temp_dir dir;
  const std::string path = dir / "s.sock";
  socket_source src(path);
  event_stream stream;
  std::vector<stream_event> got;
  auto reply = std::async(std::launch::async, [&] {
    return send_command_relay(path, command_request{"ghost", "pause", "", "", ""}, 10s);
  });
  REQUIRE(reader_test::pump_until(src, stream, got, [&] { return reply.wait_for(0ms) == std::future_status::ready; }));
  const auto result = reply.get();
  CHECK_FALSE(result.ok);
  CHECK(result.unknown_run);
  CHECK(result.error == "unknown run ghost");

  const int client = connect_to(path);
  send_all(client, R"({"command":"cancel","id":"a","run_id":"x"})" "\n" R"({"hello":1})" "\n"
                   R"({"command":"bad name","id":"b","run_id":"x"})" "\n");
  std::string buffer;
  std::string answers[3];
  for (auto& a : answers) {
    std::atomic<bool> more{true};
    std::thread pump([&] {
      while (more) src.poll(20ms, [](const raw_line&) {});
    });
    a = read_until(client, "\"ok\"", buffer);
    more = false;
    pump.join();
  }
  CHECK(answers[0].find("unknown run x") != std::string::npos);
  CHECK(answers[1].find("malformed command") != std::string::npos);
  CHECK(answers[2].find("must be a name") != std::string::npos);
  CHECK(src.stats().commands_refused == 2);
  CHECK(src.stats().commands_unknown_run == 2);
  CHECK(got.empty());
  ::close(client);
}

TEST_CASE("relay: an emitter that does not read never blocks the listener - commands past the bound are dropped") {
  reader_test::temp_dir dir;
  const std::string path = dir / "s.sock";
  socket_source_options options;
  options.max_pending_write_bytes = 4096;
  socket_source src(path, options);
  event_stream stream;
  std::vector<stream_event> got;
  const int emitter = connect_to(path);  // never reads
  send_all(emitter, reader_test::line(0, "r1"));
  REQUIRE(reader_test::pump_until(src, stream, got, [&] { return got.size() == 1; }));
  const int client = connect_to(path);
  std::atomic<bool> more{true};
  std::thread pump([&] {
    while (more) src.poll(20ms, [](const raw_line&) {});
  });
  // Enough commands to fill the socket's buffer and then the bound.
  std::string buffer;
  bool dropped = false;
  for (int i = 0; i < 20000 && !dropped; ++i) {
    send_all(client, json{{"command", "checkpoint"}, {"id", std::to_string(i)}, {"run_id", "r1"},
                          {"arg", std::string(200, 'x')}}.dump() + "\n");
    const std::string answer = read_until(client, "\"ok\"", buffer);
    REQUIRE_FALSE(answer.empty());
    dropped = answer.find("not reading") != std::string::npos;
  }
  more = false;
  pump.join();
  CHECK(dropped);
  CHECK(src.stats().commands_dropped == 1);
  CHECK(src.stats().commands_relayed > 0);
  ::close(client);
  ::close(emitter);
}

TEST_CASE("live_reader::send_command relays through its own socket source while it reads (pull mode)") {
  reader_test::temp_dir dir;
  const std::string path = dir / "s.sock";
  live_reader reader("unix://" + path);
  const int e1 = connect_to(path);
  send_all(e1, reader_test::line(0, "r1"));
  std::thread emitter([&] {
    std::string buffer;
    const std::string cmd = read_until(e1, "\"command\"", buffer);
    if (!cmd.empty()) send_all(e1, received_line("r1", json::parse(cmd)["id"], 1));
  });
  // The connection must have sent its first line before the relay knows its run.
  while (reader.runs().empty()) reader.poll(20ms);
  const auto result = reader.send_command("r1", "cancel", "", 10s);
  emitter.join();
  CHECK(result.ok);
  CHECK(result.acknowledged);
  CHECK(result.via == "relay");
  const auto unknown = reader.send_command("nope", "cancel", "", 5s);
  CHECK(unknown.unknown_run);
  CHECK_THROWS_AS(reader.send_command("r1", "not valid!"), std::invalid_argument);
  // What the wait read is still handed out.
  bool saw_received = false;
  for (int i = 0; i < 100 && !saw_received; ++i) {
    for (const auto& item : reader.poll(20ms)) {
      if (item.event && item.event->line.find("command_received") != std::string::npos) saw_received = true;
    }
  }
  CHECK(saw_received);
  ::close(e1);
}

TEST_CASE("live_reader::send_command on a file source uses <dir>/control") {
  reader_test::temp_dir dir;
  reader_test::append(dir / "events.jsonl", reader_test::line(0, "r1"));
  live_reader reader(dir / "events.jsonl");
  const auto result = reader.send_command("r1", "cancel", "", 1s);
  CHECK(result.unknown_run);
  CHECK(result.via == "control");
  CHECK(result.error.find(dir / "events.jsonl" + "/control") == std::string::npos);
  CHECK(result.error.find(dir.path() + "/control") != std::string::npos);
}

TEST_CASE("a real emitter behind a socket listener: cancel relayed, should_stop(), command_received forwarded") {
  reader_test::temp_dir dir;
  const std::string path = dir / "s.sock";
  live_reader reader("unix://" + path);
  reader.start();
  foxml::events::emitter_options o;
  o.control_endpoint = foxml::events::control_endpoint_mode::off;  // the relay is the only way in
  foxml::events::training_event_emitter emitter("sock-run", std::make_unique<foxml::events::unix_socket_sink>(path), o);
  emitter.emit_heartbeat();
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!reader.run("sock-run") && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(10ms);
  REQUIRE(reader.run("sock-run"));
  // The emitter takes commands on its worker; the loop sees them at its next emit or poll.
  std::atomic<bool> done{false};
  std::thread loop([&] {
    while (!done && !emitter.should_stop()) {
      emitter.emit_heartbeat();
      std::this_thread::sleep_for(5ms);
    }
  });
  const auto result = reader.send_command("sock-run", "cancel", "", 10s);
  done = true;
  loop.join();
  CHECK(result.acknowledged);
  CHECK(result.delivered == 1);
  CHECK(emitter.should_stop());
  REQUIRE(result.received.size() == 1);
  CHECK(json::parse(result.received[0])["sender"].get<std::string>().find('@') != std::string::npos);
  emitter.close();
}
