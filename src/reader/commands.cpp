#include "foxml/events/reader/commands.hpp"

#include <dirent.h>
#include <pwd.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <stdexcept>

#include "foxml/events/control.hpp"
#include "foxml/events/defaults.hpp"
#include "foxml/events/schema_keys.hpp"
#include "unix_client.hpp"

namespace foxml::events::reader {
namespace {

using clock = std::chrono::steady_clock;
using json = nlohmann::json;

// Status answers carry a training_status snapshot: far longer than a command, still bounded.
constexpr std::size_t max_answer_bytes = 1u << 20;

std::atomic<zmq_command_sender> zmq_sender{nullptr};

// `<name>.<pid>.sock` -> pid; 0 when the name is not of that shape.
long pid_of_socket_name(std::string_view name) {
  constexpr std::string_view suffix = ".sock";
  if (name.size() <= suffix.size() || name.substr(name.size() - suffix.size()) != suffix) return 0;
  name.remove_suffix(suffix.size());
  const auto dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == name.size()) return 0;
  long pid = 0;
  for (const char c : name.substr(dot + 1)) {
    if (c < '0' || c > '9' || pid > 100000000) return 0;
    pid = pid * 10 + (c - '0');
  }
  return pid;
}

struct socket_file {
  std::string path;
  long pid;
};

std::vector<socket_file> socket_files(const std::string& dir) {
  std::vector<socket_file> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (const dirent* entry = ::readdir(d)) {
    const long pid = pid_of_socket_name(entry->d_name);
    if (pid > 0) out.push_back({dir + "/" + entry->d_name, pid});
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const socket_file& a, const socket_file& b) { return a.path < b.path; });
  return out;
}

std::string errno_text(int err) { return std::strerror(err); }

// Connects `client` to `path`, sends one line and reads one answer line as JSON; fills `err` and
// `error` and returns null on failure. The client stays open for what the peer sends next.
json exchange(detail::unix_line_client& client, const std::string& path, const std::string& line, int& err,
              std::string& error) {
  err = client.connect(path);
  if (err == 0) err = client.write_all(line + "\n");
  std::string answer;
  if (err == 0) err = client.read_line(answer, max_answer_bytes);
  if (err != 0) {
    error = path + ": " + (err == ETIMEDOUT ? std::string("no answer in time") : errno_text(err));
    return nullptr;
  }
  json parsed = json::parse(answer, nullptr, false);
  if (!parsed.is_object()) {
    error = path + ": the answer is not a JSON object";
    return nullptr;
  }
  return parsed;
}

json exchange(const std::string& path, const std::string& line, clock::time_point deadline, int& err,
              std::string& error) {
  detail::unix_line_client client(deadline);
  return exchange(client, path, line, err, error);
}

bool is_command_received_for(const json& event, const std::string& id) {
  return event.is_object() && event.value("event_type", "") == "command_received" &&
         event.value(std::string(schema::names::command_id), "") == id;
}

}  // namespace

void validate_command_name(std::string_view name) {
  if (!valid_command_name(name)) {
    throw std::invalid_argument("foxml::events: command name '" + std::string(name) +
                                "' is not 1-64 characters of [A-Za-z0-9_.-]");
  }
}

std::string make_command_id() {
  std::random_device random;
  const std::uint64_t value = (static_cast<std::uint64_t>(random()) << 32) ^ random();
  char digits[17];
  std::snprintf(digits, sizeof digits, "%016llx", static_cast<unsigned long long>(value));
  return digits;
}

std::string default_sender() {
  std::string user;
  passwd pw{};
  passwd* found = nullptr;
  char buffer[4096];
  if (::getpwuid_r(::geteuid(), &pw, buffer, sizeof buffer, &found) == 0 && found != nullptr) {
    user = found->pw_name;
  } else {
    user = std::to_string(::geteuid());
  }
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return user + "@" + host + ":" + std::to_string(::getpid());
}

std::string encode_command(command_request& request) {
  validate_command_name(request.name);
  if (request.run_id.empty()) throw std::invalid_argument("foxml::events: a command needs a run id");
  if (request.id.empty()) request.id = make_command_id();
  if (request.sender.empty()) request.sender = default_sender();
  std::string text;
  try {
    text = command_to_json(command{request.name, request.id, request.sender, request.run_id, request.arg_json});
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string(e.what()) + " (id '" + request.id + "')");
  }
  if (text.size() > max_command_bytes) {
    throw std::invalid_argument("foxml::events: command line of " + std::to_string(text.size()) +
                                " bytes is over the " + std::to_string(max_command_bytes) + "-byte limit");
  }
  return text;
}

std::string default_control_directory() { return control_directory_for(default_event_file()); }

