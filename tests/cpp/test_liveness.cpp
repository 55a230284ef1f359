// Dead or slow (issue 11) and one run of many ranks (issue 12): heartbeats on by default with a
// socket sink, run_start's liveness fields, and the tracker's stale / killed / straggler view,
// against synthetic events and against real trainer processes stopped and killed with signals.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "fixtures/reader_helpers.hpp"
#include "foxml/events.hpp"
#include "foxml/events/reader/file_source.hpp"
#include "foxml/events/reader/live_reader.hpp"
#include "foxml/events/reader/run_json.hpp"
#include "foxml/events/reader/run_tracker.hpp"
#include "test_support.hpp"

namespace fe = foxml::events;
namespace fr = foxml::events::reader;
namespace ft = foxml::events::testing;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::vector<json> of_type(const std::shared_ptr<fe::memory_store>& store, std::string_view type) {
  std::vector<json> out;
  for (const auto& line : store->lines()) {
    json j = json::parse(line);
    if (j["event_type"] == type) out.push_back(std::move(j));
  }
  return out;
}

std::int64_t unix_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string host_name() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

}  // namespace

// ---- the emitter's side

TEST_CASE("heartbeats are on by default with a Unix socket sink in the chain, and run_start says so") {
  reader_test::temp_dir dir;
  auto store = std::make_shared<fe::memory_store>();
  std::vector<std::unique_ptr<fe::sink>> chain;
  chain.push_back(std::make_unique<fe::unix_socket_sink>(dir / "nobody.sock"));  // no listener: falls back
  chain.push_back(std::make_unique<fe::memory_sink>(store));
  {
    fe::training_event_emitter emitter("run-sock", std::make_unique<fe::fallback_sink>(std::move(chain)));
    emitter.emit_run_start();
    REQUIRE(emitter.close().ok());
  }
  const auto starts = of_type(store, "run_start");
  REQUIRE(starts.size() == 1);
  CHECK(starts[0]["heartbeat_interval_s"].get<double>() ==
        doctest::Approx(std::chrono::duration<double>(fe::default_heartbeat_interval).count()));
  CHECK(starts[0]["stale_after_heartbeats"] == 3);
  // pids are reused: the start time names the process. This one started before now, and not
  // long before (a test process lives minutes at most).
  const double start = starts[0]["process_start_time"].get<double>();
  const double now_s = static_cast<double>(unix_now_us()) / 1e6;
  CHECK(start <= now_s + 2.0);
  CHECK(start > now_s - 3600.0);
}

TEST_CASE("without a socket sink or the sampler, no heartbeats and run_start has no interval") {
  auto store = std::make_shared<fe::memory_store>();
  {
    fe::training_event_emitter emitter("run-quiet", std::make_unique<fe::memory_sink>(store));
    emitter.emit_run_start();
    REQUIRE(emitter.close().ok());
  }
  const auto starts = of_type(store, "run_start");
  REQUIRE(starts.size() == 1);
  CHECK(starts[0].contains("process_start_time"));
  CHECK_FALSE(starts[0].contains("heartbeat_interval_s"));
  CHECK_FALSE(starts[0].contains("stale_after_heartbeats"));
}

TEST_CASE("heartbeat_interval zero turns heartbeats off even while the sampler runs") {
  fe::emitter_options options;
  options.resources_interval = 20ms;
  options.heartbeat_interval = 0ms;
  auto store = std::make_shared<fe::memory_store>();
  {
    fe::training_event_emitter emitter("run-off", std::make_unique<fe::memory_sink>(store), options);
    emitter.emit_run_start();
    REQUIRE(ft::eventually([&] { return of_type(store, "resources").size() >= 3; }));
    REQUIRE(emitter.close(10s).ok());
  }
  CHECK(of_type(store, "heartbeat").empty());
  CHECK_FALSE(of_type(store, "run_start").at(0).contains("heartbeat_interval_s"));
}

TEST_CASE("an explicit interval and miss count travel in run_start, and a miss count below 1 is refused") {
  fe::emitter_options options;
  options.heartbeat_interval = 250ms;
  options.stale_after_heartbeats = 7;
  auto store = std::make_shared<fe::memory_store>();
  {
    fe::training_event_emitter emitter("run-hb", std::make_unique<fe::memory_sink>(store), options);
    emitter.emit_run_start();
    REQUIRE(emitter.close().ok());
  }
  const auto start = of_type(store, "run_start").at(0);
  CHECK(start["heartbeat_interval_s"].get<double>() == doctest::Approx(0.25));
  CHECK(start["stale_after_heartbeats"] == 7);
  options.stale_after_heartbeats = 0;
  CHECK_THROWS_WITH_AS(fe::training_event_emitter("r", std::make_unique<fe::memory_sink>(), options),
                       doctest::Contains("stale_after_heartbeats"), std::invalid_argument);
}

