// Issue 12: rank identity on every event, the default run id, the rank policy, and emitters whose
// ZeroMQ proxy is down or comes up late.
#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "foxml/events.hpp"
#include "test_support.hpp"

namespace fe = foxml::events;
namespace ft = foxml::events::testing;
using json = nlohmann::json;

namespace {

// Sets (or, with nullopt, unsets) environment variables for one scope, then puts them back. Every
// launcher variable the identity code reads starts unset, so a test runs the same under a launcher.
class env_scope {
 public:
  explicit env_scope(const std::map<std::string, std::optional<std::string>>& values) {
    for (const char* name : {"RANK", "LOCAL_RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS",
                             "TORCHELASTIC_RUN_ID", "SLURM_JOB_ID", "SLURM_STEP_ID"}) {
      save(name);
      unsetenv(name);
    }
    for (const auto& [name, value] : values) {
      save(name);
      if (value) setenv(name.c_str(), value->c_str(), 1);
      else unsetenv(name.c_str());
    }
  }
  ~env_scope() {
    for (const auto& [name, value] : saved_) {
      if (value) setenv(name.c_str(), value->c_str(), 1);
      else unsetenv(name.c_str());
    }
  }
  env_scope(const env_scope&) = delete;
  env_scope& operator=(const env_scope&) = delete;

 private:
  void save(const std::string& name) {
    if (saved_.count(name) != 0) return;
    const char* value = std::getenv(name.c_str());
    saved_[name] = value ? std::optional<std::string>(value) : std::nullopt;
  }
  std::map<std::string, std::optional<std::string>> saved_;
};

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

// The first line an emitter with `options` writes for one heartbeat, parsed.
json first_line(fe::emitter_options options = {}) {
  auto out = std::make_unique<fe::memory_sink>();
  auto store = out->store();
  fe::training_event_emitter emitter("r", std::move(out), options);
  emitter.emit_heartbeat();
  REQUIRE(emitter.close().ok());
  return json::parse(store->lines().at(0));
}

}  // namespace

TEST_CASE("identity: torchrun's variables give rank, local_rank and world_size on every line") {
  env_scope env({{"RANK", "5"}, {"LOCAL_RANK", "1"}, {"WORLD_SIZE", "8"}, {"SLURM_PROCID", "0"},
                 {"SLURM_LOCALID", "0"}, {"SLURM_NTASKS", "2"}});
  const json line = first_line();
  CHECK(line["rank"] == 5);
  CHECK(line["local_rank"] == 1);
  CHECK(line["world_size"] == 8);
  const auto decoded = fe::decode_line(line.dump());
  REQUIRE(decoded.value.has_value());
  CHECK(decoded.value->local_rank == 1);
}

TEST_CASE("identity: Slurm's variables when torchrun's are absent, never mixed with them") {
  env_scope env({{"SLURM_PROCID", "3"}, {"SLURM_LOCALID", "2"}, {"SLURM_NTASKS", "4"}, {"LOCAL_RANK", "7"}});
  // LOCAL_RANK alone does not make torchrun's set the source (RANK and WORLD_SIZE are absent).
  const auto id = fe::resolve_rank_identity();
  CHECK(id.rank == 3);
  CHECK(id.local_rank == 2);
  CHECK(id.world_size == 4);
}

TEST_CASE("identity: explicit options win per field - nothing set gives 0/0/1") {
  {
    env_scope env({});
    const json line = first_line();
    CHECK(line["rank"] == 0);
    CHECK(line["local_rank"] == 0);
    CHECK(line["world_size"] == 1);
  }
  env_scope env({{"RANK", "1"}, {"LOCAL_RANK", "1"}, {"WORLD_SIZE", "2"}});
  fe::emitter_options o;
  o.rank = 6;
  o.local_rank = 2;
  o.world_size = 16;
  const json line = first_line(o);
  CHECK(line["rank"] == 6);
  CHECK(line["local_rank"] == 2);
  CHECK(line["world_size"] == 16);
  CHECK(fe::resolve_rank_identity(std::nullopt, 0, std::nullopt).rank == 1);
}

