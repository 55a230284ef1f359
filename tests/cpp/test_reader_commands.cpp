// The sender side of the control back-channel against real sockets: command encoding and its
// refusals, the control endpoint client (a stand-in endpoint speaking the protocol, a stale
// socket file, a silent peer), list_control_endpoints, the ZeroMQ +1 rule and the ZeroMQ sender's
// resending until the run acknowledges.
#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "fixtures/reader_helpers.hpp"
#include "foxml/events.hpp"
#include "foxml/events/reader/commands.hpp"
#include "foxml/events/zmq_sink.hpp"
#include "foxml/events/zmq_topic.hpp"

#include <zmq.hpp>
#include <zmq_addon.hpp>

using namespace foxml::events::reader;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

int listen_on(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, 16) == 0);
  return fd;
}

// A stand-in control endpoint: answers each line with `answer(line)` (empty: stays silent).
class stand_in_endpoint {
 public:
  stand_in_endpoint(const std::string& path, std::function<std::string(const std::string&)> answer)
      : fd_(listen_on(path)), answer_(std::move(answer)), thread_([this] { serve(); }) {}
  ~stand_in_endpoint() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::vector<std::string> lines() {
    std::lock_guard lock(mutex_);
    return lines_;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      timeval tv{0, 200000};
      ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string buffer;
      char chunk[4096];
      while (!stop_) {
        const auto n = ::recv(client, chunk, sizeof chunk, 0);
        if (n == 0) break;
        if (n < 0) continue;
        buffer.append(chunk, static_cast<std::size_t>(n));
        for (auto nl = buffer.find('\n'); nl != std::string::npos; nl = buffer.find('\n')) {
          const std::string line = buffer.substr(0, nl);
          buffer.erase(0, nl + 1);
          {
            std::lock_guard lock(mutex_);
            lines_.push_back(line);
          }
          const std::string reply = answer_(line);
          if (!reply.empty()) (void)!::send(client, (reply + "\n").data(), reply.size() + 1, MSG_NOSIGNAL);
        }
      }
      ::close(client);
    }
  }

  int fd_;
  std::function<std::string(const std::string&)> answer_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<std::string> lines_;
  std::thread thread_;
};

// Answers as the emitter's control thread does, for run `run_id`.
std::function<std::string(const std::string&)> protocol(const std::string& run_id, long pid) {
  return [run_id, pid, seen = std::make_shared<std::set<std::string>>()](const std::string& line) {
    const json in = json::parse(line, nullptr, false);
    if (in.value("query", "") == "status") {
      return json{{"ok", true}, {"run_id", run_id}, {"pid", pid}, {"host", "h"}, {"status", {{"step", 3}}}}.dump();
    }
    if (in.value("run_id", "") != run_id) return json{{"ok", false}, {"error", "wrong run id"}}.dump();
    const std::string id = in.value("id", "");
    const bool duplicate = !seen->insert(id).second;
    return json{{"ok", true}, {"id", id}, {"duplicate", duplicate}}.dump();
  };
}

}  // namespace

