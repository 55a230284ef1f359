// The emitter side of the control back-channel: command parsing, the endpoint path rule, the
// inbox (dedupe, bounds, callbacks on the emitting thread, the pause helper) and the per-run
// control endpoint, driven by a raw socket client.
#include <doctest/doctest.h>

#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "foxml/events.hpp"
#include "support/control_client.hpp"
#include "test_support.hpp"

namespace fe = foxml::events;
using fe::testing::command_line;
using fe::testing::control_client;
using fe::testing::eventually;
using fe::testing::temp_dir;
using nlohmann::json;

namespace {

std::vector<fe::event> events_of_type(const std::vector<std::string>& lines, fe::event_type type) {
  std::vector<fe::event> out;
  for (const auto& line : lines) {
    auto decoded = fe::decode_line(line);
    REQUIRE_MESSAGE(decoded, decoded.error);
    if (decoded.value->type == type) out.push_back(*decoded.value);
  }
  return out;
}

fe::emitter_options quick() {
  fe::emitter_options o;
  o.close_timeout = std::chrono::seconds(5);
  return o;
}

}  // namespace

TEST_CASE("parse_command takes the documented line and refuses the rest") {
  auto ok = fe::parse_command(command_line("checkpoint", "a1", "r", "{\"tag\":\"x\"}") + "\n");
  REQUIRE(ok.value);
  CHECK(ok.value->name == "checkpoint");
  CHECK(ok.value->id == "a1");
  CHECK(ok.value->run_id == "r");
  CHECK(ok.value->sender == "test@host:1");
  CHECK(ok.value->arg_json == "{\"tag\":\"x\"}");
  // A non-object argument is wrapped.
  CHECK(fe::parse_command(command_line("lr", "a2", "r", "0.5")).value->arg_json == "{\"value\":0.5}");
  CHECK_FALSE(fe::parse_command("not json").value);
  CHECK_FALSE(fe::parse_command(command_line("bad name", "a", "r")).value);
  CHECK_FALSE(fe::parse_command(command_line("x", "", "r")).value);
  CHECK_FALSE(fe::parse_command(command_line("x", std::string(65, 'i'), "r")).value);
  CHECK_FALSE(fe::parse_command("{\"command\":\"x\",\"id\":\"1\"}").value);  // no run id
  CHECK_FALSE(fe::parse_command("{\"command\":\"x\",\"id\":\"1\",\"run_id\":\"r\",\"pad\":\"" +
                                std::string(5000, 'p') + "\"}").value);
  CHECK(fe::looks_like_command(command_line("x", "1", "r")));
  CHECK_FALSE(fe::looks_like_command("{\"ack_seq\":3}"));
  CHECK_FALSE(fe::looks_like_command("{\"event_type\":\"log\",\"run_id\":\"r\",\"command\":\"x\"}"));
  // command_to_json is what a sender writes, and parses back.
  fe::command c{"pause", "id-1", "me@h:2", "run/1", "{\"a\":1}"};
  auto back = fe::parse_command(fe::command_to_json(c));
  REQUIRE(back.value);
  CHECK(back.value->run_id == "run/1");
  CHECK(back.value->arg_json == "{\"a\":1}");
  CHECK_THROWS_AS(fe::command_to_json(fe::command{"no way", "1", "", "r", ""}), std::invalid_argument);
}

TEST_CASE("control_endpoint_path escapes the run id and hashes one too long for a socket") {
  CHECK(fe::control_endpoint_path("/d/control", "run-1.a_b", 42) == "/d/control/run-1.a_b.42.sock");
  CHECK(fe::control_endpoint_path("/d/control/", "a b/c", 7) == "/d/control/a%20b%2Fc.7.sock");
  const std::string long_id(200, 'x');
  const std::string hashed = fe::control_endpoint_path("/d/control", long_id, 7);
  CHECK(hashed.size() <= 107);
  CHECK(hashed.rfind("/d/control/h", 0) == 0);
  CHECK(hashed.size() == std::string("/d/control/h").size() + 16 + std::string(".7.sock").size());
  CHECK(fe::control_endpoint_path("/d/control", long_id + "y", 7) != hashed);
  CHECK(fe::control_directory_for("/a/b/events.jsonl") == "/a/b/control");
  CHECK(fe::control_directory_for("events.jsonl") == "control");
}

