// Sink URIs: every malformed case is a clear error naming the URI; lists build chains and tees;
// the environment and the defaults pick private paths.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "foxml/events/fallback_sink.hpp"
#include "foxml/events/sink_uri.hpp"
#include "foxml/events/tee_sink.hpp"
#include "support/unix_listener.hpp"

using namespace foxml::events;
using foxml::events::testing::temp_dir;

namespace {

// Checks that `uri` is rejected with a message naming it and containing `why`.
void rejects(const std::string& uri, const std::string& why) {
  CAPTURE(uri);
  CHECK_THROWS_WITH_AS(parse_sink_list(uri), doctest::Contains(why.c_str()), std::invalid_argument);
  try {
    parse_sink_list(uri);
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find(uri.substr(0, uri.find(','))) != std::string::npos);
  }
}

struct scoped_env {
  scoped_env(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    value ? ::setenv(name, value, 1) : ::unsetenv(name);
  }
  ~scoped_env() { had_ ? ::setenv(name_, old_.c_str(), 1) : ::unsetenv(name_); }
  const char* name_;
  std::string old_;
  bool had_ = false;
};

}  // namespace

TEST_CASE("well-formed URIs parse into their parts") {
  sink_uri u = parse_sink_uri(" file:///tmp/x/events.jsonl ");
  CHECK(u.scheme == sink_scheme::file);
  CHECK(u.path == "/tmp/x/events.jsonl");
  CHECK(parse_sink_uri("file://localhost/var/e.jsonl").path == "/var/e.jsonl");
  CHECK(parse_sink_uri("file:///tmp/a%20b.jsonl").path == "/tmp/a b.jsonl");
  u = parse_sink_uri("unix:///run/user/1/foxml/events.sock");
  CHECK(u.scheme == sink_scheme::unix_socket);
  u = parse_sink_uri("zmq+tcp://127.0.0.1:5556");
  CHECK(u.scheme == sink_scheme::zmq_tcp);
  CHECK((u.host == "127.0.0.1" && u.port == 5556 && !u.bind));
  CHECK(u.zmq_endpoint() == "tcp://127.0.0.1:5556");
  u = parse_sink_uri("zmq+tcp://*:6000?bind=1");
  CHECK((u.bind && u.zmq_endpoint() == "tcp://*:6000"));
  CHECK(parse_sink_uri("zmq+tcp://[::1]:7000").host == "[::1]");
  u = parse_sink_uri("zmq+ipc:///tmp/foxml.ipc");
  CHECK((u.bind && u.zmq_endpoint() == "ipc:///tmp/foxml.ipc"));
  CHECK_FALSE(parse_sink_uri("zmq+ipc:///tmp/foxml.ipc?connect=1").bind);
  u = parse_sink_uri("inproc://events");
  CHECK((u.scheme == sink_scheme::zmq_inproc && u.bind && u.zmq_endpoint() == "inproc://events"));
}

TEST_CASE("malformed URIs are rejected, naming the URI and the problem") {
  rejects("", "empty sink list");
  rejects("/tmp/events.jsonl", "missing scheme");
  rejects("://x", "missing scheme");
  rejects("http://example.com/x", "unknown scheme 'http'");
  rejects("file://", "no path after file://");
  rejects("file://relative/events.jsonl", "must be absolute");
  rejects("file:///", "root directory");
  rejects("file:///tmp/dir/", "names a directory");
  rejects("file:///tmp/x.jsonl?mode=1", "takes no query");
  rejects("file:///tmp/x.jsonl#frag", "fragments");
  rejects("file:///tmp/bad%zz.jsonl", "two hex digits");
  rejects("file:///tmp/bad%2", "two hex digits");
  rejects("file:///tmp/nul%00.jsonl", "NUL");
  rejects("unix://events.sock", "must be absolute");
  rejects("unix:///" + std::string(120, 's') + ".sock", "at most 107");
  rejects("zmq+tcp://127.0.0.1", "missing ':port'");
  rejects("zmq+tcp://:5556", "missing host");
  rejects("zmq+tcp://127.0.0.1:", "missing port");
  rejects("zmq+tcp://127.0.0.1:http", "not a number");
  rejects("zmq+tcp://127.0.0.1:70000", "out of range");
  rejects("zmq+tcp://127.0.0.1:0", "port 0");
  rejects("zmq+tcp://127.0.0.1:5556/path", "no path");
  rejects("zmq+tcp://[::1:5556", "closing ']'");
  rejects("zmq+tcp://*:5556", "only for binding");
  rejects("zmq+tcp://h:1?bind=maybe", "must be 1, 0, true or false");
  rejects("zmq+tcp://h:1?hwm=5", "unknown query parameter 'hwm'");
  rejects("zmq+ipc:///tmp/x?bind=1&connect=1", "not both");
  rejects("zmq+ipc://relative", "must be absolute");
  rejects("inproc://", "needs a name");
  rejects("file:///tmp/a.jsonl,,file:///tmp/b.jsonl", "empty element");
  rejects("file:///tmp/a.jsonl,", "empty element");
  rejects("file:///tmp/a.jsonl | ", "empty element");
}

