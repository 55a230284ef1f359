#pragma once
// The per-run control endpoint: a Unix SOCK_STREAM socket (0600, in a 0700 directory) served by a
// thread of its own, so neither the training thread nor the worker pays for it. Protocol:
// docs/protocol.md, "Control".

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "foxml/events/detail/command_inbox.hpp"
#include "foxml/events/detail/unique_fd.hpp"

namespace foxml::events::detail {

class control_endpoint {
 public:
  // Creates `directory` (0700) when missing, binds `path` (0600) and starts the thread. `status`
  // returns the JSON object a status query answers with (called on the control thread).
  // Throws std::system_error / std::invalid_argument naming the path on failure.
  control_endpoint(const std::string& directory, std::string path, command_inbox& inbox,
                   std::function<std::string()> status);
  ~control_endpoint();
  control_endpoint(const control_endpoint&) = delete;
  control_endpoint& operator=(const control_endpoint&) = delete;

  // Stops the thread, closes the socket and unlinks its file. Idempotent.
  void stop() noexcept;
  // In a fork child: closes this process's copies of the descriptors; touches neither the file
  // (the parent's) nor the thread (which does not exist here).
  void forget_after_fork() noexcept;
  const std::string& path() const noexcept { return path_; }

 private:
  void run() noexcept;

  std::string path_;
  command_inbox& inbox_;
  std::function<std::string()> status_;
  unique_fd listener_;
  unique_fd wake_;  // eventfd: stop
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

}  // namespace foxml::events::detail
