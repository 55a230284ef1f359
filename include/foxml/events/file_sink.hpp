#pragma once
/// The JSONL file sink: appends whole lines to one file, safely shared by many processes.

#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <string>

#include "foxml/events/detail/unique_fd.hpp"
#include "foxml/events/sink.hpp"

namespace foxml::events {

/// Appends lines to a file opened with O_APPEND and writes each batch with a single write(), so
/// processes appending to the same file never interleave inside a line. A new file is created 0600
/// and missing parent directories 0700; a symlink, FIFO, socket or directory at the final path
/// is refused (character devices such as /dev/null are allowed). A file left ending in a partial line (a writer killed
/// mid-write) gets a '\n' before our first line, so that line stays readable.
class file_sink final : public sink {
 public:
  /// Opens (creating when missing) `path`. Throws std::system_error naming the path on failure
  /// ("not a regular file" for a FIFO or device); never blocks on a FIFO.
  explicit file_sink(std::string path);
  ~file_sink() override;
  file_sink(const file_sink&) = delete;
  file_sink& operator=(const file_sink&) = delete;

  const std::string& path() const noexcept { return path_; }

  std::size_t write(const line_batch& batch) noexcept override;
  void close() noexcept override;
  bool healthy() noexcept override { return fd_ && !failing_; }
  /// A process reading the file (a follower, `tail -f`) moves its atime: that is a consumer.
  void note_consumer(std::chrono::steady_clock::time_point now,
                     std::chrono::steady_clock::time_point& last_seen) noexcept override;
  std::unique_ptr<sink> reopen_after_fork() const override;
  std::string describe() const override { return "file://" + path_; }
  /// Names `control/` next to the file as the control directory (control.hpp).
  void attach_control(control_attachment& attachment) noexcept override;

 private:
  // `repair_tail`: end a dead writer's partial last line first. Not in a fork child: there the
  // writer is its live parent, and the repair could make the child's first emit wait.
  file_sink(std::string path, bool repair_tail);
  void end_with_newline(const struct stat& st) noexcept;

  std::string path_;
  detail::unique_fd fd_;
  bool failing_ = false;  // the last write failed (ENOSPC, EIO...); cleared by the next success
  bool reads_seen_ = false;  // reads move the atime (a regular file on a mount without noatime)
  struct timespec last_atime_{};
};

/// Creates missing directories of `dir` with mode 0700. Throws std::system_error on failure.
void create_private_directories(const std::string& dir);

}  // namespace foxml::events
