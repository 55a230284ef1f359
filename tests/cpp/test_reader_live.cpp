// make_source() on every URI kind and on malformed URIs, and the live reader in pull and push
// modes, over real files, a real Unix socket and real ZeroMQ PUB sockets.
#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "fixtures/reader_helpers.hpp"
#include "test_support.hpp"
#include "foxml/events/reader/file_source.hpp"
#include "foxml/events/reader/live_reader.hpp"
#include "foxml/events/reader/make_source.hpp"
#include "foxml/events/reader/run_json.hpp"
#include "foxml/events/reader/zmq_source.hpp"
#include "foxml/events/sink_uri.hpp"

using namespace foxml::events::reader;
using namespace std::chrono_literals;

// libzmq is not built with ThreadSanitizer (see test_reader_zmq.cpp).
extern "C" const char* __tsan_default_suppressions() {
  return "called_from_lib:libzmq.so.5\nrace:libzmq.so.5\n";
}

namespace {

// Polls `src` until one line arrives or 10 s pass; returns the lines seen.
std::vector<std::string> lines_of(source& src, const std::function<void()>& feed = {}) {
  std::vector<std::string> got;
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (got.empty() && std::chrono::steady_clock::now() < until) {
    if (feed) feed();
    src.poll(50ms, [&](const raw_line& l) { got.emplace_back(l.text); });
  }
  return got;
}

void send_unix(const std::string& path, const std::string& text) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size()));
  ::close(fd);
}

// A source opened from `uri` that a PUB socket bound at `bind` publishes to; PUB/SUB joins
// asynchronously, so the publisher repeats until the subscriber hears it.
void check_zmq(const std::string& bind, const std::function<std::string(const std::string&)>& uri_of) {
  zmq::context_t context(1);
  zmq::socket_t pub(context, zmq::socket_type::pub);
  pub.bind(bind);
  const std::string endpoint = pub.get(zmq::sockopt::last_endpoint);
  const std::string uri = uri_of(endpoint);
  CAPTURE(uri);
  auto src = make_source(uri);
  CHECK(src->describe() == endpoint);
  std::string body = reader_test::line(1, "zr");
  body.pop_back();
  const auto got = lines_of(*src, [&] {
    pub.send(zmq::str_buffer("heartbeat\x1fzr\x1f"), zmq::send_flags::sndmore);
    pub.send(zmq::buffer(body), zmq::send_flags::none);
  });
  REQUIRE(!got.empty());
  CHECK(got.front() == body);
}

}  // namespace

TEST_CASE("make_source: a bare path, relative or absolute, and file:// read the file") {
  reader_test::temp_dir dir;
  const std::string path = dir / "events one.jsonl";
  reader_test::append(path, reader_test::line(1));
  for (const std::string& uri : {path, "file://" + (dir / "events%20one.jsonl"), "FILE://localhost" + path}) {
    CAPTURE(uri);
    auto src = make_source(uri);
    CHECK(dynamic_cast<file_source*>(src.get()) != nullptr);
    CHECK(lines_of(*src) == std::vector<std::string>{reader_test::line(1).substr(0, reader_test::line(1).size() - 1)});
  }
  // A relative path is the shell user's: taken as is, from the working directory.
  const std::string cwd = std::filesystem::current_path().string();
  std::filesystem::current_path(dir.path());
  auto relative = make_source("events one.jsonl");
  std::filesystem::current_path(cwd);
  CHECK(lines_of(*relative).size() == 1);
  const source_uri parsed = parse_source_uri("events.jsonl");
  CHECK((parsed.kind == source_kind::file && parsed.path == "events.jsonl"));
  // Without follow, a missing file fails at set-up time; with it, the source waits for the file.
  CHECK_THROWS_AS(make_source(dir / "missing.jsonl"), std::system_error);
  source_options follow;
  follow.follow = true;
  CHECK(make_source(dir / "missing.jsonl", follow) != nullptr);
}

TEST_CASE("make_source: unix:// listens for emitters") {
  reader_test::temp_dir dir;
  const std::string path = dir / "events.sock";
  auto src = make_source("unix://" + path);
  CHECK(src->describe().find(path) != std::string::npos);
  bool sent = false;
  const auto got = lines_of(*src, [&] {
    if (!std::exchange(sent, true)) send_unix(path, reader_test::line(3));
  });
  REQUIRE(got.size() == 1);
  CHECK(got.front().find("\"seq\":3") != std::string::npos);
  CHECK(nlohmann::json::parse(src->stats_json()).contains("refused_no_fds"));
}

