// CURVE on the ZeroMQ paths (issue 11): key files, and a real events-proxy whose ZAP handler lets
// only authorised keys publish, subscribe and send commands.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "foxml/events.hpp"
#include "foxml/events/reader/commands.hpp"
#include "foxml/events/reader/make_source.hpp"
#include "foxml/events/reader/zmq_source.hpp"
#include "foxml/events/zmq_curve.hpp"
#include "foxml/events/zmq_sink.hpp"
#include "foxml/events/zmq_topic.hpp"
#include "test_support.hpp"

extern char** environ;

namespace fe = foxml::events;
namespace ft = foxml::events::testing;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

std::string new_key_file(const ft::temp_dir& dir, const std::string& name) {
  const std::string path = dir.file(name);
  fe::write_curve_key_file(path, fe::curve_generate_keypair());
  return path;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("key files: written 0600 and read back - a readable or malformed one is a clear error") {
  ft::temp_dir dir;
  const fe::curve_keypair keys = fe::curve_generate_keypair();
  CHECK(keys.public_key.size() == 40);
  const std::string path = dir.file("me.key");
  fe::write_curve_key_file(path, keys);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  const fe::curve_keypair back = fe::read_curve_key_file(path);
  CHECK(back.public_key == keys.public_key);
  CHECK(back.secret_key == keys.secret_key);
  CHECK(fe::read_curve_public_key(keys.public_key) == keys.public_key);
  CHECK(fe::read_curve_public_key(path) == keys.public_key);  // a key file gives its public half
  const std::string printed = dir.file("printed.pub");  // what `events-proxy keygen F > printed.pub` leaves
  std::ofstream(printed) << keys.public_key << "\n";
  CHECK(fe::read_curve_public_key(printed) == keys.public_key);
  CHECK(error_of([&] { fe::write_curve_key_file(path, keys); }).find("cannot create") != std::string::npos);

  ::chmod(path.c_str(), 0644);
  CHECK(error_of([&] { fe::read_curve_key_file(path); }).find("mode 0644") != std::string::npos);

  const std::string bad = dir.file("bad.key");
  std::ofstream(bad) << "public-key = \"" << keys.public_key << "\"\nsecret-key = \"not a key\"\n";
  ::chmod(bad.c_str(), 0600);
  CHECK(error_of([&] { fe::read_curve_key_file(bad); }).find("secret-key is not a Z85 key") != std::string::npos);
  const std::string other = fe::curve_generate_keypair().secret_key;
  std::ofstream(bad) << "public-key = \"" << keys.public_key << "\"\nsecret-key = \"" << other << "\"\n";
  CHECK(error_of([&] { fe::read_curve_key_file(bad); }).find("does not belong") != std::string::npos);
  std::ofstream(bad) << "public-key = \"" << keys.public_key << "\"\n";
  CHECK(error_of([&] { fe::read_curve_key_file(bad); }).find("needs two lines") != std::string::npos);

  const std::string list = dir.file("authorized");
  std::ofstream(list) << "# clients\n" << keys.public_key << "\n\npublic-key = \"" << fe::curve_generate_keypair().public_key
                      << "\"\n";
  CHECK(fe::read_curve_authorized(list).size() == 2);
  std::ofstream(list) << keys.public_key << "\nnonsense\n";
  CHECK(error_of([&] { fe::read_curve_authorized(list); }).find("line 2") != std::string::npos);
}

TEST_CASE("sink set-up: CURVE needs both halves when connecting a private key file and is refused half-given") {
  ft::temp_dir dir;
  const std::string keys = new_key_file(dir, "emitter.key");
  fe::enable_zmq_sink_uris();
  const auto made = [&](const std::string& uri) { return error_of([&] { fe::make_sink(uri); }); };
  CHECK(made("zmq+tcp://127.0.0.1:1?curve_keys=" + keys).find("or neither") != std::string::npos);
  CHECK(made("zmq+tcp://127.0.0.1:1?curve_server_key=" + keys).find("or neither") != std::string::npos);
  const std::string both_bound = made("zmq+tcp://127.0.0.1:1?bind=1&curve_server_key=" + keys + "&curve_keys=" + keys);
  CHECK_MESSAGE(both_bound.find("give curve_keys alone") != std::string::npos, both_bound);
  ::chmod(keys.c_str(), 0640);
  CHECK(made("zmq+tcp://127.0.0.1:1?curve_server_key=" + keys + "&curve_keys=" + keys).find("chmod 600") !=
        std::string::npos);
  CHECK(made("zmq+tcp://127.0.0.1:1?curve_key=x").find("unknown query parameter 'curve_key'") != std::string::npos);
}

#ifdef FOXML_EVENTS_PROXY
namespace {

// Starts a program, stderr to `stderr_path` and stdout to /dev/null (a proxy left behind by a
// crashed test must not hold the test runner's pipe).
pid_t spawn(std::vector<std::string> args, const std::string& stderr_path) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = -1;
  REQUIRE(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

// A real events-proxy on four consecutive loopback ports, its stderr in a file.
class proxy_process {
 public:
  proxy_process(const ft::temp_dir& dir, std::vector<std::string> extra) : log_(dir.file("proxy.log")) {
    for (int attempt = 0; attempt < 20; ++attempt) {
      base_ = 20000 + static_cast<int>((::getpid() * 7919 + attempt * 104729) % 40000);
      std::vector<std::string> args = {FOXML_EVENTS_PROXY, "--emitters", endpoint(0), "--subscribers", endpoint(2),
                                       "--stats-interval", "0"};
      args.insert(args.end(), extra.begin(), extra.end());
      pid_ = spawn(std::move(args), log_);
      int status = 0;
      const bool up = ft::eventually([&] {
        if (::waitpid(pid_, &status, WNOHANG) == pid_) return true;
        return slurp(log_).find("events-proxy: emitters") != std::string::npos;
      });
      REQUIRE(up);
      if (slurp(log_).find("events-proxy: emitters") != std::string::npos) return;
      pid_ = -1;  // exited: its ports were taken, or the arguments were refused
      if (slurp(log_).find("cannot bind") == std::string::npos) return;
    }
  }
  ~proxy_process() { stop(); }
  bool running() const { return pid_ > 0; }
  std::string endpoint(int offset) const { return "tcp://127.0.0.1:" + std::to_string(base_ + offset); }
  std::string log() const { return slurp(log_); }
  // The last statistics line, asked for with SIGUSR1.
  json statistics() {
    const std::string earlier = log();
    const auto before = std::count(earlier.begin(), earlier.end(), '\n');
    ::kill(pid_, SIGUSR1);
    REQUIRE(ft::eventually([&] {
      const std::string text = log();
      return std::count(text.begin(), text.end(), '\n') > before;
    }));
    std::string text = log();
    text.pop_back();
    return json::parse(text.substr(text.rfind("events-proxy: ") + 14));
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  std::string log_;
  pid_t pid_ = -1;
  int base_ = 0;
};

// A subscriber on the proxy's subscriber side, a CURVE client when given keys.
struct subscriber {
  zmq::context_t ctx;
  zmq::socket_t socket{ctx, zmq::socket_type::sub};
  subscriber(const std::string& endpoint, const fe::curve_settings& curve, const std::string& prefix = "") {
    socket.set(zmq::sockopt::linger, 0);
    fe::apply_curve_client(socket, curve);
    socket.set(zmq::sockopt::subscribe, prefix);
    socket.connect(endpoint);
  }
  // The metrics lines received within `wait`.
  int metrics(std::chrono::milliseconds wait) {
    int n = 0;
    const auto until = std::chrono::steady_clock::now() + wait;
    std::vector<zmq::message_t> frames;
    while (std::chrono::steady_clock::now() < until) {
      zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, 50ms);
      frames.clear();
      while (zmq::recv_multipart(socket, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
        if (frames.size() == 2 && json::parse(frames[1].to_string())["event_type"] == "metrics") ++n;
        frames.clear();
      }
    }
    return n;
  }
};

struct curve_setup {
  ft::temp_dir dir;
  std::string proxy_keys = new_key_file(dir, "proxy.key");
  std::string proxy_public = dir.file("proxy.pub");
  std::string emitter_keys = new_key_file(dir, "emitter.key");
  std::string reader_keys = new_key_file(dir, "reader.key");
  std::string sender_keys = new_key_file(dir, "sender.key");
  std::string stranger_keys = new_key_file(dir, "stranger.key");
  std::string authorized = dir.file("authorized");
  curve_setup() {
    std::ofstream(proxy_public) << "public-key = \"" << fe::read_curve_key_file(proxy_keys).public_key << "\"\n";
    std::ofstream list(authorized);
    for (const std::string* k : {&emitter_keys, &reader_keys, &sender_keys}) {
      list << fe::read_curve_key_file(*k).public_key << "\n";
    }
  }
  fe::curve_settings as(const std::string& keys) const { return {proxy_public, keys}; }
  std::string sink_uri(const proxy_process& proxy, const std::string& keys) const {
    return "zmq+" + proxy.endpoint(0) + "?curve_server_key=" + proxy_public + "&curve_keys=" + keys;
  }
};

// Emits `count` metrics through `uri`, closing within its deadline; returns what the emitter wrote.
std::uint64_t emit_through(const std::string& uri, int count) {
  fe::emitter_options o;
  o.close_timeout = 3000ms;
  o.sink_retry_timeout = 1500ms;
  fe::training_event_emitter emitter("curve", fe::make_sink(uri), o);
  for (int i = 0; i < count; ++i) emitter.emit_metrics(i, {{"loss", 1.0}});
  emitter.close();
  return emitter.stats().written;
}

}  // namespace

TEST_CASE("source URIs: CURVE is the one query a ZeroMQ source takes both halves or neither") {
  ft::temp_dir dir;
  const std::string keys = new_key_file(dir, "reader.key");
  fe::reader::enable_zmq_source_uris();
  const auto opened = [&](const std::string& uri) {
    return error_of([&] { fe::reader::make_source(fe::reader::parse_source_uri(uri)); });
  };
  CHECK(opened("tcp://127.0.0.1:1?curve_server_key=" + keys + "&curve_keys=" + keys) == "");
  CHECK(opened("tcp://127.0.0.1:1?curve_keys=" + keys).find("or neither") != std::string::npos);
  CHECK(opened("tcp://127.0.0.1:1?bind=1").find("its only query is curve") != std::string::npos);
  CHECK(opened("zmq+ipc:///tmp/x?connect=1").find("its only query is curve") != std::string::npos);
}

TEST_CASE("events-proxy refuses CURVE that would admit anyone and a bad key file at start") {
  curve_setup s;
  proxy_process open_door(s.dir, {"--curve-keys", s.proxy_keys});
  CHECK_FALSE(open_door.running());
  CHECK(open_door.log().find("only encrypts") != std::string::npos);
  ::chmod(s.proxy_keys.c_str(), 0644);
  proxy_process readable(s.dir, {"--curve-keys", s.proxy_keys, "--curve-authorized", s.authorized});
  CHECK_FALSE(readable.running());
  CHECK(readable.log().find("chmod 600") != std::string::npos);
}

TEST_CASE("through a CURVE events-proxy: authorised keys get every event through - others and plain peers none") {
  fe::enable_zmq_sink_uris();
  curve_setup s;
  proxy_process proxy(s.dir, {"--curve-keys", s.proxy_keys, "--curve-authorized", s.authorized});
  REQUIRE(proxy.running());
  // Its own prefix: an XPUB passes a repeated subscription on once, and the count below needs two.
  subscriber reader(proxy.endpoint(2), s.as(s.reader_keys), fe::zmq_type_subscription(fe::event_type::metrics));
  subscriber stranger(proxy.endpoint(2), s.as(s.stranger_keys));
  subscriber plain(proxy.endpoint(2), {});
  // The reader library's own subscriber, CURVE from its URI.
  fe::reader::enable_zmq_source_uris();
  auto source = fe::reader::make_source(fe::reader::parse_source_uri(
      proxy.endpoint(2) + "?curve_server_key=" + s.proxy_public + "&curve_keys=" + s.reader_keys));

  // Both authorised subscriptions have crossed the proxy (libzmq counts them as messages in on
  // its subscriber side) before anything is published: PUB/SUB sends nothing to a late joiner.
  REQUIRE(ft::eventually([&] { return proxy.statistics()["events"]["subscribers"]["msg_in"].get<int>() >= 2; }));
  CHECK(emit_through(s.sink_uri(proxy, s.emitter_keys), 500) >= 500);
  CHECK(reader.metrics(1000ms) == 500);
  int via_source = 0;
  CHECK(ft::eventually([&] {
    source->poll(50ms, [&](const fe::reader::raw_line& line) { via_source += line.text.find("\"metrics\"") != std::string_view::npos; });
    return via_source == 500;
  }, 5000ms));
  CHECK(stranger.metrics(100ms) == 0);
  CHECK(plain.metrics(100ms) == 0);

  // An emitter with a key the proxy does not know, and one without CURVE: nothing gets through,
  // and the emitter writes nothing (no subscription ever reaches it).
  CHECK(emit_through(s.sink_uri(proxy, s.stranger_keys), 50) == 0);
  CHECK(emit_through("zmq+" + proxy.endpoint(0), 50) == 0);
  CHECK(reader.metrics(300ms) == 0);
  const json stats = proxy.statistics();
  CHECK(stats["curve_refused"].get<int>() > 0);
  CHECK(stats["events"]["emitters"]["msg_in"].get<int>() >= 500);
}

TEST_CASE("through a CURVE events-proxy: a command with an authorised key reaches the emitter - a stranger's not") {
  fe::enable_zmq_sink_uris();
  curve_setup s;
  proxy_process proxy(s.dir, {"--curve-keys", s.proxy_keys, "--curve-authorized", s.authorized});
  REQUIRE(proxy.running());
  fe::emitter_options o;
  o.close_timeout = 2000ms;
  fe::training_event_emitter emitter("curve-run", fe::make_sink(s.sink_uri(proxy, s.emitter_keys)), o);
  fe::reader::enable_zmq_commands();
  // What events-ctl --zmq ... --curve-server-key --curve-keys does.
  const auto send = [&](const std::string& keys, std::chrono::milliseconds timeout) {
    fe::reader::command_request request{"curve-run", "checkpoint", "", "", ""};
    return fe::reader::send_command_zmq(proxy.endpoint(2), "", request, timeout, s.as(keys));
  };
  const fe::reader::command_result refused = send(s.stranger_keys, 1500ms);
  CHECK_FALSE(refused.ok);
  CHECK_MESSAGE(refused.error.find("CURVE server refuses") != std::string::npos, refused.error);
  CHECK_FALSE(emitter.poll_command());
  const fe::reader::command_result sent = send(s.sender_keys, 20000ms);
  CHECK_MESSAGE(sent.acknowledged, sent.error);  // command_received came back through the proxy
  CHECK(emitter.poll_command().has_value());
  CHECK(send("", 1000ms).error.find("or neither") != std::string::npos);
#ifdef FOXML_EVENTS_CTL
  // The same from the command line: events-ctl --curve-server-key --curve-keys.
  const auto ctl = [&](const std::string& keys, const std::string& timeout) {
    std::vector<std::string> args = {FOXML_EVENTS_CTL, "--zmq", proxy.endpoint(2), "--curve-server-key",
                                     s.proxy_public, "--curve-keys", keys, "--timeout", timeout, "pause", "curve-run"};
    const pid_t pid = spawn(std::move(args), "/dev/null");
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  CHECK(ctl(s.stranger_keys, "1.5") == 2);
  CHECK(ctl(s.sender_keys, "20") == 0);
  CHECK(ft::eventually([&] { return emitter.paused(); }));
#endif
  CHECK(proxy.statistics()["curve_refused"].get<int>() > 0);
  emitter.close();
}
#endif