TEST_CASE("a command on the control endpoint is acknowledged, deduplicated and reaches the loop") {
  temp_dir dir;
  const std::string file = dir.file("events.jsonl");
  fe::training_event_emitter emitter("run-1", std::make_unique<fe::file_sink>(file), quick());
  const std::string path = emitter.control_endpoint_path();
  REQUIRE(path == fe::control_endpoint_path(dir.file("control"), "run-1", getpid()));

  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::lstat(dir.file("control").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);

  CHECK_FALSE(emitter.should_stop());
  control_client client(path);
  REQUIRE(client.connected());
  auto reply = json::parse(client.ask(command_line("cancel", "c1", "run-1")));
  CHECK(reply["ok"] == true);
  CHECK(reply["id"] == "c1");
  CHECK(reply["duplicate"] == false);
  CHECK(emitter.should_stop());  // set by the time the endpoint answered

  // The same id again: acknowledged as a duplicate, no second delivery.
  reply = json::parse(client.ask(command_line("cancel", "c1", "run-1")));
  CHECK(reply["ok"] == true);
  CHECK(reply["duplicate"] == true);

  // Another run's command, a malformed line: refused, with the reason.
  reply = json::parse(client.ask(command_line("cancel", "c2", "run-2")));
  CHECK(reply["ok"] == false);
  CHECK(reply["error"].get<std::string>().find("run-2") != std::string::npos);
  reply = json::parse(client.ask("{\"command\":"));
  CHECK(reply["ok"] == false);

  // A status query.
  reply = json::parse(client.ask("{\"query\":\"status\"}"));
  CHECK(reply["ok"] == true);
  CHECK(reply["run_id"] == "run-1");
  CHECK(reply["pid"] == getpid());
  CHECK(reply["status"]["stop_requested"] == true);

  auto polled = emitter.poll_command();
  REQUIRE(polled);
  CHECK(polled->name == "cancel");
  CHECK(polled->id == "c1");
  CHECK(polled->sender == "test@host:1");
  CHECK_FALSE(emitter.poll_command());
  CHECK(emitter.emit_command_done("c1", "ok", std::string_view("checkpoint saved")));
  CHECK(emitter.emit_run_complete("cancelled"));

  const auto stats = emitter.stats();
  CHECK(stats.commands_received == 1);
  CHECK(stats.commands_duplicate == 1);
  CHECK(stats.commands_refused == 2);
  REQUIRE(emitter.close().ok());
  CHECK(::lstat(path.c_str(), &st) != 0);  // unlinked at close

  const auto lines = fe::testing::read_lines(file);
  const auto received = events_of_type(lines, fe::event_type::command_received);
  REQUIRE(received.size() == 1);
  CHECK(received[0].command == "cancel");
  CHECK(received[0].command_id == "c1");
  CHECK(received[0].sender == "test@host:1");
  const auto done = events_of_type(lines, fe::event_type::command_done);
  REQUIRE(done.size() == 1);
  CHECK(done[0].command_id == "c1");
  CHECK(done[0].command == "cancel");
  CHECK(done[0].outcome == "ok");
  CHECK(done[0].message == "checkpoint saved");
  CHECK(received[0].seq < done[0].seq);
  // The two refusals are told in the stream.
  const auto logs = events_of_type(lines, fe::event_type::log);
  CHECK(logs.size() == 2);
  // Every event is accounted for: the acknowledgement and the refusal notes are generated.
  const auto final_stats = emitter.stats();
  CHECK(final_stats.generated == 3);
  CHECK(final_stats.emitted + final_stats.generated == final_stats.written + final_stats.dropped());
}

TEST_CASE("an argument travels into command_received as a JSON object") {
  temp_dir dir;
  const std::string file = dir.file("events.jsonl");
  {
    fe::training_event_emitter emitter("r", std::make_unique<fe::file_sink>(file), quick());
    control_client client(emitter.control_endpoint_path());
    CHECK(json::parse(client.ask(command_line("set_lr", "a", "r", "{\"lr\":0.1}")))["ok"] == true);
    CHECK(json::parse(client.ask(command_line("note", "b", "r", "\"text\"")))["ok"] == true);
    auto c = emitter.poll_command();
    REQUIRE(c);
    CHECK(c->arg_json == "{\"lr\":0.1}");
  }
  const auto received = events_of_type(fe::testing::read_lines(file), fe::event_type::command_received);
  REQUIRE(received.size() == 2);
  CHECK(received[0].arg_json == "{\"lr\":0.1}");
  CHECK(received[1].arg_json == "{\"value\":\"text\"}");
}