TEST_CASE("encode_command: fills id and sender, keeps arg compact, refuses bad names, ids, args and sizes") {
  command_request r{"run-1", "cancel", "", "", ""};
  const json line = json::parse(encode_command(r));
  CHECK(line["command"] == "cancel");
  CHECK(line["run_id"] == "run-1");
  CHECK(std::regex_match(r.id, std::regex("[0-9a-f]{16}")));
  CHECK(line["id"] == r.id);
  CHECK(std::regex_match(r.sender, std::regex(".+@.*:" + std::to_string(::getpid()))));
  CHECK_FALSE(line.contains("arg"));

  command_request with_arg{"r", "lr.scale", "{ \"factor\" : 0.5 }", "given-id", "me@h:1"};
  const json l2 = json::parse(encode_command(with_arg));
  CHECK(l2["arg"] == json{{"factor", 0.5}});
  CHECK(l2["id"] == "given-id");
  CHECK(l2["sender"] == "me@h:1");

  for (const char* bad : {"", "has space", "semi;colon", "é"}) {
    command_request b{"r", bad, "", "", ""};
    CHECK_THROWS_AS(encode_command(b), std::invalid_argument);
  }
  command_request long_name{"r", std::string(65, 'a'), "", "", ""};
  CHECK_THROWS_AS(encode_command(long_name), std::invalid_argument);
  command_request ok64{"r", std::string(64, 'a'), "", "", ""};
  CHECK_NOTHROW(encode_command(ok64));
  command_request bad_arg{"r", "send", "{not json", "", ""};
  CHECK_THROWS_WITH_AS(encode_command(bad_arg), doctest::Contains("not JSON"), std::invalid_argument);
  command_request big{"r", "x", "\"" + std::string(5000, 'a') + "\"", "", ""};
  CHECK_THROWS_WITH_AS(encode_command(big), doctest::Contains("4096"), std::invalid_argument);
  command_request bad_id{"r", "x", "", "tab\there", ""};
  CHECK_THROWS_AS(encode_command(bad_id), std::invalid_argument);
  command_request no_run{"", "x", "", "", ""};
  CHECK_THROWS_AS(encode_command(no_run), std::invalid_argument);

  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) ids.insert(make_command_id());
  CHECK(ids.size() == 100);
}

TEST_CASE("control endpoint: found by the path rule, acknowledged, a duplicate id said so") {
  reader_test::temp_dir dir;
  stand_in_endpoint endpoint(dir / "run-1.4242.sock", protocol("run-1", 4242));
  stand_in_endpoint other(dir / "run-10.77.sock", protocol("run-10", 77));
  command_request r{"run-1", "checkpoint", "{\"tag\":\"x\"}", "", ""};
  const auto result = send_command_control(dir.path(), r, 5s);
  CHECK(result.ok);
  CHECK(result.acknowledged);
  CHECK_FALSE(result.duplicate);
  CHECK(result.delivered == 1);
  CHECK(result.via == "control");
  REQUIRE(endpoint.lines().size() == 1);
  CHECK(json::parse(endpoint.lines()[0])["id"] == result.id);
  CHECK(other.lines().empty());  // run-10 is not run-1

  command_request again{"run-1", "checkpoint", "", result.id, ""};
  const auto second = send_command_control(dir.path(), again, 5s);
  CHECK(second.ok);
  CHECK(second.duplicate);
}

TEST_CASE("control endpoint: a run id outside [A-Za-z0-9_.-] is escaped, a long one hashed") {
  reader_test::temp_dir dir;
  stand_in_endpoint escaped(dir / "a%2Fb%20c.5.sock", protocol("a/b c", 5));
  command_request r{"a/b c", "cancel", "", "", ""};
  CHECK(send_command_control(dir.path(), r, 5s).acknowledged);

  // Over 107 bytes the run id part becomes h + 16 hex of its FNV-1a 64.
  const std::string long_run(120, 'L');
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const unsigned char c : long_run) h = (h ^ c) * 0x100000001b3ull;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  stand_in_endpoint hashed(dir / ("h" + std::string(hex) + ".6.sock"), protocol(long_run, 6));
  command_request l{long_run, "cancel", "", "", ""};
  CHECK(send_command_control(dir.path(), l, 5s).acknowledged);
}