TEST_CASE("identity: malformed or impossible values are a clear error at set-up") {
  const auto make = [](fe::emitter_options o = {}) {
    return [o] { fe::training_event_emitter e("r", std::make_unique<fe::memory_sink>(), o); };
  };
  {
    env_scope env({{"RANK", "0"}, {"LOCAL_RANK", "x1"}, {"WORLD_SIZE", "2"}});
    CHECK(message_of(make()).find("$LOCAL_RANK='x1' is not an integer") != std::string::npos);
  }
  {
    env_scope env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "two"}});
    CHECK(message_of(make()).find("$SLURM_NTASKS='two'") != std::string::npos);
  }
  {
    // Slurm's malformed value is not read while torchrun's set is the source.
    env_scope env({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"SLURM_NTASKS", "two"}});
    CHECK(message_of(make()).empty());
  }
  {
    env_scope env({});
    fe::emitter_options o;
    o.local_rank = -1;
    CHECK(message_of(make(o)).find("local_rank must not be negative") != std::string::npos);
  }
}

TEST_CASE("identity: the default run id is torchrun's, else Slurm's job (and step), else empty") {
  {
    env_scope env({{"TORCHELASTIC_RUN_ID", "abc"}, {"SLURM_JOB_ID", "77"}});
    CHECK(fe::default_run_id() == "abc");
  }
  {
    // torchrun's placeholder when no --rdzv-id was given: shared by unrelated jobs, so skipped.
    env_scope env({{"TORCHELASTIC_RUN_ID", "none"}, {"SLURM_JOB_ID", "77"}});
    CHECK(fe::default_run_id() == "77");
  }
  {
    env_scope env({{"SLURM_JOB_ID", "77"}, {"SLURM_STEP_ID", "3"}});
    CHECK(fe::default_run_id() == "77-3");
  }
  {
    env_scope env({});
    CHECK(fe::default_run_id().empty());
    // ... which the emitter refuses, as it refuses any empty run id.
    CHECK(message_of([] { fe::training_event_emitter e(fe::default_run_id(), std::make_unique<fe::memory_sink>()); })
              .find("run_id") != std::string::npos);
  }
}

TEST_CASE("rank policy: other ranks keep rank_zero_only types back, counted, with no seq gap") {
  env_scope env({});
  for (const std::int64_t rank : {0, 3}) {
    CAPTURE(rank);
    fe::emitter_options o;
    o.rank = rank;
    o.world_size = 4;
    o.rank_zero_only = {fe::event_type::metrics, fe::event_type::log};
    auto out = std::make_unique<fe::memory_sink>();
    auto store = out->store();
    fe::training_event_emitter emitter("r", std::move(out), o);
    CHECK(emitter.emit_run_start());
    for (int step = 0; step < 10; ++step) {
      CHECK(emitter.emit_metrics(step, {{"loss", 1.0}}) == (rank == 0));
      CHECK(emitter.emit_log("info", "x") == (rank == 0));
      CHECK(emitter.emit_progress("train", step * 10.0));
    }
    CHECK(emitter.emit_run_complete());
    REQUIRE(emitter.close().ok());
    const fe::emitter_stats s = emitter.stats();
    CHECK(s.dropped_by_policy == (rank == 0 ? 0u : 20u));
    CHECK(s.dropped() == 0);
    CHECK(s.emitted + s.generated == s.written + s.dropped());
    const auto lines = store->lines();
    CHECK(lines.size() == (rank == 0 ? 32u : 12u));
    std::uint64_t expected_seq = 0;
    for (const auto& line : lines) {
      const json j = json::parse(line);
      CHECK(j["seq"] == expected_seq++);  // what was kept back never took a seq
      CHECK(j["event_type"] != "dropped");
      if (rank != 0) CHECK((j["event_type"] != "metrics" && j["event_type"] != "log"));
    }
  }
}

TEST_CASE("rank policy: lifecycle events, heartbeats and drop reports cannot be rank 0 only") {
  env_scope env({});
  for (const auto type : {fe::event_type::run_start, fe::event_type::stage_change, fe::event_type::error,
                          fe::event_type::run_complete, fe::event_type::heartbeat, fe::event_type::dropped}) {
    fe::emitter_options o;
    o.rank_zero_only = {fe::event_type::metrics, type};
    const std::string message =
        message_of([o] { fe::training_event_emitter e("r", std::make_unique<fe::memory_sink>(), o); });
    CHECK(message.find("rank_zero_only cannot hold " + std::string(fe::to_string(type))) != std::string::npos);
  }
}

#if __has_include(<zmq.hpp>)
#include <zmq.hpp>

#include "foxml/events/zmq_sink.hpp"

