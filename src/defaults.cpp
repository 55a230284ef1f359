#include "foxml/events/defaults.hpp"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <system_error>

#include "foxml/events/detail/text.hpp"
#include "foxml/events/file_sink.hpp"

namespace foxml::events {
namespace {

std::string home_directory() {
  std::string home = detail::env_value("HOME");
  if (!home.empty()) return home;
  if (const passwd* pw = getpwuid(getuid()); pw != nullptr && pw->pw_dir != nullptr) return pw->pw_dir;
  throw std::runtime_error("foxml::events: no $HOME and no home directory for uid " + std::to_string(getuid()) +
                           "; set FOXML_TRAINING_EVENT_FILE or pass a sink");
}

std::system_error untrusted(int err, const std::string& path, const std::string& why) {
  return std::system_error(err, std::generic_category(),
                           "foxml::events: refusing to use '" + path + "': " + why);
}

std::string mode_text(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

}  // namespace

void check_private_directory(const std::string& dir) {
  // lstat: a symlink here could point anywhere (another user's directory), so it is refused rather
  // than followed.
  struct stat st{};
  if (::lstat(dir.c_str(), &st) != 0) throw untrusted(errno, dir, "cannot inspect the directory");
  if (S_ISLNK(st.st_mode)) throw untrusted(EPERM, dir, "it is a symlink, not a directory");
  if (!S_ISDIR(st.st_mode)) throw untrusted(ENOTDIR, dir, "not a directory");
  if (st.st_uid != ::geteuid()) {
    throw untrusted(EPERM, dir, "owned by uid " + std::to_string(st.st_uid) + ", not by us (uid " +
                                    std::to_string(::geteuid()) + ")");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    throw untrusted(EPERM, dir, "group- or world-writable (mode " + mode_text(st.st_mode) + "); chmod 700 it");
  }
}

void check_private_file(const std::string& path) {
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;  // the file sink creates it, 0600
    throw untrusted(errno, path, "cannot inspect the file");
  }
  if (!S_ISREG(st.st_mode)) throw untrusted(EINVAL, path, "not a regular file");
  if (st.st_uid != ::geteuid()) {
    throw untrusted(EPERM, path, "owned by uid " + std::to_string(st.st_uid) + ", not by us (uid " +
                                     std::to_string(::geteuid()) + ")");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    throw untrusted(EPERM, path, "group- or world-writable (mode " + mode_text(st.st_mode) + ")");
  }
}

void ensure_private_directory(const std::string& dir) {
  create_private_directories(dir);
  check_private_directory(dir);
}

std::string default_event_directory() {
  const std::string runtime = detail::env_value("XDG_RUNTIME_DIR");
  if (!runtime.empty()) return runtime + "/foxml";
  return home_directory() + "/.cache/foxml";
}

std::string default_event_file() {
  const std::string configured = detail::env_value("FOXML_TRAINING_EVENT_FILE");
  if (!configured.empty()) return configured;
  return default_event_directory() + "/events.jsonl";
}

}  // namespace foxml::events