TEST_CASE("control endpoint: unknown run, stale socket file, silent endpoint: errors within the deadline") {
  reader_test::temp_dir dir;
  command_request r{"nobody", "cancel", "", "", ""};
  auto missing = send_command_control(dir / "no-such-dir", r, 2s);
  CHECK(missing.unknown_run);
  CHECK(missing.error.find("unknown run nobody") != std::string::npos);

  // A socket file whose process ended: bound, then closed without unlinking.
  ::close(listen_on(dir / "gone.99.sock"));
  command_request g{"gone", "cancel", "", "", ""};
  const auto start = std::chrono::steady_clock::now();
  const auto stale = send_command_control(dir.path(), g, 5s);
  CHECK(stale.unknown_run);
  CHECK(stale.error.find("stale") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - start < 4s);  // refused at once, not at the deadline

  stand_in_endpoint silent(dir / "mute.5.sock", [](const std::string&) { return std::string(); });
  command_request m{"mute", "cancel", "", "", ""};
  const auto quiet = send_command_control(dir.path(), m, 300ms);
  CHECK_FALSE(quiet.ok);
  CHECK_FALSE(quiet.unknown_run);
  CHECK(quiet.error.find("no answer in time") != std::string::npos);

  const auto listed = list_control_endpoints(dir.path(), 300ms);
  REQUIRE(listed.size() == 2);
  CHECK(listed[0].path == dir / "gone.99.sock");
  CHECK_FALSE(listed[0].running);
  CHECK(listed[0].error.find("stale") != std::string::npos);
  CHECK(listed[1].path == dir / "mute.5.sock");
  CHECK_FALSE(listed[1].running);
  CHECK(list_control_endpoints(dir / "no-such-dir").empty());
}

TEST_CASE("list_control_endpoints: runs answer with their state") {
  reader_test::temp_dir dir;
  stand_in_endpoint a(dir / "alpha.11.sock", protocol("alpha", 11));
  stand_in_endpoint b(dir / "beta.12.sock", protocol("beta", 12));
  const auto listed = list_control_endpoints(dir.path());
  REQUIRE(listed.size() == 2);
  CHECK(listed[0].running);
  CHECK(listed[0].run_id == "alpha");
  CHECK(listed[0].pid == 11);
  CHECK(listed[0].host == "h");
  CHECK(json::parse(listed[0].status_json)["step"] == 3);
  CHECK(listed[1].run_id == "beta");
}

TEST_CASE("the sender derives the command endpoint by the +1 rule, a zmq+ scheme included") {
  enable_zmq_commands();
  command_request bad{"r", "cancel", "", "", ""};
  CHECK(send_command_zmq("udp://h:1", "", bad, 100ms).error.find("not tcp://") != std::string::npos);
  CHECK(send_command_zmq("zmq+udp://h:1", "", bad, 100ms).error.find("not tcp://") != std::string::npos);
}

TEST_CASE("ZeroMQ: the same id is resent every 100 ms until command_received with it arrives") {
  enable_zmq_commands();
  reader_test::temp_dir dir;
  const std::string events = "ipc://" + dir / "ev";
  zmq::context_t context(1);
  zmq::socket_t pub(context, zmq::socket_type::pub);  // the emitter's event socket
  zmq::socket_t sub(context, zmq::socket_type::sub);  // the emitter's command socket
  pub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::linger, 0);
  pub.bind(events);
  sub.bind(foxml::events::zmq_command_endpoint(events));
  sub.set(zmq::sockopt::subscribe, foxml::events::zmq_command_topic("run-z"));
  std::atomic<bool> stop{false};
  std::vector<std::string> ids;
  std::thread emitter([&] {
    std::vector<zmq::message_t> frames;
    while (!stop) {
      zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, 20ms);
      frames.clear();
      if (!zmq::recv_multipart(sub, std::back_inserter(frames), zmq::recv_flags::dontwait)) continue;
      REQUIRE(frames.size() == 2);
      CHECK(frames[0].to_string() == "run-z\x1f");
      const json cmd = json::parse(frames[1].to_string());
      ids.push_back(cmd["id"]);
      if (ids.size() < 3) continue;  // acknowledge only the third copy: the sender must resend
      const std::string line = json{{"event_type", "command_received"}, {"run_id", "run-z"}, {"seq", 1},
                                    {"command", cmd["command"]}, {"command_id", cmd["id"]}}.dump();
      const std::string topic = std::string("command_received\x1frun-z\x1f");
      std::array<zmq::const_buffer, 2> parts = {zmq::buffer(topic), zmq::buffer(line)};
      zmq::send_multipart(pub, parts);
    }
  });
  command_request r{"run-z", "cancel", "", "", ""};
  const auto result = send_command_zmq(events, "", r, 10s);
  stop = true;
  emitter.join();
  CHECK(result.ok);
  CHECK(result.acknowledged);
  CHECK(result.via == "zmq");
  REQUIRE(result.received.size() == 1);
  CHECK(json::parse(result.received[0])["command_id"] == result.id);
  REQUIRE(ids.size() >= 3);
  for (const auto& id : ids) CHECK(id == result.id);

  // Nobody answers: no acknowledgement by the deadline, and the error says so.
  command_request lost{"run-none", "cancel", "", "", ""};
  const auto none = send_command_zmq(events, "", lost, 300ms);
  CHECK_FALSE(none.ok);
  CHECK(none.error.find("no command_received") != std::string::npos);
  // Nothing at the event endpoint: said so at the deadline.
  command_request nowhere{"run-z", "cancel", "", "", ""};
  CHECK(send_command_zmq("ipc://" + dir / "nothing", "", nowhere, 300ms).error.find("could not reach") !=
        std::string::npos);
  // The zmq+ spelling of the same endpoint reaches the same run.
  command_request plus{"run-z", "cancel", "", "", ""};
  CHECK_FALSE(send_command_zmq("zmq+" + events, "", plus, 300ms).error.find("ZeroMQ:") == 0);
}