// ---- the tracker, from synthetic events

namespace {

fe::event rank_event(fe::event_type type, std::int64_t rank, std::int64_t at_us, std::int64_t world = 4) {
  fe::event e;
  e.type = type;
  e.run_id = "ddp";
  e.rank = rank;
  e.world_size = world;
  e.host = "elsewhere";  // not this host: no /proc look-ups in these cases
  e.pid = 1000 + rank;
  e.unix_us = at_us;
  return e;
}

fe::event progress_of(std::int64_t rank, std::int64_t at_us, std::int64_t step, double pct) {
  fe::event e = rank_event(fe::event_type::progress, rank, at_us);
  e.stage = "training";
  e.step = step;
  e.progress_pct = pct;
  return e;
}

}  // namespace

TEST_CASE("one run of four ranks: per-rank state, the slowest rank, completion when all ranks end") {
  fr::run_tracker tracker;
  for (std::int64_t r = 0; r < 4; ++r) tracker.apply(rank_event(fe::event_type::run_start, r, 0));
  // Rank 2 lags: step 7 where the others are at 10.
  for (std::int64_t r = 0; r < 4; ++r) tracker.apply(progress_of(r, 1'000'000, r == 2 ? 7 : 10, r == 2 ? 35.0 : 50.0));
  REQUIRE(tracker.runs().size() == 1);
  const fr::run_state& run = *tracker.find("ddp");
  CHECK(run.world_size == 4);
  REQUIRE(run.ranks.size() == 4);
  CHECK(run.slowest_rank == 2);
  CHECK(run.ranks.at(2).step == 7);
  CHECK(run.ranks.at(2).progress_pct == 35.0);
  CHECK(run.ranks.at(3).pid == 1003);
  CHECK(run.ranks.at(3).host == "elsewhere");
  CHECK(run.progress_pct == 50.0);  // the run-level view is the lowest rank's
  CHECK(run.status == fr::run_status::running);

  // Level again: no straggler stands out.
  tracker.apply(progress_of(2, 2'000'000, 10, 50.0));
  CHECK_FALSE(tracker.find("ddp")->slowest_rank);
  // Equal steps, lower progress: progress breaks the tie.
  tracker.apply(progress_of(1, 2'100'000, 10, 40.0));
  CHECK(tracker.find("ddp")->slowest_rank == 1);

  // Three ranks done: still running, waiting for the fourth.
  for (std::int64_t r = 0; r < 3; ++r) {
    fe::event done = rank_event(fe::event_type::run_complete, r, 3'000'000);
    done.status = "success";
    tracker.apply(done);
  }
  CHECK(tracker.find("ddp")->status == fr::run_status::running);
  CHECK(tracker.find("ddp")->ranks.at(0).status == fr::run_status::completed);
  CHECK_FALSE(tracker.find("ddp")->slowest_rank);  // one rank still running: nothing to compare
  fe::event last = rank_event(fe::event_type::run_complete, 3, 3'100'000);
  last.status = "success";
  tracker.apply(last);
  CHECK(tracker.find("ddp")->status == fr::run_status::completed);

  const json j = json::parse(fr::to_json(*tracker.find("ddp"), 4'000'000));
  CHECK(j["world_size"] == 4);
  CHECK(j["ranks"].size() == 4);
  CHECK(j["ranks"]["2"]["step"] == 10);
  CHECK(j["ranks"]["3"]["status"] == "completed");
  CHECK(j["slowest_rank"].is_null());
  CHECK(j["stale_ranks"] == json::array());
}

TEST_CASE("one rank's unrecoverable error fails the run of many ranks") {
  fr::run_tracker tracker;
  for (std::int64_t r = 0; r < 4; ++r) tracker.apply(progress_of(r, 1'000'000, 5, 10.0));
  fe::event err = rank_event(fe::event_type::error, 3, 1'500'000);
  err.error_message = "CUDA OOM";
  err.recoverable = false;
  tracker.apply(err);
  const fr::run_state& run = *tracker.find("ddp");
  CHECK(run.status == fr::run_status::failed);
  CHECK(run.ranks.at(3).status == fr::run_status::failed);
  CHECK(run.ranks.at(0).status == fr::run_status::running);
  REQUIRE(run.errors.size() == 1);
  CHECK(run.errors[0].rank == 3);
}

