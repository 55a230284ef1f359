#include "foxml/events/sink_uri.hpp"

#include "foxml/events/zmq_topic.hpp"

#include <sys/un.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>

#include "foxml/events/defaults.hpp"
#include "foxml/events/detail/text.hpp"
#include "foxml/events/fallback_sink.hpp"
#include "foxml/events/file_sink.hpp"
#include "foxml/events/tee_sink.hpp"
#include "foxml/events/unix_socket_sink.hpp"

namespace foxml::events {
namespace {

std::atomic<sink_factory> zmq_factory{nullptr};

constexpr std::size_t max_socket_path = sizeof(sockaddr_un::sun_path) - 1;

[[noreturn]] void reject(std::string_view uri, const std::string& what) { throw uri_error("sink", uri, what); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

std::string percent_decode(std::string_view uri, std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    const int hi = i + 1 < s.size() ? detail::hex_value(s[i + 1]) : -1;
    const int lo = i + 2 < s.size() ? detail::hex_value(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) reject(uri, "a '%' escape needs two hex digits");
    const char c = static_cast<char>(hi * 16 + lo);
    if (c == '\0') reject(uri, "the path contains a NUL byte (%00)");
    out += c;
    i += 2;
  }
  return out;
}

// `file:///p`, `file://localhost/p`: the path after the (empty or local) authority.
std::string absolute_path(std::string_view uri, std::string_view scheme, std::string_view rest) {
  if (rest.substr(0, 10) == "localhost/") rest.remove_prefix(9);
  if (rest.empty()) reject(uri, "no path after " + std::string(scheme) + "://");
  if (rest.front() != '/') {
    reject(uri, "the path must be absolute: " + std::string(scheme) + ":///abs/path (three slashes); '" +
                    std::string(rest.substr(0, rest.find('/'))) + "' would be a host name");
  }
  std::string path = percent_decode(uri, rest);
  if (path == "/") reject(uri, "the path names the root directory, not a file");
  if (path.back() == '/') reject(uri, "the path names a directory, not a file");
  return path;
}

void check_socket_path_length(std::string_view uri, const std::string& path) {
  if (path.size() > max_socket_path) {
    reject(uri, "the socket path is " + std::to_string(path.size()) + " bytes; a Unix socket path holds at most " +
                    std::to_string(max_socket_path));
  }
}

// Applies `bind` / `connect` (values 1, 0, true, false, or none meaning 1) to a ZeroMQ URI.
void apply_query(std::string_view uri, std::string_view query, sink_uri& out) {
  bool saw_bind = false, saw_connect = false;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    const std::string_view key = item.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? "1" : item.substr(eq + 1);
    if (key == "commands") {
      // The ZeroMQ command endpoint (control back-channel), percent-encoded.
      out.commands = percent_decode(uri, value);
      if (eq == std::string_view::npos || out.commands.find("://") == std::string::npos) {
        reject(uri, "'commands' takes a ZeroMQ endpoint (percent-encoded), e.g. commands=tcp%3A%2F%2Fhost%3A5557");
      }
      continue;
    }
    if (key == "curve_server_key" || key == "curve_keys") {
      // CURVE (zmq_curve.hpp): the server's public key (Z85 or a file) and this side's key file,
      // percent-encoded; whether the pair is complete is checked where the socket is made.
      std::string decoded = percent_decode(uri, value);
      if (eq == std::string_view::npos || decoded.empty()) {
        reject(uri, "'" + std::string(key) + "' takes a value (percent-encoded)");
      }
      (key == "curve_keys" ? out.curve.keys : out.curve.server_key) = std::move(decoded);
      continue;
    }
    if (key != "bind" && key != "connect") {
      reject(uri, "unknown query parameter '" + std::string(key) +
                      "' (known: bind, connect, commands, curve_server_key, curve_keys)");
    }
    bool on;
    if (value == "1" || value == "true") {
      on = true;
    } else if (value == "0" || value == "false") {
      on = false;
    } else {
      reject(uri, "query value '" + std::string(value) + "' for '" + std::string(key) + "' must be 1, 0, true or false");
    }
    if (key == "bind") {
      saw_bind = true;
      out.bind = on;
    } else {
      saw_connect = true;
      out.bind = !on;
    }
  }
  if (saw_bind && saw_connect) reject(uri, "give either bind or connect, not both");
}

void parse_tcp(std::string_view uri, std::string_view rest, sink_uri& out) {
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos) reject(uri, "zmq+tcp takes host:port, no path");
  std::size_t colon;
  if (!rest.empty() && rest.front() == '[') {
    const std::size_t close = rest.find(']');
    if (close == std::string_view::npos) reject(uri, "an IPv6 address needs a closing ']'");
    out.host = std::string(rest.substr(0, close + 1));
    colon = close + 1;
    if (colon >= rest.size() || rest[colon] != ':') reject(uri, "missing ':port' after the host");
  } else {
    colon = rest.rfind(':');
    if (colon == std::string_view::npos) reject(uri, "missing ':port' after the host (zmq+tcp://host:port)");
    out.host = std::string(rest.substr(0, colon));
  }
  if (out.host.empty()) reject(uri, "missing host before ':port'");
  const std::string_view port = rest.substr(colon + 1);
  if (port.empty()) reject(uri, "missing port number after ':'");
  unsigned long value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') reject(uri, "port '" + std::string(port) + "' is not a number");
    value = value * 10 + static_cast<unsigned long>(c - '0');
    if (value > 65535) reject(uri, "port '" + std::string(port) + "' is out of range 1-65535");
  }
  if (value == 0) reject(uri, "port 0 is not a usable port");
  out.port = static_cast<std::uint16_t>(value);
}

