// The fork storm: 16 children x 50 rounds forked from a process whose other thread keeps emitting.
// Every child's events must arrive complete, and a watchdog turns a hang into a failure.
// FOXML_EVENTS_SOAK=1 makes it 500 rounds.

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "faults/fault_support.hpp"
#include "foxml/events/emitter.hpp"
#include "foxml/events/file_sink.hpp"
#include "test_support.hpp"

namespace fe = foxml::events;

namespace {

using foxml::events::testing::fork_from_busy_threads_unsupported;

constexpr int children_per_round = 16;
constexpr int events_per_child = 20;

// Ends the whole test process when it is still running after `limit`: a hang is a failure.
class watchdog {
 public:
  explicit watchdog(std::chrono::seconds limit)
      : thread_([this, limit] {
          std::unique_lock<std::mutex> lock(mutex_);
          if (!done_cv_.wait_for(lock, limit, [this] { return done_; })) {
            std::fprintf(stderr, "fork storm: watchdog fired after %llds, failing\n",
                         static_cast<long long>(limit.count()));
            std::_Exit(97);
          }
        }) {}
  ~watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    done_cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace

TEST_CASE("fork storm: 16 children x 50 rounds from an emitting process, every child's events complete" *
          doctest::skip(fork_from_busy_threads_unsupported)) {
  const char* soak = std::getenv("FOXML_EVENTS_SOAK");
  const int rounds = soak != nullptr && *soak != '\0' && *soak != '0' ? 500 : 50;
  fe::testing::temp_dir dir;
  const std::string path = dir.file("events.jsonl");
  watchdog dog(std::chrono::seconds(rounds * 5 + 120));

  std::set<pid_t> children;
  {
    fe::training_event_emitter emitter("fork-storm", std::make_unique<fe::file_sink>(path));
    emitter.emit_run_start();
    std::atomic<bool> stop{false};
    std::thread parent_emitter([&] {
      for (std::int64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        emitter.emit_metrics(i, {{"parent", 1.0}});
        if (i % 64 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));  // pacing, not sync
      }
    });
    for (int round = 0; round < rounds; ++round) {
      CAPTURE(round);
      std::vector<pid_t> pids;
      for (int c = 0; c < children_per_round; ++c) {
        const pid_t pid = fork();
        if (pid == 0) {
          // The child: its first emit gives it its own worker and sink (fork_policy::restart).
          bool ok = true;
          for (int i = 0; i < events_per_child; ++i) ok = emitter.emit_metrics(i, {{"child", 1.0}}) && ok;
          ok = emitter.close(std::chrono::seconds(20)).ok() && ok;
          _exit(ok ? 0 : 1);
        }
        REQUIRE(pid > 0);
        pids.push_back(pid);
      }
      for (pid_t pid : pids) {
        int status = 0;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
        children.insert(pid);
      }
    }
    stop = true;
    parent_emitter.join();
    CHECK(emitter.close(std::chrono::seconds(10)).ok());
  }

  const auto file = fe::test::event_file::read(path);
  CHECK(file.malformed.empty());
  std::map<std::int64_t, std::set<std::int64_t>> seqs_by_pid;
  for (const auto& e : file.events) {
    const auto pid = e.value("pid", std::int64_t{0});
    if (children.count(static_cast<pid_t>(pid)) != 0) seqs_by_pid[pid].insert(e.value("seq", std::int64_t{-1}));
  }
  CHECK(seqs_by_pid.size() == children.size());
  std::size_t incomplete = 0;
  for (const auto& [pid, seqs] : seqs_by_pid) {
    const bool complete = seqs.size() == events_per_child && *seqs.begin() == 0 && *seqs.rbegin() == events_per_child - 1;
    incomplete += complete ? 0 : 1;
  }
  CHECK(incomplete == 0);
  MESSAGE(children.size() << " children, " << file.events.size() << " lines");
}