TEST_CASE("make_source: tcp://, zmq+tcp://, ipc:// and zmq+ipc:// subscribe with the ZeroMQ component") {
  enable_zmq_source_uris();
  reader_test::temp_dir dir;
  check_zmq("tcp://127.0.0.1:*", [](const std::string& endpoint) { return endpoint; });
  check_zmq("tcp://127.0.0.1:*", [](const std::string& endpoint) { return "zmq+" + endpoint; });
  check_zmq("ipc://" + (dir / "a.ipc"), [](const std::string& endpoint) { return endpoint; });
  check_zmq("ipc://" + (dir / "b.ipc"), [](const std::string& endpoint) { return "zmq+" + endpoint; });
}

TEST_CASE("make_source: a ZeroMQ URI without the component names the component") {
  register_zmq_source_factory(nullptr);
  try {
    make_source("tcp://127.0.0.1:5999");
    FAIL("no error");
  } catch (const foxml::events::uri_error& e) {
    CHECK(std::string(e.what()).find("foxml::events_reader_zmq") != std::string::npos);
    CHECK(std::string(e.what()).find("enable_zmq_source_uris") != std::string::npos);
  }
  enable_zmq_source_uris();
}

TEST_CASE("make_source: each malformed URI is a clear error naming the URI and the rule") {
  enable_zmq_source_uris();
  const std::string long_socket = "unix:///" + std::string(120, 's');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty URI"},
      {"   ", "empty URI"},
      {"carrier://x", "unknown scheme 'carrier'"},
      {"file://relative/events.jsonl", "must be absolute"},
      {"file://", "no path after file://"},
      {"file:///", "root directory"},
      {"file:///tmp/dir/", "names a directory"},
      {"file:///tmp/a%zz", "two hex digits"},
      {"file:///tmp/a%00b", "NUL byte"},
      {"file:///tmp/a?x=1", "takes no query"},
      {"file:///tmp/a#frag", "fragments"},
      {"unix://", "no path after unix://"},
      {long_socket, "a Unix socket path holds at most"},
      {"tcp://localhost", "missing ':port'"},
      {"zmq+tcp://:5555", "missing host"},
      {"tcp://localhost:", "missing port number"},
      {"tcp://localhost:http", "is not a number"},
      {"tcp://localhost:99999", "out of range"},
      {"tcp://localhost:0", "port 0"},
      {"tcp://localhost:5555/path", "no path"},
      {"tcp://[::1:5555", "closing ']'"},
      {"tcp://localhost:5555?bind=1", "always connects"},
      {"zmq+ipc:///tmp/x.ipc?connect=1", "always connects"},
      {"ipc://relative.ipc", "must be absolute"},
      {"inproc://name", "ZeroMQ context"},
  };
  for (const auto& [uri, rule] : cases) {
    CAPTURE(uri);
    try {
      make_source(uri);
      FAIL("no error");
    } catch (const foxml::events::uri_error& e) {
      const std::string what = e.what();
      CHECK(what.find("bad source URI '" + uri + "'") != std::string::npos);
      CHECK(what.find(rule) != std::string::npos);
      CHECK(e.uri() == uri);
    }
  }
  // The sinks' parser still says "sink".
  CHECK_THROWS_WITH_AS(foxml::events::parse_sink_uri("carrier://x"), doctest::Contains("bad sink URI 'carrier://x'"),
                       std::invalid_argument);
}

