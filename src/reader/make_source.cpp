#include "foxml/events/reader/make_source.hpp"

#include <atomic>
#include <utility>

#include "foxml/events/reader/file_source.hpp"
#include "foxml/events/reader/socket_source.hpp"
#include "foxml/events/sink_uri.hpp"

namespace foxml::events::reader {
namespace {

std::atomic<source_factory> zmq_factory{nullptr};

constexpr const char* kinds = "give a path, file:///path, unix:///path.sock, zmq+tcp://host:port or zmq+ipc:///path";

[[noreturn]] void reject(std::string_view uri, std::string rule) { throw uri_error("source", uri, std::move(rule)); }

// Whether the query of `text` names `key` (spelled as the sink grammar takes it).
bool has_query_key(std::string_view text, std::string_view key) {
  const std::size_t q = text.find('?');
  if (q == std::string_view::npos) return false;
  std::string_view query = text.substr(q + 1);
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    if (item.substr(0, item.find('=')) == key) return true;
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
  }
  return false;
}

}  // namespace

source_uri parse_source_uri(std::string_view text) {
  source_uri out;
  out.text = std::string(text);
  if (text.find_first_not_of(" \t\n") == std::string_view::npos) reject(text, std::string("empty URI; ") + kinds);
  if (text.find('\0') != std::string_view::npos) reject(text, "the path contains a NUL byte");
  const std::size_t sep = text.find("://");
  if (sep == std::string_view::npos) {  // a bare path: what a shell user types
    out.path = out.text;
    return out;
  }
  std::string scheme(text.substr(0, sep));
  for (char& c : scheme) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (scheme != "file" && scheme != "unix" && scheme != "zmq+tcp" && scheme != "zmq+ipc" && scheme != "tcp" &&
      scheme != "ipc" && scheme != "inproc" && scheme != "zmq+inproc") {
    reject(text, "unknown scheme '" + scheme + "'; " + kinds);
  }
  // ZeroMQ's own spelling (tcp://, ipc://) is what a publisher's bind string looks like; the sink
  // grammar spells it zmq+tcp:// and zmq+ipc://.
  const std::string sink_text = scheme == "tcp" || scheme == "ipc" ? "zmq+" + std::string(text) : std::string(text);
  sink_uri parsed;
  try {
    parsed = parse_sink_uri(sink_text);
  } catch (const uri_error& e) {
    reject(text, e.rule());
  }
  switch (parsed.scheme) {
    case sink_scheme::file:
      out.kind = source_kind::file;
      out.path = parsed.path;
      break;
    case sink_scheme::unix_socket:
      out.kind = source_kind::unix_socket;
      out.path = parsed.path;
      break;
    case sink_scheme::zmq_tcp:
    case sink_scheme::zmq_ipc:
      // The sink grammar parsed the query; a source keeps only CURVE from it.
      if (has_query_key(text, "bind") || has_query_key(text, "connect") || has_query_key(text, "commands")) {
        reject(text,
               "a ZeroMQ source always connects its SUB socket to the publisher; its only query is "
               "curve_server_key=...&curve_keys=...");
      }
      out.curve = parsed.curve;
      out.kind = source_kind::zmq;
      out.endpoint = parsed.zmq_endpoint();
      break;
    default:
      reject(text, "inproc:// needs the publisher's ZeroMQ context; construct a zmq_source with it instead");
  }
  return out;
}

std::unique_ptr<source> make_source(const source_uri& uri, const source_options& options) {
  switch (uri.kind) {
    case source_kind::file: {
      file_source_options o;
      o.follow = options.follow;
      o.from_end = options.from_end;
      o.max_line_bytes = options.max_line_bytes;
      o.max_poll_bytes = options.max_poll_bytes;
      return std::make_unique<file_source>(uri.path, o);
    }
    case source_kind::unix_socket: {
      socket_source_options o;
      o.max_line_bytes = options.max_line_bytes;
      return std::make_unique<socket_source>(uri.path, o);
    }
    case source_kind::zmq: break;
  }
  const source_factory factory = zmq_factory.load(std::memory_order_acquire);
  if (factory == nullptr) {
    reject(uri.text, "ZeroMQ sources need the foxml::events_reader_zmq component: link it and call "
                     "foxml::events::reader::enable_zmq_source_uris()");
  }
  return factory(uri, options);
}

std::unique_ptr<source> make_source(std::string_view uri, const source_options& options) {
  return make_source(parse_source_uri(uri), options);
}

bool is_live(const source_uri& uri, const source_options& options) noexcept {
  return uri.kind != source_kind::file || options.follow;
}

void register_zmq_source_factory(source_factory factory) noexcept {
  zmq_factory.store(factory, std::memory_order_release);
}

}  // namespace foxml::events::reader