TEST_CASE("a list is a fallback chain and '|' makes a tee") {
  temp_dir dir;
  auto chain = make_sink("unix://" + (dir / "s.sock") + ", file://" + (dir / "a.jsonl"));
  auto* fallback = dynamic_cast<fallback_sink*>(chain.get());
  REQUIRE(fallback != nullptr);
  CHECK(fallback->size() == 2);
  CHECK(chain->describe() == "unix://" + (dir / "s.sock") + ",file://" + (dir / "a.jsonl"));

  auto tee = make_sink("unix://" + (dir / "s.sock") + ",file://" + (dir / "a.jsonl") + " | file://" + (dir / "b.jsonl"));
  auto* t = dynamic_cast<tee_sink*>(tee.get());
  REQUIRE(t != nullptr);
  CHECK(t->size() == 2);
  CHECK(dynamic_cast<fallback_sink*>(&t->at(0)) != nullptr);

  auto single = make_sink("file://" + (dir / "c.jsonl"));
  CHECK(single->describe() == "file://" + (dir / "c.jsonl"));
}

TEST_CASE("a ZeroMQ URI without the ZeroMQ component is a clear error at creation") {
  register_zmq_sink_factory(nullptr);
  CHECK_THROWS_WITH_AS(make_sink("zmq+tcp://127.0.0.1:5556"), doctest::Contains("foxml::events_zmq"),
                       std::invalid_argument);
}