// Escapes the characters that mean something in a sink list, for paths taken from variables.
std::string encode_path(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c == '%' || c == ',' || c == '|' || c == '?' || c == '#' || c == ' ') {
      out += '%';
      out += detail::hex_digit(static_cast<unsigned char>(c) >> 4, true);
      out += detail::hex_digit(static_cast<unsigned char>(c), true);
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

uri_error::uri_error(std::string_view role, std::string_view uri, std::string rule)
    : std::invalid_argument("foxml::events: bad " + std::string(role) + " URI '" + std::string(uri) + "': " + rule),
      uri_(uri),
      rule_(std::move(rule)) {}

std::string sink_uri::zmq_command_endpoint() const {
  return commands.empty() ? foxml::events::zmq_command_endpoint(zmq_endpoint()) : commands;
}

std::string sink_uri::zmq_endpoint() const {
  switch (scheme) {
    case sink_scheme::zmq_tcp: return "tcp://" + host + ":" + std::to_string(port);
    case sink_scheme::zmq_ipc: return "ipc://" + path;
    case sink_scheme::zmq_inproc: return "inproc://" + path;
    default: return {};
  }
}

sink_uri parse_sink_uri(std::string_view input) {
  const std::string_view uri = trim(input);
  if (uri.empty()) reject(input, "empty URI");
  sink_uri out;
  out.text = std::string(uri);
  const std::size_t sep = uri.find("://");
  if (sep == std::string_view::npos || sep == 0) {
    reject(uri, "missing scheme; expected file://, unix://, zmq+tcp://, zmq+ipc:// or inproc://");
  }
  std::string scheme(uri.substr(0, sep));
  for (char& c : scheme) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  std::string_view rest = uri.substr(sep + 3);
  if (rest.find('#') != std::string_view::npos) reject(uri, "fragments ('#') are not allowed");
  std::string_view query;
  if (const std::size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (scheme == "file" || scheme == "unix") {
    if (!query.empty() || uri.find('?') != std::string_view::npos) reject(uri, scheme + ":// takes no query");
    out.scheme = scheme == "file" ? sink_scheme::file : sink_scheme::unix_socket;
    out.path = absolute_path(uri, scheme, rest);
    if (out.scheme == sink_scheme::unix_socket) check_socket_path_length(uri, out.path);
  } else if (scheme == "zmq+tcp") {
    out.scheme = sink_scheme::zmq_tcp;
    parse_tcp(uri, rest, out);
    out.bind = false;
    apply_query(uri, query, out);
    if (out.host == "*" && !out.bind) reject(uri, "host '*' is only for binding; add ?bind=1 or name a host");
  } else if (scheme == "zmq+ipc") {
    out.scheme = sink_scheme::zmq_ipc;
    out.path = absolute_path(uri, scheme, rest);
    check_socket_path_length(uri, out.path);
    out.bind = true;
    apply_query(uri, query, out);
  } else if (scheme == "inproc" || scheme == "zmq+inproc") {
    out.scheme = sink_scheme::zmq_inproc;
    if (rest.empty()) reject(uri, "inproc:// needs a name");
    out.path = std::string(rest);
    out.bind = true;
    apply_query(uri, query, out);
  } else {
    reject(uri, "unknown scheme '" + scheme + "'; expected file, unix, zmq+tcp, zmq+ipc or inproc");
  }
  return out;
}

std::vector<std::vector<sink_uri>> parse_sink_list(std::string_view text) {
  if (trim(text).empty()) {
    throw std::invalid_argument("foxml::events: empty sink list (give at least one URI, e.g. file:///path/events.jsonl)");
  }
  std::vector<std::vector<sink_uri>> branches;
  std::string_view rest = text;
  for (;;) {
    const std::size_t bar = rest.find('|');
    const std::string_view branch = rest.substr(0, bar);
    std::vector<sink_uri> chain;
    std::string_view items = branch;
    for (;;) {
      const std::size_t comma = items.find(',');
      const std::string_view item = trim(items.substr(0, comma));
      if (item.empty()) {
        throw std::invalid_argument("foxml::events: bad sink list '" + std::string(text) +
                                    "': an empty element (two separators in a row, or one at an end)");
      }
      chain.push_back(parse_sink_uri(item));
      if (comma == std::string_view::npos) break;
      items.remove_prefix(comma + 1);
    }
    branches.push_back(std::move(chain));
    if (bar == std::string_view::npos) break;
    rest.remove_prefix(bar + 1);
  }
  return branches;
}

std::unique_ptr<sink> make_sink(const sink_uri& uri) {
  switch (uri.scheme) {
    case sink_scheme::file: return std::make_unique<file_sink>(uri.path);
    case sink_scheme::unix_socket: return std::make_unique<unix_socket_sink>(uri.path);
    default: break;
  }
  const sink_factory factory = zmq_factory.load(std::memory_order_acquire);
  if (factory == nullptr) {
    reject(uri.text, "ZeroMQ sinks need the foxml::events_zmq component: link it and call "
                     "foxml::events::enable_zmq_sink_uris()");
  }
  return factory(uri);
}

std::unique_ptr<sink> make_sink(std::string_view uri_list) {
  const auto branches = parse_sink_list(uri_list);
  std::vector<std::unique_ptr<sink>> tee;
  for (const auto& chain : branches) {
    std::vector<std::unique_ptr<sink>> links;
    for (const sink_uri& uri : chain) links.push_back(make_sink(uri));
    if (links.size() == 1) {
      tee.push_back(std::move(links.front()));
    } else {
      tee.push_back(std::make_unique<fallback_sink>(std::move(links)));
    }
  }
  if (tee.size() == 1) return std::move(tee.front());
  return std::make_unique<tee_sink>(std::move(tee));
}

std::string default_event_socket() {
  const std::string configured = detail::env_value("FOXML_TRAINING_EVENT_SOCKET");
  if (!configured.empty()) return configured;
  return default_event_directory() + "/events.sock";
}

std::string default_sink_list() {
  const std::string configured = detail::env_value("FOXML_EVENTS_SINKS");
  if (!configured.empty()) return configured;
  return "unix://" + encode_path(default_event_socket()) + ",file://" + encode_path(default_event_file());
}

std::unique_ptr<sink> make_default_sink() {
  if (detail::env_value("FOXML_EVENTS_SINKS").empty()) {
    // The listener creates its socket in this directory; it must exist, private, for both sides.
    // Its owner and mode are checked too: a directory planted by someone else (or made
    // world-writable) would hand them our socket and our file.
    if (detail::env_value("FOXML_TRAINING_EVENT_SOCKET").empty() ||
        detail::env_value("FOXML_TRAINING_EVENT_FILE").empty()) {
      ensure_private_directory(default_event_directory());
    }
    if (detail::env_value("FOXML_TRAINING_EVENT_FILE").empty()) check_private_file(default_event_file());
  }
  return make_sink(default_sink_list());
}

void register_zmq_sink_factory(sink_factory factory) noexcept { zmq_factory.store(factory, std::memory_order_release); }

}  // namespace foxml::events
