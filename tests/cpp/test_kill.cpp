// The kill suite: a trainer emitting at a steady rate is SIGKILLed at seeded random moments. Every
// event it had accepted more than one flush interval before the kill must be in the file, the file
// holds at most one partial line (its last), and the next run's events all read cleanly.
//
// FOXML_EVENTS_SEED picks the moments (default 9); FOXML_EVENTS_SOAK=1 makes it 300 kills per
// event size instead of 30. The measured loss window (the oldest accepted event missing from the
// file, before the kill) is printed.

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>

#include "faults/fault_support.hpp"
#include "foxml/events/codec.hpp"
#include "test_support.hpp"

namespace fe = foxml::events;
using fe::test::trainer_process;

namespace {


long env_long(const char* name, long fallback) {
  const char* text = std::getenv(name);
  return text != nullptr && *text != '\0' ? std::atol(text) : fallback;
}

struct scanned_file {
  std::vector<std::string> lines;  // without the '\n'
  bool ends_with_newline = true;
};

scanned_file scan(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  scanned_file f;
  f.ends_with_newline = text.empty() || text.back() == '\n';
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    f.lines.emplace_back(text, start, end - start);
    start = end + 1;
  }
  return f;
}

// The trainer's event number in one of its lines (metrics `"step":N`, log `"message":"i=N `).
std::optional<std::uint64_t> number_in(const std::string& line) {
  for (const char* key : {"\"step\":", "\"message\":\"i="}) {
    const std::size_t at = line.find(key);
    if (at != std::string::npos) return std::strtoull(line.c_str() + at + std::strlen(key), nullptr, 10);
  }
  return std::nullopt;
}

struct kill_outcome {
  std::uint64_t window_ns = 0;  // how far before the kill the oldest missing accepted event was
  bool partial = false;
  bool next_run_clean = false;
};

kill_outcome kill_once(const std::string& dir, std::size_t payload, double rate, int delay_ms,
                       std::uint64_t allowed_window_ns) {
  const std::string path = dir + "/events.jsonl";
  kill_outcome outcome;
  {
    trainer_process trainer(dir + "/record", {"--file", path, "--payload", std::to_string(payload), "--rate",
                                              std::to_string(rate), "--run-id", "killed-run"});
    REQUIRE(trainer.wait_accepted(101));
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));  // the random moment itself
    const std::uint64_t kill_ns = fe::test::monotonic_ns();
    kill(trainer.pid(), SIGKILL);
    const auto status = trainer.wait();
    REQUIRE(status);
    REQUIRE(WIFSIGNALED(*status));

    const scanned_file file = scan(path);
    std::vector<bool> seen;
    for (const std::string& line : file.lines) {
      if (auto n = number_in(line)) {
        if (*n >= seen.size()) seen.resize(*n + 1, false);
        seen[*n] = true;
      }
    }
    const auto accepted = fe::test::accepted_before(trainer.record(), trainer.record().accepted.load());
    for (const auto& [index, ns] : accepted) {
      if (ns >= kill_ns || (index < seen.size() && seen[index])) continue;
      outcome.window_ns = std::max(outcome.window_ns, kill_ns - ns);
    }
    CHECK(outcome.window_ns <= allowed_window_ns);
    // A write cut by the kill leaves at most one partial line, the last one.
    std::size_t malformed = 0;
    for (std::size_t i = 0; i < file.lines.size(); ++i) {
      const bool last = i + 1 == file.lines.size();
      if (last && !file.ends_with_newline) {
        outcome.partial = true;
        continue;
      }
      if (!fe::decode_line(file.lines[i])) ++malformed;
    }
    CHECK(malformed == 0);
  }
  // The next run appends to the same file; all of its events read cleanly.
  trainer_process next(dir + "/record", {"--file", path, "--count", "10", "--run-id", "next-run"});
  const auto status = next.wait();
  REQUIRE(status);
  REQUIRE(WIFEXITED(*status));
  const scanned_file file = scan(path);
  std::size_t clean = 0;
  for (const std::string& line : file.lines) {
    if (line.find("next-run") != std::string::npos && fe::decode_line(line)) ++clean;
  }
  outcome.next_run_clean = clean == 12;  // run_start, 10 metrics, run_complete
  // The file sink starts on a new line after a fragment a kill left (issue 9, defect 5).
  CHECK(outcome.next_run_clean);
  return outcome;
}

void kill_suite(std::size_t payload, double rate) {
  const long rounds = env_long("FOXML_EVENTS_SOAK", 0) != 0 ? 300 : 30;
  // Sanitized builds write several times slower; the window they are held to grows with it.
  const long default_ms = fe::test::sanitized ? 1000 : 100;
  const std::uint64_t allowed_ns =
      static_cast<std::uint64_t>(env_long("FOXML_EVENTS_KILL_WINDOW_MS", default_ms)) * 1000000;
  std::mt19937 random(static_cast<std::uint32_t>(env_long("FOXML_EVENTS_SEED", 9)));
  std::uniform_int_distribution<int> delay_ms(1, 60);
  std::uint64_t worst_ns = 0;
  int partial = 0;
  int unclean_next = 0;
  for (long round = 0; round < rounds; ++round) {
    CAPTURE(round);
    fe::testing::temp_dir dir;
    const kill_outcome o = kill_once(dir.path().string(), payload, rate, delay_ms(random), allowed_ns);
    worst_ns = std::max(worst_ns, o.window_ns);
    partial += o.partial ? 1 : 0;
    unclean_next += o.next_run_clean ? 0 : 1;
  }
  CHECK_MESSAGE(unclean_next == 0, unclean_next << " next runs did not read cleanly after a partial line");
  MESSAGE(payload << "-byte payload at " << rate << " events/s: " << rounds << " kills, loss window "
                  << static_cast<double>(worst_ns) / 1e6 << " ms at worst, " << partial
                  << " kills left a partial last line");
}

}  // namespace

// The asserted window (FOXML_EVENTS_KILL_WINDOW_MS, default 100 ms) is one flush interval on a shared,
// noisy machine: the worker's max_idle_wait (500 us) plus the write; the measured figure is printed.
TEST_CASE("SIGKILL at random moments, small events at 50k/s: nothing older than a flush interval is lost") {
  kill_suite(0, 50000);
}

TEST_CASE("SIGKILL at random moments, 64 KiB events at 1k/s: nothing older than a flush interval is lost") {
  kill_suite(64 * 1024, 1000);
}