TEST_CASE("a real emitter's control endpoint: listed with its state, cancel acknowledged once, should_stop()") {
  reader_test::temp_dir dir;
  const std::string file = dir / "events.jsonl";
  foxml::events::training_event_emitter emitter("real-run", std::make_unique<foxml::events::file_sink>(file));
  const std::string control = foxml::events::control_directory_for(file);
  const auto listed = list_control_endpoints(control);
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].running);
  CHECK(listed[0].run_id == "real-run");
  CHECK(listed[0].pid == ::getpid());
  CHECK(listed[0].path == emitter.control_endpoint_path());
  CHECK(json::parse(listed[0].status_json).is_object());

  command_request r{"real-run", "cancel", "", "", ""};
  const auto result = send_command_control(control, r, 5s);
  CHECK(result.acknowledged);
  CHECK(emitter.should_stop());
  command_request again{"real-run", "cancel", "", result.id, ""};
  CHECK(send_command_control(control, again, 5s).duplicate);
  command_request other{"other-run", "cancel", "", "", ""};
  CHECK(send_command_control(control, other, 5s).unknown_run);
  emitter.close();
  std::string text;
  {
    std::ifstream in(file);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  CHECK(text.find("\"command_received\"") != std::string::npos);
  CHECK(text.find(result.id) != std::string::npos);
  // Closed: the file is gone, so the run is unknown, not a hang.
  CHECK(send_command_control(control, r, 2s).unknown_run);
}

TEST_CASE("a real emitter with a ZeroMQ sink: cancel over the command endpoint, acknowledged by command_received") {
  foxml::events::enable_zmq_sink_uris();
  enable_zmq_commands();
  reader_test::temp_dir dir;
  const std::string events = "ipc://" + dir / "ev";
  foxml::events::zmq_sink_options so;
  so.endpoint = events;
  foxml::events::emitter_options o;
  o.control_endpoint = foxml::events::control_endpoint_mode::off;
  foxml::events::training_event_emitter emitter("zmq-run", std::make_unique<foxml::events::zmq_sink>(so), o);
  std::atomic<bool> done{false};
  std::thread loop([&] {
    while (!done && !emitter.should_stop()) {
      emitter.emit_heartbeat();
      std::this_thread::sleep_for(5ms);
    }
  });
  command_request r{"zmq-run", "cancel", "", "", ""};
  const auto result = send_command_zmq("zmq+" + events, "", r, 10s);
  done = true;
  loop.join();
  CHECK(result.acknowledged);
  CHECK(emitter.should_stop());
  REQUIRE(result.received.size() == 1);
  CHECK(json::parse(result.received[0])["command_id"] == result.id);
  emitter.close();
}