namespace {
// A generous bound for "no wait": liveness on a shared, noisy machine, not a speed claim.
constexpr auto no_wait_bound = std::chrono::seconds(3);

// A free loopback port with nothing bound to it (the kernel's choice, released at once).
int free_port() {
  zmq::context_t ctx;
  zmq::socket_t s(ctx, zmq::socket_type::pair);
  s.set(zmq::sockopt::linger, 0);
  s.bind("tcp://127.0.0.1:*");
  const std::string endpoint = s.get(zmq::sockopt::last_endpoint);
  return std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
}
}  // namespace

TEST_CASE("no wait: a ZeroMQ sink connecting to a proxy that is down costs no rank a wait, and counts") {
  env_scope env({});
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(free_port());
  fe::emitter_options o;
  o.close_timeout = std::chrono::milliseconds(500);
  o.sink_retry_timeout = std::chrono::milliseconds(100);
  fe::zmq_sink_options zo;
  zo.endpoint = endpoint;
  zo.bind = false;
  const auto start = std::chrono::steady_clock::now();
  fe::training_event_emitter emitter("down", std::make_unique<fe::zmq_sink>(zo), o);
  CHECK(std::chrono::steady_clock::now() - start < no_wait_bound);
  const auto emitting = std::chrono::steady_clock::now();
  for (int i = 0; i < 2000; ++i) emitter.emit_metrics(i, {{"loss", 1.0}});
  CHECK(std::chrono::steady_clock::now() - emitting < no_wait_bound);
  const auto closing = std::chrono::steady_clock::now();
  emitter.close();
  CHECK(std::chrono::steady_clock::now() - closing < o.close_timeout + no_wait_bound);
  const fe::emitter_stats s = emitter.stats();
  CHECK(s.written == 0);  // nothing went into a connection that was not there
  CHECK(s.emitted == 2000);
  CHECK(s.emitted + s.generated >= s.written + s.dropped());  // the rest is pending at the deadline
}

TEST_CASE("no wait: a proxy coming up mid-run gets every event from its first one on - a tee's file gets all") {
  env_scope env({});
  ft::temp_dir dir;
  const int port = free_port();
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);
  fe::emitter_options o;
  o.close_timeout = std::chrono::milliseconds(2000);
  fe::enable_zmq_sink_uris();
  auto tee = fe::make_sink("zmq+" + endpoint + "|file://" + dir.file("run.jsonl"));
  fe::training_event_emitter emitter("late", std::move(tee), o);
  int step = 0;
  for (; step < 200; ++step) emitter.emit_metrics(step, {{"loss", 1.0}});

  // The proxy's front as events-proxy has it: an XSUB subscribed to everything.
  zmq::context_t ctx;
  zmq::socket_t front(ctx, zmq::socket_type::xsub);
  front.set(zmq::sockopt::linger, 0);
  front.bind(endpoint);
  const unsigned char subscribe_all = 1;
  front.send(zmq::const_buffer(&subscribe_all, 1), zmq::send_flags::none);
  front.set(zmq::sockopt::rcvtimeo, 100);
  std::vector<std::uint64_t> seqs;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int after_first = -1;
  while (std::chrono::steady_clock::now() < deadline && (after_first < 0 || step < after_first + 300)) {
    emitter.emit_metrics(step++, {{"loss", 1.0}});
    // A training loop's pace: the queue never overflows, so every event has a place to be.
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    zmq::message_t topic, body;
    while (front.recv(topic, zmq::recv_flags::dontwait)) {
      REQUIRE(front.recv(body));
      seqs.push_back(json::parse(body.to_string())["seq"].get<std::uint64_t>());
      if (after_first < 0) after_first = step;
    }
  }
  REQUIRE(emitter.close().ok());
  zmq::message_t topic, body;
  while (front.recv(topic)) {
    REQUIRE(front.recv(body));
    seqs.push_back(json::parse(body.to_string())["seq"].get<std::uint64_t>());
  }
  REQUIRE(after_first >= 0);
  // From the first event the proxy saw on, none is missing.
  for (std::size_t i = 1; i < seqs.size(); ++i) REQUIRE(seqs[i] == seqs[i - 1] + 1);
  const auto s = emitter.stats();
  CHECK(s.dropped_queue_full == 0);
  CHECK(seqs.back() + 1 == s.emitted + s.generated);
  // The file branch of the tee has every application event.
  std::size_t metrics = 0;
  for (const auto& line : ft::read_lines(dir.file("run.jsonl"))) metrics += json::parse(line)["event_type"] == "metrics";
  CHECK(metrics == static_cast<std::size_t>(step));
}
#endif
