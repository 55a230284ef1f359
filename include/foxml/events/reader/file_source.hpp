#pragma once
/// Reads a JSON-lines file and, when asked, follows it like `tail -F`.

#include <cstdint>
#include <memory>
#include <string>

#include "foxml/events/reader/defaults.hpp"
#include "foxml/events/reader/source.hpp"

namespace foxml::events::reader {

/// Settings of a file_source.
struct file_source_options {
  /// Keep reading as the file grows, across rotation (rename or delete, then a new file at the
  /// path) and truncation; wait for a file that does not exist yet. Driven by inotify on the
  /// file's directory, so an idle follower costs nothing.
  bool follow = false;
  /// Start at the current end of the file instead of its beginning (only new lines).
  bool from_end = false;
  /// Longest line handed out; longer ones come out as `oversized`.
  std::size_t max_line_bytes = defaults::max_line_bytes;
  /// Most bytes one poll() reads (0: no cap, read to the end). A caller that holds the lines of a
  /// poll until they are consumed (a pull-mode iterator) stays bounded by this, not the file size.
  std::size_t max_poll_bytes = 0;
};

/// Counters of a file_source.
struct file_source_stats {
  std::uint64_t bytes = 0;
  std::uint64_t rotations = 0;    ///< times a new file replaced the one being read
  std::uint64_t truncations = 0;  ///< times the file shrank under the reader
  /// Times something other than a regular file (a FIFO, a device, a directory) stood at the
  /// path while following; each one is counted once and never opened for reading.
  std::uint64_t not_regular = 0;
};

/// A file read to its end (and followed, with `follow`). Without `follow`, a missing file throws
/// from the constructor; with it, the source waits for the file to appear. Only regular files are
/// read: a FIFO, device or directory at the path throws without `follow` and is skipped (counted
/// in `not_regular`, then waited past like a missing file) with it, so a planted FIFO can never
/// block the reader in open() or read(). Symlinks are followed (a `latest.jsonl` link to a run's
/// file is ordinary use; the reader only reads). The directory holding
/// the file must exist. A partial last line is held back until its `\n` arrives (without `follow`
/// it is handed out at the end).
class file_source final : public source {
 public:
  /// Opens `path`. Throws std::system_error when the file (without `follow`) or its directory
  /// (with `follow`) cannot be opened, or (without `follow`) is not a regular file.
  explicit file_source(std::string path, file_source_options options = {});
  ~file_source() override;
  file_source(const file_source&) = delete;
  file_source& operator=(const file_source&) = delete;

  bool poll(std::chrono::milliseconds timeout, const line_handler& on_line) override;
  void wake() noexcept override;
  std::string describe() const override;
  std::string stats_json() const override;

  file_source_stats stats() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace foxml::events::reader
