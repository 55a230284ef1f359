#include <nlohmann/json.hpp>

#include <cstdio>
#include <stdexcept>

#include "foxml/events/control.hpp"
#include "foxml/events/schema_keys.hpp"

namespace foxml::events {
namespace {

namespace names = schema::names;
using json = nlohmann::ordered_json;

// The id and run id keys of a command are not event fields (the run id is the header's name).
constexpr std::string_view id_key = "id";
constexpr std::string_view run_id_key = "run_id";
constexpr std::string_view wrapped_arg_key = "value";
constexpr std::size_t max_name = 64;
constexpr std::size_t max_id = 64;
constexpr std::size_t max_socket_path = 107;

std::string key(std::string_view k) { return std::string(k); }

std::string compact(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

bool valid_command_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > max_name) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool valid_command_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > max_id) return false;
  for (const char c : id) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

bool looks_like_command(std::string_view line) noexcept {
  const auto quoted = [&](std::string_view k) {
    std::string needle;
    needle.reserve(k.size() + 2);
    needle += '"';
    needle += k;
    needle += '"';
    return line.find(needle) != std::string_view::npos;
  };
  try {
    const std::size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] != '{') return false;
    return quoted(names::command) && quoted(run_id_key) && !quoted("event_type");
  } catch (...) {
    return false;
  }
}

command_parse parse_command(std::string_view line) noexcept {
  command_parse out;
  try {
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > max_command_bytes) {
      out.error = "command line over " + std::to_string(max_command_bytes) + " bytes";
      return out;
    }
    const json doc = json::parse(line.begin(), line.end(), nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
      out.error = "malformed command: not a JSON object";
      return out;
    }
    const auto text = [&](std::string_view k) -> std::optional<std::string> {
      const auto it = doc.find(key(k));
      if (it == doc.end() || !it->is_string()) return std::nullopt;
      return it->get<std::string>();
    };
    command c;
    const auto name = text(names::command);
    const auto id = text(id_key);
    const auto run = text(run_id_key);
    if (!name || !valid_command_name(*name)) {
      out.error = "malformed command: 'command' must be a name of [A-Za-z0-9_.-]{1,64}";
      return out;
    }
    if (!id || !valid_command_id(*id)) {
      out.error = "malformed command: 'id' must be 1-64 printable ASCII characters";
      return out;
    }
    if (!run || run->empty()) {
      out.error = "malformed command: 'run_id' missing";
      return out;
    }
    c.name = *name;
    c.id = *id;
    c.run_id = *run;
    c.sender = text(names::sender).value_or("");
    const auto arg = doc.find(key(names::arg));
    if (arg != doc.end() && !arg->is_null()) {
      if (arg->is_object()) {
        c.arg_json = compact(*arg);
      } else {
        json wrapped = json::object();
        wrapped[key(wrapped_arg_key)] = *arg;
        c.arg_json = compact(wrapped);
      }
    }
    out.value = std::move(c);
  } catch (...) {
    out.value.reset();
    out.error = "malformed command";
  }
  return out;
}

std::string command_to_json(const command& c) {
  if (!valid_command_name(c.name)) {
    throw std::invalid_argument("foxml::events: command name '" + c.name + "' is not [A-Za-z0-9_.-]{1,64}");
  }
  if (!valid_command_id(c.id)) throw std::invalid_argument("foxml::events: command id must be 1-64 printable ASCII");
  json j = json::object();
  j[key(names::command)] = c.name;
  j[key(id_key)] = c.id;
  j[key(run_id_key)] = c.run_id;
  j[key(names::sender)] = c.sender;
  if (!c.arg_json.empty()) {
    json arg = json::parse(c.arg_json, nullptr, false);
    if (arg.is_discarded()) throw std::invalid_argument("foxml::events: command arg is not JSON: " + c.arg_json);
    j[key(names::arg)] = std::move(arg);
  }
  return compact(j);
}

std::string control_endpoint_path(std::string_view dir, std::string_view run_id, std::int64_t pid) {
  std::string base(dir);
  if (base.empty()) base = ".";
  if (base.back() != '/') base += '/';
  std::string escaped;
  for (const char ch : run_id) {
    const auto c = static_cast<unsigned char>(ch);
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                      c == '.' || c == '-';
    if (keep) {
      escaped += ch;
    } else {
      char hex[4];
      std::snprintf(hex, sizeof(hex), "%%%02X", c);
      escaped += hex;
    }
  }
  const std::string suffix = "." + std::to_string(pid) + ".sock";
  std::string path = base + escaped + suffix;
  if (path.size() <= max_socket_path) return path;
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a 64
  for (const char ch : run_id) {
    h ^= static_cast<unsigned char>(ch);
    h *= 1099511628211ull;
  }
  char hashed[20];
  std::snprintf(hashed, sizeof(hashed), "h%016llx", static_cast<unsigned long long>(h));
  return base + hashed + suffix;
}

std::string control_directory_for(std::string_view path) {
  const std::size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return "control";
  if (slash == 0) return "/control";
  return std::string(path.substr(0, slash)) + "/control";
}

}  // namespace foxml::events