std::vector<control_endpoint> list_control_endpoints(const std::string& dir, std::chrono::milliseconds timeout) {
  std::vector<control_endpoint> out;
  for (const socket_file& file : socket_files(dir)) {
    control_endpoint e;
    e.path = file.path;
    e.pid = file.pid;
    const auto slash = file.path.find_last_of('/');
    const std::string name = file.path.substr(slash + 1);
    e.run_id = name.substr(0, name.rfind('.', name.size() - 6));  // the escaped form, until it answers
    int err = 0;
    const json answer = exchange(file.path, R"({"query":"status"})", clock::now() + timeout, err, e.error);
    if (!answer.is_null()) {
      if (answer.value("ok", false)) {
        e.running = true;
        e.run_id = answer.value("run_id", e.run_id);
        if (const auto it = answer.find("pid"); it != answer.end() && it->is_number_integer()) e.pid = it->get<long>();
        e.host = answer.value("host", "");
        const auto it = answer.find(std::string(schema::names::status));
        if (it != answer.end()) e.status_json = it->dump();
      } else {
        e.error = file.path + ": " + answer.value("error", "refused the status query");
      }
    } else if (err == ECONNREFUSED) {
      e.error = file.path + ": nothing listens (a stale endpoint of a process that ended)";
    }
    out.push_back(std::move(e));
  }
  return out;
}

command_result send_command_control(const std::string& dir, command_request request,
                                    std::chrono::milliseconds timeout) {
  const std::string line = encode_command(request);
  command_result result;
  result.id = request.id;
  result.via = "control";
  const auto deadline = clock::now() + timeout;
  std::size_t candidates = 0, stale = 0;
  std::string failures;
  for (const socket_file& file : socket_files(dir)) {
    if (control_endpoint_path(dir, request.run_id, file.pid) != file.path) continue;
    ++candidates;
    int err = 0;
    std::string error;
    const json answer = exchange(file.path, line, deadline, err, error);
    if (answer.is_null()) {
      if (err == ECONNREFUSED || err == ENOENT) {
        ++stale;
      } else {
        failures += (failures.empty() ? "" : "; ") + error;
      }
      continue;
    }
    if (!answer.value("ok", false)) {
      failures += (failures.empty() ? "" : "; ") + file.path + ": " + answer.value("error", "refused");
      continue;
    }
    ++result.delivered;
    result.ok = result.acknowledged = true;
    if (answer.value("duplicate", false)) result.duplicate = true;
  }
  if (result.ok) return result;
  if (candidates == stale) {
    result.unknown_run = true;
    result.error = "unknown run " + request.run_id + ": no running process has a control endpoint in " + dir +
                   (stale > 0 ? " (" + std::to_string(stale) + " stale endpoint file(s) of ended processes)" : "");
  } else {
    result.error = failures;
  }
  return result;
}

command_result send_command_relay(const std::string& socket_path, command_request request,
                                  std::chrono::milliseconds timeout) {
  const std::string line = encode_command(request);
  command_result result;
  result.id = request.id;
  result.via = "relay";
  const auto deadline = clock::now() + timeout;
  int err = 0;
  std::string error;
  detail::unix_line_client client(deadline);
  const json answer = exchange(client, socket_path, line, err, error);
  if (answer.is_null()) {
    result.error = "listener " + error;
    return result;
  }
  if (!answer.value("ok", false)) {
    result.error = answer.value("error", "refused");
    result.unknown_run = result.error.rfind("unknown run", 0) == 0;
    return result;
  }
  result.ok = true;
  if (const auto it = answer.find("delivered"); it != answer.end() && it->is_number_unsigned()) {
    result.delivered = it->get<std::uint64_t>();
  }
  // The listener forwards the run's command_received lines with this id (one per emitter that
  // took it) until we close; one is the acknowledgement.
  std::string text;
  while (client.read_line(text, max_answer_bytes) == 0) {
    const json event = json::parse(text, nullptr, false);
    if (!is_command_received_for(event, result.id)) continue;
    result.received.push_back(text);
    result.acknowledged = true;
    return result;
  }
  result.error = "delivered to " + std::to_string(result.delivered) +
                 " emitter connection(s) but no command_received arrived in time";
  return result;
}

command_result send_command_zmq(const std::string& event_endpoint, const std::string& command_endpoint,
                                command_request request, std::chrono::milliseconds timeout,
                                const curve_settings& curve) {
  if (const zmq_command_sender sender = zmq_sender.load()) {
    return sender(event_endpoint, command_endpoint, std::move(request), timeout, curve);
  }
  command_result result;
  result.via = "zmq";
  result.error = "ZeroMQ commands need foxml::events_reader_zmq (call enable_zmq_source_uris())";
  return result;
}

void register_zmq_command_sender(zmq_command_sender sender) noexcept { zmq_sender.store(sender); }

}  // namespace foxml::events::reader