TEST_CASE("the inbox holds 256 commands - more are refused and counted, not acknowledged") {
  temp_dir dir;
  const std::string file = dir.file("events.jsonl");
  fe::emitter_options o = quick();
  {
    fe::training_event_emitter emitter("r", std::make_unique<fe::file_sink>(file), o);
    control_client client(emitter.control_endpoint_path());
    for (std::size_t i = 0; i < fe::command_inbox_capacity; ++i) {
      REQUIRE(json::parse(client.ask(command_line("tick", "t" + std::to_string(i), "r")))["ok"] == true);
    }
    auto reply = json::parse(client.ask(command_line("tick", "over", "r")));
    CHECK(reply["ok"] == false);
    CHECK(reply["error"].get<std::string>().find("full") != std::string::npos);
    CHECK(emitter.stats().commands_refused == 1);
    // The loop takes one: there is room again.
    REQUIRE(emitter.poll_command());
    CHECK(json::parse(client.ask(command_line("tick", "over", "r")))["ok"] == true);
    CHECK(emitter.stats().commands_received == fe::command_inbox_capacity + 1);
  }
  const auto lines = fe::testing::read_lines(file);
  CHECK(events_of_type(lines, fe::event_type::command_received).size() == fe::command_inbox_capacity + 1);
}

TEST_CASE("callbacks run on the emitting thread at its next emit, never on another thread") {
  auto sink = std::make_unique<fe::memory_sink>();
  auto store = sink->store();
  temp_dir dir;
  fe::emitter_options o = quick();
  o.control_endpoint = fe::control_endpoint_mode::on;
  o.control_directory = dir.file("control");
  fe::training_event_emitter emitter("r", std::move(sink), o);
  std::vector<std::string> seen;
  std::thread::id ran_on;
  emitter.on_command([&](const fe::command& c) {
    seen.push_back(c.name);
    ran_on = std::this_thread::get_id();
    emitter.emit_log("info", "handled in a callback");  // emitting from a callback does not re-enter
  });
  control_client client(emitter.control_endpoint_path());
  REQUIRE(json::parse(client.ask(command_line("checkpoint", "k1", "r")))["ok"] == true);
  REQUIRE(json::parse(client.ask(command_line("checkpoint", "k2", "r")))["ok"] == true);
  CHECK(seen.empty());  // nothing runs until the loop emits
  emitter.emit_progress("train", 1.0);
  CHECK(seen == std::vector<std::string>{"checkpoint", "checkpoint"});
  CHECK(ran_on == std::this_thread::get_id());
  CHECK_FALSE(emitter.poll_command());  // the callbacks took them
  REQUIRE(emitter.close().ok());
  CHECK(events_of_type(store->lines(), fe::event_type::command_received).size() == 2);
}

TEST_CASE("wait_while_paused holds the loop until resume and acknowledges both commands") {
  temp_dir dir;
  const std::string file = dir.file("events.jsonl");
  {
    fe::training_event_emitter emitter("r", std::make_unique<fe::file_sink>(file), quick());
    control_client client(emitter.control_endpoint_path());
    CHECK(emitter.wait_while_paused(std::chrono::milliseconds(0)));  // not paused: returns at once
    REQUIRE(json::parse(client.ask(command_line("pause", "p1", "r")))["ok"] == true);
    CHECK(emitter.paused());
    CHECK_FALSE(emitter.wait_while_paused(std::chrono::milliseconds(20)));  // still paused
    std::thread resumer([&] {
      control_client other(emitter.control_endpoint_path());
      (void)other.ask(command_line("resume", "r1", "r"));
    });
    CHECK(emitter.wait_while_paused(std::chrono::seconds(20)));
    resumer.join();
    CHECK_FALSE(emitter.paused());
  }
  const auto done = events_of_type(fe::testing::read_lines(file), fe::event_type::command_done);
  REQUIRE(done.size() == 2);
  CHECK(done[0].command_id == "p1");
  CHECK(done[0].command == "pause");
  CHECK(done[1].command_id == "r1");
  CHECK(done[1].outcome == "ok");
}

TEST_CASE("cancel wakes a paused loop") {
  temp_dir dir;
  fe::training_event_emitter emitter("r", std::make_unique<fe::file_sink>(dir.file("e.jsonl")), quick());
  control_client client(emitter.control_endpoint_path());
  REQUIRE(json::parse(client.ask(command_line("pause", "p1", "r")))["ok"] == true);
  std::thread canceller([&] {
    control_client other(emitter.control_endpoint_path());
    (void)other.ask(command_line("cancel", "c1", "r"));
  });
  CHECK(emitter.wait_while_paused(std::chrono::seconds(20)));
  canceller.join();
  CHECK(emitter.should_stop());
}