TEST_CASE("a rank goes stale after N of its own heartbeat intervals, on the reader's clock, and recovers") {
  fr::run_tracker tracker;
  for (std::int64_t r = 0; r < 2; ++r) {
    fe::event start = rank_event(fe::event_type::run_start, r, 0, 2);
    start.heartbeat_interval_s = 0.2;
    start.stale_after_heartbeats = 3;
    tracker.apply(start);
  }
  tracker.apply(rank_event(fe::event_type::heartbeat, 0, 1'000'000, 2));
  tracker.apply(rank_event(fe::event_type::heartbeat, 1, 1'400'000, 2));
  // No new event: only the clock moves. Rank 0 is past 3 x 0.2 s at 1.61 s, rank 1 not.
  tracker.check_stale(1'590'000);
  CHECK(tracker.find("ddp")->status == fr::run_status::running);
  tracker.check_stale(1'610'000);
  CHECK(tracker.find("ddp")->ranks.at(0).status == fr::run_status::stale);
  CHECK(tracker.find("ddp")->ranks.at(1).status == fr::run_status::running);
  CHECK(tracker.find("ddp")->stale_ranks == std::vector<std::int64_t>{0});
  CHECK(tracker.find("ddp")->status == fr::run_status::stale);
  CHECK(tracker.find("ddp")->running());
  const json j = json::parse(fr::to_json(*tracker.find("ddp"), 1'610'000));
  CHECK(j["stale_ranks"] == json::array({0}));
  CHECK(j["ranks"]["0"]["status"] == "stale");
  // It speaks again: running.
  tracker.apply(rank_event(fe::event_type::heartbeat, 0, 1'700'000, 2));
  CHECK(tracker.find("ddp")->status == fr::run_status::running);
  CHECK(tracker.find("ddp")->stale_ranks.empty());
  // A run that sent no interval falls back on stale_after (60 s by default).
  fe::event plain = rank_event(fe::event_type::heartbeat, 0, 0, 1);
  plain.run_id = "plain";
  tracker.apply(plain);
  tracker.check_stale(59'000'000);
  CHECK(tracker.find("plain")->status == fr::run_status::running);
  tracker.check_stale(61'000'000);
  CHECK(tracker.find("plain")->status == fr::run_status::stale);
}

