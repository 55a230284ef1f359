#include "foxml/events/reader/file_source.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <vector>

#include "fd.hpp"
#include "line_splitter.hpp"
#include "stats_json.hpp"

namespace foxml::events::reader {

using detail::throw_errno;
using detail::unique_fd;

struct file_source::impl {
  std::string path;
  std::string origin;
  file_source_options options;
  file_source_stats stats;
  detail::line_splitter splitter;
  detail::waker waker;
  unique_fd inotify;
  unique_fd epoll;
  unique_fd file;
  dev_t dev = 0;
  ino_t ino = 0;
  dev_t refused_dev = 0;
  ino_t refused_ino = 0;
  std::uint64_t offset = 0;  // bytes of the current file consumed so far
  bool done = false;
  bool capped = false;             // the last read stopped at max_poll_bytes, not at the end
  std::uint64_t poll_budget = 0;   // bytes this poll may still read (with max_poll_bytes)
  std::vector<char> buffer = std::vector<char>(1 << 16);

  impl(std::string p, file_source_options o)
      : path(std::move(p)), origin("file://" + path), options(o), splitter(o.max_line_bytes) {}

  // Counts a non-regular file once per identity, not once per look.
  void refuse(const struct stat& st) {
    if (st.st_dev == refused_dev && st.st_ino == refused_ino) return;
    refused_dev = st.st_dev;
    refused_ino = st.st_ino;
    ++stats.not_regular;
  }

  bool open_file() {
    // Look before opening: opening a FIFO's read end would block (or, non-blocking, release a
    // writer waiting on it only to hang up on it).
    struct stat before {};
    if (::stat(path.c_str(), &before) != 0) return false;
    if (!S_ISREG(before.st_mode)) {
      refuse(before);
      errno = EINVAL;
      return false;
    }
    // O_NONBLOCK: the path may have changed to a FIFO since the stat; a regular file ignores it.
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!fd) return false;
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      refuse(st);
      errno = EINVAL;
      return false;
    }
    file = std::move(fd);
    dev = st.st_dev;
    ino = st.st_ino;
    offset = 0;
    splitter.reset(0);
    return true;
  }

  void start_poll() {
    poll_budget = options.max_poll_bytes;
    capped = false;
  }

  template <class Handler>
  bool read_to_end(const Handler& on_line) {
    bool any = false;
    for (;;) {
      std::size_t want = buffer.size();
      if (options.max_poll_bytes != 0) {
        if (poll_budget == 0) {
          capped = true;
          return any;
        }
        want = static_cast<std::size_t>(std::min<std::uint64_t>(want, poll_budget));
      }
      const ssize_t n = ::read(file.get(), buffer.data(), want);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return any;
      any = true;
      if (options.max_poll_bytes != 0) poll_budget -= static_cast<std::uint64_t>(n);
      offset += static_cast<std::uint64_t>(n);
      stats.bytes += static_cast<std::uint64_t>(n);
      splitter.feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)), origin, on_line);
    }
  }

  // Reads whatever is new, noticing truncation and rotation. Returns whether any byte was read.
  template <class Handler>
  bool sync(const Handler& on_line) {
    bool any = false;
    const bool had_file = ino != 0;
    if (!file && open_file() && had_file) ++stats.rotations;  // a new file after a delete
    if (!file) return false;
    struct stat st {};
    if (::fstat(file.get(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) < offset) {
      // Truncated in place (copytruncate, `> file`): start again from the top.
      ++stats.truncations;
      ::lseek(file.get(), 0, SEEK_SET);
      offset = 0;
      splitter.reset(0);
    }
    any |= read_to_end(on_line);
    if (capped) return true;  // the rest of this file first; rotation is looked at once it is read
    struct stat now {};
    const bool replaced = ::stat(path.c_str(), &now) != 0 || now.st_ino != ino || now.st_dev != dev;
    if (replaced) {
      // The old file may have got its last lines between our read and the rename: finish it, and
      // hand out a dangling partial line so a line cut by the rotation is counted, not hidden.
      any |= read_to_end(on_line);
      if (capped) return true;  // the old file's end next poll, before it is let go
      splitter.finish(origin, on_line);
      file.reset();
      if (open_file()) {
        ++stats.rotations;
        any |= read_to_end(on_line);
      }
    }
    return any;
  }
};

file_source::file_source(std::string path, file_source_options options)
    : impl_(std::make_unique<impl>(std::move(path), options)) {
  auto& s = *impl_;
  if (options.follow) {
    // Watch the directory before opening, so nothing that happens between the two is missed.
    const auto slash = s.path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : s.path.substr(0, slash);
    s.inotify.reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (!s.inotify) throw_errno("inotify_init1");
    const std::uint32_t mask = IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CLOSE_WRITE |
                               IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
    if (::inotify_add_watch(s.inotify.get(), dir.c_str(), mask) < 0) {
      throw std::system_error(errno, std::generic_category(), "inotify_add_watch " + dir);
    }
    s.epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!s.epoll) throw_errno("epoll_create1");
    for (const int fd : {s.inotify.get(), s.waker.fd()}) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      if (::epoll_ctl(s.epoll.get(), EPOLL_CTL_ADD, fd, &ev) < 0) throw_errno("epoll_ctl");
    }
  }
  if (!s.open_file()) {
    if (!options.follow && s.stats.not_regular > 0) {
      throw std::system_error(EINVAL, std::generic_category(),
                              "open " + s.path + ": not a regular file (a FIFO, device or directory)");
    }
    if (!options.follow) throw std::system_error(errno, std::generic_category(), "open " + s.path);
  } else if (options.from_end) {
    const off_t end = ::lseek(s.file.get(), 0, SEEK_END);
    s.offset = end > 0 ? static_cast<std::uint64_t>(end) : 0;
    s.splitter.reset(s.offset);
  }
}

file_source::~file_source() = default;

bool file_source::poll(std::chrono::milliseconds timeout, const line_handler& on_line) {
  auto& s = *impl_;
  s.start_poll();
  if (!s.options.follow) {
    if (s.done) return false;
    s.read_to_end(on_line);
    if (s.capped) return true;
    s.splitter.finish(s.origin, on_line);
    s.done = true;
    return false;
  }
  if (s.sync(on_line)) return true;
  s.start_poll();
  epoll_event events[2];
  const int n = ::epoll_wait(s.epoll.get(), events, 2, static_cast<int>(timeout.count()));
  for (int i = 0; i < n; ++i) {
    if (events[i].data.fd == s.waker.fd()) {
      s.waker.drain();
    } else {
      // The events only say "look again"; sync() finds out what changed.
      char drain[4096];
      while (::read(s.inotify.get(), drain, sizeof drain) > 0) {
      }
    }
  }
  s.sync(on_line);
  return true;
}

void file_source::wake() noexcept { impl_->waker.wake(); }

std::string file_source::describe() const { return impl_->origin; }

file_source_stats file_source::stats() const noexcept { return impl_->stats; }

std::string file_source::stats_json() const { return nlohmann::json(impl_->stats).dump(); }

}  // namespace foxml::events::reader