TEST_CASE("the endpoint is off when asked, by option or environment, and absent without a local sink") {
  temp_dir dir;
  fe::emitter_options off = quick();
  off.control_endpoint = fe::control_endpoint_mode::off;
  fe::training_event_emitter a("r", std::make_unique<fe::file_sink>(dir.file("a.jsonl")), off);
  CHECK(a.control_endpoint_path().empty());
  fe::training_event_emitter b("r", std::make_unique<fe::memory_sink>(), quick());
  CHECK(b.control_endpoint_path().empty());
  ::setenv("FOXML_EVENTS_CONTROL", "0", 1);
  fe::training_event_emitter c("r", std::make_unique<fe::file_sink>(dir.file("c.jsonl")), quick());
  ::unsetenv("FOXML_EVENTS_CONTROL");
  CHECK(c.control_endpoint_path().empty());
  // `on` with a directory it cannot use is a set-up error, not a silent loss.
  fe::emitter_options on = quick();
  on.control_endpoint = fe::control_endpoint_mode::on;
  on.control_directory = "/proc/foxml-no-such/control";
  CHECK_THROWS(fe::training_event_emitter("r", std::make_unique<fe::memory_sink>(), on));
}

TEST_CASE("a peer of another uid is refused by the SO_PEERCRED check") {
  if (::geteuid() != 0) {
    MESSAGE("skipped: connecting as another uid needs root (setuid) on this machine");
    return;
  }
  const passwd* nobody = ::getpwnam("nobody");
  if (nobody == nullptr) {
    MESSAGE("skipped: no 'nobody' user to connect as");
    return;
  }
  temp_dir dir;
  fe::training_event_emitter emitter("r", std::make_unique<fe::file_sink>(dir.file("e.jsonl")), quick());
  const std::string path = emitter.control_endpoint_path();
  // The 0700 directory and the 0600 socket already keep others out (connect: EACCES); opened up
  // here on purpose so the peer-credential check is what is left to refuse them.
  REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
  REQUIRE(::chmod(dir.file("control").c_str(), 0755) == 0);
  REQUIRE(::chmod(path.c_str(), 0666) == 0);
  const pid_t child = ::fork();
  if (child == 0) {
    if (::setgid(nobody->pw_gid) != 0 || ::setuid(nobody->pw_uid) != 0) ::_exit(3);
    control_client client(path);
    if (!client.connected()) ::_exit(4);
    const std::string reply = client.ask(command_line("cancel", "evil", "r"));
    ::_exit(reply.find("permission denied") != std::string::npos ? 0 : 5);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK_FALSE(emitter.should_stop());
  CHECK(emitter.stats().commands_refused == 1);
  CHECK(emitter.stats().commands_received == 0);
  // And with the modes as the emitter made them, the other user cannot even connect.
  REQUIRE(::chmod(dir.file("control").c_str(), 0700) == 0);
  REQUIRE(::chmod(path.c_str(), 0600) == 0);
  const pid_t second = ::fork();
  if (second == 0) {
    if (::setgid(nobody->pw_gid) != 0 || ::setuid(nobody->pw_uid) != 0) ::_exit(3);
    control_client client(path);
    ::_exit(!client.connected() && client.error() == EACCES ? 0 : 6);
  }
  REQUIRE(::waitpid(second, &status, 0) == second);
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("a fork child serves its own endpoint") {
  if (fe::testing::fork_from_busy_threads_unsupported) {
    MESSAGE("skipped under a sanitizer: a fork child of a multi-threaded parent (see test_support.hpp)");
    return;
  }
  temp_dir dir;
  const std::string file = dir.file("e.jsonl");
  fe::training_event_emitter emitter("r", std::make_unique<fe::file_sink>(file), quick());
  const std::string parent_path = emitter.control_endpoint_path();
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(pipe_fds[0]);
    emitter.emit_log("info", "child");  // the child's first emit makes its own state and endpoint
    const std::string mine = emitter.control_endpoint_path();
    const bool own = !mine.empty() && mine != parent_path &&
                     mine == fe::control_endpoint_path(dir.file("control"), "r", getpid());
    bool stopped = false;
    if (own) {
      control_client client(mine);
      stopped = json::parse(client.ask(command_line("cancel", "child-c", "r")))["ok"] == true && emitter.should_stop();
    }
    emitter.close();
    const char result = own && stopped ? 'y' : 'n';
    (void)!::write(pipe_fds[1], &result, 1);
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  char result = 0;
  REQUIRE(::read(pipe_fds[0], &result, 1) == 1);
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(result == 'y');
  CHECK_FALSE(emitter.should_stop());  // the child's cancel was the child's
  struct stat st {};
  CHECK(::lstat(parent_path.c_str(), &st) == 0);  // the child left the parent's endpoint alone
  control_client client(parent_path);
  CHECK(json::parse(client.ask("{\"query\":\"status\"}"))["pid"] == getpid());
}