TEST_CASE("a run that completed stays completed however long it is silent") {
  fr::run_tracker tracker;
  fe::event start = rank_event(fe::event_type::run_start, 0, 0, 1);
  start.heartbeat_interval_s = 0.2;
  tracker.apply(start);
  fe::event done = rank_event(fe::event_type::run_complete, 0, 100'000, 1);
  done.status = "cancelled";
  tracker.apply(done);
  tracker.check_stale(1'000'000'000);
  CHECK(tracker.find("ddp")->status == fr::run_status::cancelled);
}

// ---- the tracker against real processes

namespace {

constexpr auto trainer_heartbeat = 200ms;

// A trainer in a child process: run_start, then only the worker's heartbeats until a signal ends it.
class trainer_process {
 public:
  trainer_process(const std::string& path, const char* run_id) {
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      try {
        fe::emitter_options options;
        options.heartbeat_interval = trainer_heartbeat;
        fe::training_event_emitter emitter(run_id, std::make_unique<fe::file_sink>(path), options);
        emitter.emit_run_start();
        for (;;) ::pause();
      } catch (...) {
      }
      ::_exit(1);
    }
  }
  ~trainer_process() { kill_and_reap(); }
  pid_t pid() const { return pid_; }
  void signal(int sig) const { ::kill(pid_, sig); }
  void kill_and_reap() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);  // reaped: its /proc entry goes (a zombie counts as dead too)
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

std::unique_ptr<fr::live_reader> follow(const std::string& path) {
  fr::file_source_options options;
  options.follow = true;
  return std::make_unique<fr::live_reader>(std::make_unique<fr::file_source>(path, options), true);
}

// Polls until `done(run)` holds for the run, or a generous deadline (liveness, not speed).
bool poll_until(fr::live_reader& reader, const char* run_id, const std::function<bool(const fr::run_state&)>& done) {
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < until) {
    reader.poll(50ms, nullptr);
    const auto run = reader.run(run_id);
    if (run && done(*run)) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a trainer killed with SIGKILL is killed in the tracker within 2 heartbeat intervals") {
  reader_test::temp_dir dir;
  const std::string path = dir / "events.jsonl";
  trainer_process trainer(path, "victim");
  auto reader = follow(path);
  REQUIRE(poll_until(*reader, "victim", [](const fr::run_state& run) {
    return !run.ranks.empty() && run.ranks.begin()->second.events >= 3;  // run_start and heartbeats
  }));
  const auto alive = *reader->run("victim");
  CHECK(alive.ranks.at(0).pid == trainer.pid());
  CHECK(alive.ranks.at(0).host == host_name());
  REQUIRE(alive.ranks.at(0).process_start_time);
  REQUIRE(alive.ranks.at(0).heartbeat_interval_s);

  trainer.kill_and_reap();
  reader->poll(300ms, nullptr);  // lines written before the kill
  const auto snapshot = [&] {
    return reader->inspect([](const fr::event_stream&, const fr::run_tracker& t) { return *t.find("victim"); });
  };
  const std::int64_t last_us = snapshot().last_seen_us;
  const auto interval_us = std::chrono::duration_cast<std::chrono::microseconds>(trainer_heartbeat).count();
  // On the reader's clock, two intervals after its last event: killed, not merely stale (that
  // would take three).
  reader->check_stale(last_us + 2 * interval_us);
  CHECK(snapshot().status == fr::run_status::killed);
  CHECK(snapshot().ranks.at(0).status == fr::run_status::killed);
  CHECK_FALSE(snapshot().running());
  CHECK(json::parse(fr::to_json(snapshot(), last_us))["status"] == "killed");
}

TEST_CASE("a live trainer two intervals silent is not killed, SIGSTOP makes it stale, SIGCONT running") {
  reader_test::temp_dir dir;
  const std::string path = dir / "events.jsonl";
  trainer_process trainer(path, "sleeper");
  auto reader = follow(path);
  REQUIRE(poll_until(*reader, "sleeper", [](const fr::run_state& run) {
    return !run.ranks.empty() && run.ranks.begin()->second.events >= 2;
  }));
  const auto interval_us = std::chrono::duration_cast<std::chrono::microseconds>(trainer_heartbeat).count();
  // Its process is there with its start time: the look-up finds it alive.
  reader->check_stale(reader->run("sleeper")->last_seen_us + 2 * interval_us);
  CHECK(reader->inspect([](const fr::event_stream&, const fr::run_tracker& t) { return t.find("sleeper")->status; }) ==
        fr::run_status::running);

  trainer.signal(SIGSTOP);
  CHECK(poll_until(*reader, "sleeper", [](const fr::run_state& run) { return run.status == fr::run_status::stale; }));
  // Stopped is not dead: however long, it stays stale while its process is there.
  CHECK(reader->run("sleeper")->ranks.at(0).status == fr::run_status::stale);
  trainer.signal(SIGCONT);
  CHECK(poll_until(*reader, "sleeper", [](const fr::run_state& run) { return run.status == fr::run_status::running; }));
  trainer.kill_and_reap();
  CHECK(poll_until(*reader, "sleeper", [](const fr::run_state& run) { return run.status == fr::run_status::killed; }));
}

TEST_CASE("another process under the same pid (start time differs) is not the run's: killed") {
  // This test process stands in for a rank whose pid was reused: its start time is not the one
  // the rank's run_start gave.
  fr::run_tracker tracker;
  fe::event start;
  start.type = fe::event_type::run_start;
  start.run_id = "reused";
  start.host = host_name();
  start.pid = ::getpid();
  start.heartbeat_interval_s = 0.2;
  start.process_start_time = 1000.0;  // 1970: long before this process
  start.unix_us = unix_now_us();
  tracker.apply(start);
  tracker.check_stale(start.unix_us + 100'000);
  CHECK(tracker.find("reused")->status == fr::run_status::running);  // spoke within its interval
  tracker.check_stale(start.unix_us + 300'000);
  CHECK(tracker.find("reused")->status == fr::run_status::killed);

  // The same with no /proc look-ups: only stale.
  fr::run_tracker_options off;
  off.check_processes = false;
  fr::run_tracker blind(off);
  blind.apply(start);
  blind.check_stale(start.unix_us + 700'000);
  CHECK(blind.find("reused")->status == fr::run_status::stale);
}