TEST_CASE("the environment: FOXML_EVENTS_SINKS first, then the seed variables, then the defaults") {
  temp_dir dir;
  scoped_env runtime("XDG_RUNTIME_DIR", dir.path().c_str());
  {
    scoped_env sinks("FOXML_EVENTS_SINKS", nullptr);
    scoped_env socket("FOXML_TRAINING_EVENT_SOCKET", nullptr);
    scoped_env file("FOXML_TRAINING_EVENT_FILE", nullptr);
    CHECK(default_sink_list() == "unix://" + dir.path() + "/foxml/events.sock,file://" + dir.path() +
                                     "/foxml/events.jsonl");
    auto s = make_default_sink();
    struct stat st{};
    REQUIRE(::stat((dir.path() + "/foxml").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    REQUIRE(::stat((dir.path() + "/foxml/events.jsonl").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
  {
    scoped_env sinks("FOXML_EVENTS_SINKS", nullptr);
    scoped_env socket("FOXML_TRAINING_EVENT_SOCKET", "/tmp/seed,odd.sock");
    scoped_env file("FOXML_TRAINING_EVENT_FILE", (dir / "seed.jsonl").c_str());
    CHECK(default_sink_list() == "unix:///tmp/seed%2Codd.sock,file://" + (dir / "seed.jsonl"));
    auto s = make_default_sink();
    CHECK(s->describe() == "unix:///tmp/seed,odd.sock,file://" + (dir / "seed.jsonl"));
  }
  {
    scoped_env sinks("FOXML_EVENTS_SINKS", ("file://" + (dir / "only.jsonl")).c_str());
    scoped_env socket("FOXML_TRAINING_EVENT_SOCKET", "/tmp/ignored.sock");
    CHECK(make_default_sink()->describe() == "file://" + (dir / "only.jsonl"));
  }
  {
    scoped_env sinks("FOXML_EVENTS_SINKS", "file://relative.jsonl");
    CHECK_THROWS_WITH_AS(make_default_sink(), doctest::Contains("file://relative.jsonl"), std::invalid_argument);
  }
}

TEST_CASE("the per-user directory and its file are refused when someone else could have planted them") {
  temp_dir dir;
  scoped_env runtime("XDG_RUNTIME_DIR", dir.path().c_str());
  scoped_env sinks("FOXML_EVENTS_SINKS", nullptr);
  scoped_env socket("FOXML_TRAINING_EVENT_SOCKET", nullptr);
  scoped_env file("FOXML_TRAINING_EVENT_FILE", nullptr);
  const std::string own = dir / "foxml";
  const std::string events = own + "/events.jsonl";

  SUBCASE("a pre-existing world-writable directory") {
    REQUIRE(::mkdir(own.c_str(), 0700) == 0);
    REQUIRE(::chmod(own.c_str(), 0777) == 0);
    CHECK_THROWS_WITH_AS(make_default_sink(), doctest::Contains("world-writable"), std::system_error);
    CHECK_THROWS_WITH_AS(make_default_sink(), doctest::Contains(own.c_str()), std::system_error);
    struct stat st{};
    CHECK(::stat(events.c_str(), &st) != 0);  // nothing was created in it
  }
  SUBCASE("a symlink in place of the directory") {
    const std::string elsewhere = dir / "elsewhere";
    REQUIRE(::mkdir(elsewhere.c_str(), 0700) == 0);
    REQUIRE(::symlink(elsewhere.c_str(), own.c_str()) == 0);
    CHECK_THROWS_WITH_AS(make_default_sink(), doctest::Contains("symlink"), std::system_error);
    struct stat st{};
    CHECK(::stat((elsewhere + "/events.jsonl").c_str(), &st) != 0);
  }
  SUBCASE("a private directory of ours with a group-writable event file") {
    REQUIRE(::mkdir(own.c_str(), 0700) == 0);
    { std::ofstream out(events); }
    REQUIRE(::chmod(events.c_str(), 0666) == 0);
    CHECK_THROWS_WITH_AS(make_default_sink(), doctest::Contains("world-writable"), std::system_error);
  }
  SUBCASE("owned by another user (needs root to chown)") {
    if (::geteuid() != 0) {
      MESSAGE("skipped: not root, cannot chown to another uid");
      return;
    }
    constexpr uid_t nobody = 65534;
    const std::string theirs = dir / "theirs";
    REQUIRE(::mkdir(theirs.c_str(), 0700) == 0);
    REQUIRE(::chown(theirs.c_str(), nobody, nobody) == 0);
    SUBCASE("their directory behind a symlink") {
      REQUIRE(::symlink(theirs.c_str(), own.c_str()) == 0);
      CHECK_THROWS_AS(make_default_sink(), std::system_error);
      struct stat st{};
      CHECK(::stat((theirs + "/events.jsonl").c_str(), &st) != 0);
    }
    SUBCASE("their directory at our path") {
      REQUIRE(::rename(theirs.c_str(), own.c_str()) == 0);
      CHECK_THROWS_WITH_AS(make_default_sink(), doctest::Contains("owned by uid 65534"), std::system_error);
    }
    SUBCASE("their 0666 event file in our directory") {
      REQUIRE(::mkdir(own.c_str(), 0700) == 0);
      { std::ofstream out(events) ; out << "{}\n"; }
      REQUIRE(::chown(events.c_str(), nobody, nobody) == 0);
      REQUIRE(::chmod(events.c_str(), 0600) == 0);
      CHECK_THROWS_WITH_AS(make_default_sink(), doctest::Contains("owned by uid 65534"), std::system_error);
      std::ifstream in(events);
      CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == "{}\n");  // nothing of ours appended
    }
  }
  SUBCASE("our own private directory and file are used") {
    REQUIRE(::mkdir(own.c_str(), 0700) == 0);
    { std::ofstream out(events); }
    REQUIRE(::chmod(events.c_str(), 0600) == 0);
    CHECK_NOTHROW(make_default_sink());
  }
}
