#include "foxml/events/defaults.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>

namespace foxml::events {
namespace {

std::string non_empty_env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::string(value) : std::string();
}

std::string home_directory() {
  std::string home = non_empty_env("HOME");
  if (!home.empty()) return home;
  if (const passwd* pw = getpwuid(getuid()); pw != nullptr && pw->pw_dir != nullptr) return pw->pw_dir;
  throw std::runtime_error("foxml::events: no $HOME and no home directory for uid " + std::to_string(getuid()) +
                           "; set FOXML_TRAINING_EVENT_FILE or pass a sink");
}

}  // namespace

std::string default_event_directory() {
  const std::string runtime = non_empty_env("XDG_RUNTIME_DIR");
  if (!runtime.empty()) return runtime + "/foxml";
  return home_directory() + "/.cache/foxml";
}

std::string default_event_file() {
  const std::string configured = non_empty_env("FOXML_TRAINING_EVENT_FILE");
  if (!configured.empty()) return configured;
  return default_event_directory() + "/events.jsonl";
}

}  // namespace foxml::events
