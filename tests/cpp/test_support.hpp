#pragma once
// Shared helpers for the C++ tests: temporary directories, file reading, and a sink that can be
// held shut to stall the worker on purpose.

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "foxml/events/memory_sink.hpp"
#include "foxml/events/sink.hpp"

namespace foxml::events::testing {

// A fresh directory under $TMPDIR, removed with everything in it at scope exit.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "foxml-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// TSan cannot follow a thread started in the child of a multi-threaded fork (it still holds the
// parent's threads and reports "dup thread"): fork tests skip under it; plain and ASan runs cover them.
#if defined(__SANITIZE_THREAD__)
constexpr bool under_tsan = true;
#else
constexpr bool under_tsan = false;
#endif
// GCC 12's libasan does not reset its allocator's locks in a fork() child (glibc's malloc does):
// a child of a busy multi-threaded parent can block for good in its first allocation (seen in
// the forked-child signal test, 1 run in 6). Tests that fork from a parent with several busy
// threads skip under either sanitizer; the plain run covers them.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool under_asan = true;
#else
constexpr bool under_asan = false;
#endif
constexpr bool fork_from_busy_threads_unsupported = under_tsan || under_asan;

// The /proc/self/task entry of this process's thread called `name` ("" when there is none).
inline std::filesystem::path thread_task(const std::string& name) {
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string thread_name;
    std::getline(comm, thread_name);
    if (thread_name == name) return task.path();
  }
  return {};
}

inline std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

// Waits up to `limit` for `condition`; returns whether it became true. For waiting on a
// background thread, never for asserting a duration.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// A gate that a gated_sink waits on inside write() and flush() while it is shut.
class gate {
 public:
  void open() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  void wait_open() {
    std::unique_lock<std::mutex> lock(mutex_);
    waiting_ = true;
    cv_.wait(lock, [&] { return open_; });
  }
  // True once a writer is (or was) blocked on the shut gate.
  bool someone_waiting() {
    std::lock_guard<std::mutex> lock(mutex_);
    return waiting_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
  bool waiting_ = false;
};

// Forwards to a memory_sink, but write() and flush() first wait for the gate: a sink that hangs
// until the test says otherwise.
class gated_sink final : public sink {
 public:
  gated_sink(std::shared_ptr<gate> g, std::shared_ptr<memory_store> store) : gate_(std::move(g)), inner_(std::move(store)) {}
  std::size_t write(const line_batch& batch) noexcept override {
    gate_->wait_open();
    return inner_.write(batch);
  }
  void flush() noexcept override {
    gate_->wait_open();
    inner_.flush();
  }
  std::string describe() const override { return "gated://"; }

 private:
  std::shared_ptr<gate> gate_;
  memory_sink inner_;
};

}  // namespace foxml::events::testing