TEST_CASE("live_reader pull mode: every accepted event in order, malformed lines in place, the filter applied") {
  reader_test::temp_dir dir;
  const std::string path = dir / "events.jsonl";
  reader_test::append(path, reader_test::line(0) + "not json\n" + reader_test::line(1) + reader_test::line(1) +
                                reader_test::line(2, "other") + reader_test::line(2));
  live_reader_options options;
  options.ring_size = 1;  // pull mode never loses events to the ring
  options.filter.runs = {"r1"};
  live_reader reader(path, options);
  std::vector<std::uint64_t> seqs;
  while (reader.poll(1s, [&](const live_item& item) {
    REQUIRE(item.event);
    seqs.push_back(item.event->value.seq);
  })) {
  }
  CHECK(seqs == std::vector<std::uint64_t>{0, 1, 2});
  CHECK(reader.finished());
  CHECK(reader.ended());
  const event_stream_stats stats = reader.stats();
  CHECK((stats.malformed == 1 && stats.duplicates == 1 && stats.events == 4));
  CHECK(reader.malformed().front().line == 2);
  const auto json = nlohmann::json::parse(reader.stats_json());
  CHECK(json.at("evicted") == 0);
  CHECK(json.at("source").at("not_regular") == 0);
  CHECK(json.at("source").at("bytes") == stats.bytes);

  options.malformed_items = true;
  options.filter = {};
  live_reader one_by_one(path, options);
  std::vector<std::string> seen;
  while (auto item = one_by_one.next(1s)) {
    seen.push_back(item->malformed ? "malformed@" + std::to_string(item->malformed->line)
                                   : std::to_string(item->event->value.seq));
  }
  CHECK(seen == std::vector<std::string>{"0", "malformed@2", "1", "2", "2"});
  CHECK(one_by_one.ended());
  CHECK(one_by_one.runs().size() == 2);
}

TEST_CASE("live_reader push mode: the pump feeds subscribers, the ring and the tracker, and late joiners read history") {
  reader_test::temp_dir dir;
  const std::string path = dir / "events.jsonl";
  live_reader_options options;
  options.source.follow = true;
  live_reader reader("file://" + path, options);
  CHECK(reader.live());
  std::mutex mutex;
  std::vector<std::uint64_t> pushed;
  const auto id = reader.subscribe([&](const shared_event& e, std::uint64_t position) {
    std::lock_guard lock(mutex);
    CHECK(position == pushed.size());
    pushed.push_back(e->value.seq);
  });
  reader.start();
  CHECK(reader.background());
  CHECK_THROWS_AS(reader.poll(0ms, [](const live_item&) {}), std::logic_error);
  for (std::uint64_t seq = 0; seq < 5; ++seq) reader_test::append(path, reader_test::line(seq, "push"));
  REQUIRE(foxml::events::testing::eventually([&] {
    std::lock_guard lock(mutex);
    return pushed.size() == 5;
  }));
  reader.unsubscribe(id);
  // next() after start() reads the ring from the first event not taken: all five.
  std::vector<std::uint64_t> iterated;
  while (iterated.size() < 5) {
    auto item = reader.next(10s);
    REQUIRE(item);
    iterated.push_back(item->event->value.seq);
  }
  CHECK(iterated == std::vector<std::uint64_t>{0, 1, 2, 3, 4});
  const ring_read history = reader.buffer().read_since(0);
  CHECK(history.events.size() == 5);
  const auto run = reader.run("push");
  REQUIRE(run);
  CHECK(run->events == 5);
  reader_test::append(path, reader_test::line(5, "push"));
  REQUIRE(reader.buffer().wait_since(5, 10s).events.size() == 1);
  {
    std::lock_guard lock(mutex);
    CHECK(pushed.size() == 5);  // unsubscribed
  }
  reader.close();
  CHECK(reader.finished());
  CHECK(reader.ended());
  CHECK(reader.runs().size() == 1);  // state stays readable
}

TEST_CASE("to_json(run_state): the run as one JSON object") {
  reader_test::temp_dir dir;
  const std::string path = dir / "events.jsonl";
  reader_test::append(path,
                      "{\"event_type\":\"metrics\",\"run_id\":\"j\",\"timestamp\":\"2026-01-21T10:00:00.000000+00:00\","
                      "\"seq\":0,\"pid\":1,\"host\":\"h\",\"rank\":0,\"world_size\":1,\"step\":3,"
                      "\"metrics\":{\"loss\":0.5}}\n");
  live_reader reader(path);
  while (reader.poll(1s, nullptr)) {
  }
  const auto run = reader.run("j");
  REQUIRE(run);
  const auto json = nlohmann::json::parse(to_json(*run, run->last_seen_us));
  CHECK(json.at("run_id") == "j");
  CHECK(json.at("status") == "running");
  CHECK(json.at("name").is_null());
  CHECK(json.at("metrics").at("loss") == 0.5);
  CHECK(json.at("metric_history").at("loss") == nlohmann::json::array({nlohmann::json::array({3, 0.5})}));
  CHECK(json.at("events") == 1);
  CHECK(json.at("first_seen") == 1768989600.0);
}
