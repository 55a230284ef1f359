#include "foxml/events/file_sink.hpp"

#include "foxml/events/control.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>
#include <system_error>

namespace foxml::events {
namespace {

std::system_error path_error(int err, const std::string& what, const std::string& path) {
  return std::system_error(err, std::generic_category(), "foxml::events: " + what + " '" + path + "'");
}

std::string parent_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return {};
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

void create_private_directories(const std::string& dir) {
  if (dir.empty()) return;
  struct stat st{};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw path_error(ENOTDIR, "not a directory:", dir);
    return;
  }
  create_private_directories(parent_of(dir));
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) throw path_error(errno, "cannot create directory", dir);
}

file_sink::file_sink(std::string path) : file_sink(std::move(path), true) {}

file_sink::file_sink(std::string path, bool repair_tail) : path_(std::move(path)) {
  if (path_.empty()) throw std::invalid_argument("foxml::events: file sink path must not be empty");
  if (path_.back() == '/') throw std::invalid_argument("foxml::events: file sink path '" + path_ + "' names a directory");
  create_private_directories(parent_of(path_));
  // O_NOFOLLOW: a symlink planted at the final path (in a shared directory, say) is refused
  // rather than followed to a file the user did not name.
  // O_NONBLOCK: a FIFO (or device) at the path must not block the constructor waiting for a
  // reader; the fstat below then refuses anything but a regular file.
  // O_RDWR only to read the last byte (end_with_newline); a file we may only write to is still used.
  constexpr int flags = O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
  fd_.reset(::open(path_.c_str(), O_RDWR | flags, 0600));
  if (!fd_ && errno == EACCES) fd_.reset(::open(path_.c_str(), O_WRONLY | flags, 0600));
  if (!fd_) {
    const int err = errno;
    if (err == ELOOP) throw path_error(err, "refusing to follow a symlink at", path_);
    // ENXIO: a FIFO with no reader (a non-blocking open for writing fails rather than waits).
    if (err == ENXIO) throw path_error(err, "not a regular file:", path_);
    throw path_error(err, "cannot open event file", path_);
  }
  // Character devices stay allowed (/dev/null to discard, /dev/full in tests): they do not wait
  // for a peer, and the fd keeps O_NONBLOCK so a write cannot block either.
  struct stat st{};
  const bool stat_ok = ::fstat(fd_.get(), &st) == 0;
  const int stat_err = errno;
  if (!stat_ok || !(S_ISREG(st.st_mode) || S_ISCHR(st.st_mode))) {
    fd_.reset();
    if (!stat_ok) throw path_error(stat_err, "cannot stat event file", path_);
    throw path_error(EINVAL, "not a regular file:", path_);
  }
  if (repair_tail && S_ISREG(st.st_mode)) end_with_newline(st);
  // A read updates the file's atime when the atime is not newer than the mtime (relatime, the
  // default), so a follower reading each new batch moves it; a noatime mount never does, and
  // then readers cannot be told from none.
  struct statvfs fs{};
  reads_seen_ = S_ISREG(st.st_mode) && ::fstatvfs(fd_.get(), &fs) == 0 && (fs.f_flag & ST_NOATIME) == 0;
  if (reads_seen_ && ::fstat(fd_.get(), &st) == 0) last_atime_ = st.st_atim;
}

void file_sink::note_consumer(std::chrono::steady_clock::time_point now,
                              std::chrono::steady_clock::time_point& last_seen) noexcept {
  struct stat st{};
  if (!reads_seen_ || !fd_ || ::fstat(fd_.get(), &st) != 0) {
    last_seen = now;  // cannot tell: keep the short latency
    return;
  }
  if (st.st_atim.tv_sec != last_atime_.tv_sec || st.st_atim.tv_nsec != last_atime_.tv_nsec) {
    last_atime_ = st.st_atim;
    last_seen = now;
  }
}

void file_sink::end_with_newline(const struct stat& st) noexcept {
  // A writer killed inside a large write() can leave a partial last line; appending our first
  // line onto it would make that line unreadable. Live appenders write whole lines with a single
  // O_APPEND write(), but a large one becomes visible page by page: a file that seems to end
  // inside a line may just be mid-write. So a missing '\n' only counts once the size has held
  // still for 200 ms (a live write of a few MiB finishes well within that; on a loaded 2-vCPU
  // machine 6 ms was seen to be too short, and 50 ms once at a load average of 9: a writer
  // descheduled inside its write()); only files that end badly pay the wait, at set-up time.
  constexpr int settle_checks = 40;
  constexpr auto check_every = std::chrono::milliseconds(5);
  constexpr int max_checks = 400;  // a file that never stops growing has a live writer: leave it
  off_t size = st.st_size;
  int still = 0;
  for (int checks = 0; size > 0 && checks < max_checks; ++checks) {
    char last = '\n';
    if (::pread(fd_.get(), &last, 1, size - 1) != 1 || last == '\n') return;
    if (still == settle_checks) {
      const char newline = '\n';
      (void)!::write(fd_.get(), &newline, 1);
      return;
    }
    std::this_thread::sleep_for(check_every);
    struct stat now {};
    if (::fstat(fd_.get(), &now) != 0) return;
    still = now.st_size == size ? still + 1 : 0;
    size = now.st_size;
  }
}

file_sink::~file_sink() = default;

std::size_t file_sink::write(const line_batch& batch) noexcept {
  if (!fd_ || batch.empty()) return 0;
  const std::string_view text = batch.text();
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd_.get(), text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  failing_ = done < text.size();
  // Count the whole lines that reached the file. A line cut by a failed write is ended with a
  // newline, so the next batch starts on a line of its own and readers skip one malformed line.
  std::size_t whole = 0;
  while (whole < batch.size()) {
    const std::string_view upto = batch.text(0, whole + 1);
    if (upto.size() > done) break;
    ++whole;
  }
  if (failing_ && done > 0 && batch.text(0, whole).size() != done) {
    const char newline = '\n';
    (void)!::write(fd_.get(), &newline, 1);
  }
  return whole;
}

void file_sink::close() noexcept { fd_.reset(); }

std::unique_ptr<sink> file_sink::reopen_after_fork() const {
  try {
    return std::unique_ptr<sink>(new file_sink(path_, false));
  } catch (...) {
    return nullptr;
  }
}

void file_sink::attach_control(control_attachment& attachment) noexcept {
  try {
    if (attachment.file_directory.empty()) attachment.file_directory = control_directory_for(path_);
  } catch (...) {
    // Out of memory: no control endpoint from this sink.
  }
}

}  // namespace foxml::events
