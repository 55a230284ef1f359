#pragma once
// Helpers of the fault suite: start the fault trainer as a child process, wait for it with a
// deadline, and read back its event file and shared record.

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "faults/shared_record.hpp"

namespace foxml::events::test {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool sanitized = true;
#else
inline constexpr bool sanitized = false;
#endif
#else
inline constexpr bool sanitized = false;
#endif

/// A trainer child process with its record mapped in this process too.
class trainer_process {
 public:
  trainer_process(const std::string& record_path, std::vector<std::string> args) {
    const int fd = open(record_path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, sizeof(shared_record)) != 0) throw std::runtime_error("record file");
    void* map = mmap(nullptr, sizeof(shared_record), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) throw std::runtime_error("mmap");
    record_ = static_cast<shared_record*>(map);
    args.insert(args.begin(), {FOXML_EVENTS_FAULT_TRAINER, "--record", record_path});
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      // A test run from a background job inherits SIGINT/SIGQUIT ignored, and an ignored signal is
      // left alone by the hook: start the trainer with the dispositions a terminal gives it.
      for (int number : {SIGINT, SIGQUIT, SIGTERM, SIGHUP}) signal(number, SIG_DFL);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~trainer_process() {
    if (pid_ > 0 && !status_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    munmap(record_, sizeof(shared_record));
  }
  trainer_process(const trainer_process&) = delete;
  trainer_process& operator=(const trainer_process&) = delete;

  pid_t pid() const { return pid_; }
  shared_record& record() { return *record_; }

  /// Waits until the trainer accepted `events` (its first 100 are the ready mark), or the deadline.
  bool wait_accepted(std::uint64_t events, std::chrono::seconds deadline = std::chrono::seconds(60)) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (record_->accepted.load() < events) {
      if (std::chrono::steady_clock::now() > until || exited()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // polling another process
    }
    return true;
  }

  /// The wait status, waiting at most `deadline` (then SIGKILL, and nullopt).
  std::optional<int> wait(std::chrono::seconds deadline = std::chrono::seconds(60)) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (!exited()) {
      if (std::chrono::steady_clock::now() > until) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        status_ = -1;
        return std::nullopt;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return status_;
  }

 private:
  bool exited() {
    if (status_) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) status_ = status;
    return status_.has_value();
  }

  pid_t pid_ = -1;
  shared_record* record_ = nullptr;
  std::optional<int> status_;
};

/// The lines of an event file: parsed events, and the lines that did not parse.
struct event_file {
  std::vector<nlohmann::json> events;
  std::vector<std::string> malformed;
  bool ends_with_newline = true;

  static event_file read(const std::string& path) {
    event_file f;
    std::ifstream in(path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    f.ends_with_newline = text.empty() || text.back() == '\n';
    std::size_t start = 0;
    while (start < text.size()) {
      std::size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      const std::string line = text.substr(start, end - start);
      start = end + 1;
      // A sink opening while another process is mid-write may add an empty line (see file_sink).
      if (line.empty()) continue;
      auto parsed = nlohmann::json::parse(line, nullptr, false);
      if (parsed.is_discarded() || !parsed.is_object()) {
        f.malformed.push_back(line.substr(0, 80));
      } else {
        f.events.push_back(std::move(parsed));
      }
    }
    return f;
  }

  std::vector<const nlohmann::json*> of_type(const std::string& type, const std::string& run_id = "") const {
    std::vector<const nlohmann::json*> out;
    for (const auto& e : events) {
      if (e.value("event_type", "") == type && (run_id.empty() || e.value("run_id", "") == run_id)) out.push_back(&e);
    }
    return out;
  }

  /// The trainer's event numbers found in the file (metrics step, or the log message's `i=N`).
  std::vector<bool> numbers(std::uint64_t up_to, const std::string& run_id) const {
    std::vector<bool> seen(up_to, false);
    for (const auto& e : events) {
      if (e.value("run_id", "") != run_id) continue;
      std::uint64_t n = up_to;
      const std::string type = e.value("event_type", "");
      if (type == "metrics") {
        n = e.value("step", std::uint64_t{0});
      } else if (type == "log") {
        const std::string m = e.value("message", "");
        if (m.rfind("i=", 0) == 0) n = std::strtoull(m.c_str() + 2, nullptr, 10);
      }
      if (n < up_to) seen[n] = true;
    }
    return seen;
  }
};

/// Every event number the trainer had accepted before `before` (its record, at most one ring's
/// worth back), with the time it was accepted.
inline std::vector<std::pair<std::uint64_t, std::uint64_t>> accepted_before(shared_record& r, std::uint64_t count) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  const std::uint64_t from = count > shared_record::ring_size ? count - shared_record::ring_size : 0;
  for (std::uint64_t n = from; n < count; ++n) {
    const auto& e = r.ring[n % shared_record::ring_size];
    const std::uint64_t index = e.index.load();
    if (index != 0) out.emplace_back(index - 1, e.ns.load());
  }
  return out;
}

}  // namespace foxml::events::test
