#pragma once
/// Opens a source from a URI: the grammar of sink URIs (sink_uri.hpp), read from the other end.
///
///   /path/events.jsonl, events.jsonl    a file (a bare path, relative or absolute)
///   file:///path/events.jsonl           a file
///   unix:///path/events.sock            a Unix socket server emitters connect to
///   zmq+tcp://host:port, tcp://host:port     a ZeroMQ subscriber (foxml::events_reader_zmq)
///   zmq+ipc:///path, ipc:///path             a ZeroMQ subscriber (foxml::events_reader_zmq)
///
/// A malformed URI throws foxml::events::uri_error (a std::invalid_argument) at set-up time,
/// naming the URI and the rule it breaks. The core reader never links libzmq: ZeroMQ URIs work
/// once foxml::events_reader_zmq is linked and enable_zmq_source_uris() (zmq_source.hpp) was
/// called, the same hook the sinks use (enable_zmq_sink_uris()); before that they throw a
/// uri_error saying so.

#include <cstddef>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "foxml/events/event.hpp"
#include "foxml/events/reader/defaults.hpp"
#include "foxml/events/reader/source.hpp"
#include "foxml/events/sink_uri.hpp"  // curve_settings

namespace foxml::events::reader {

/// What a source URI names.
enum class source_kind : std::uint8_t { file, unix_socket, zmq };

/// One parsed source URI.
struct source_uri {
  std::string text;  ///< the URI as given
  source_kind kind = source_kind::file;
  std::string path;      ///< file, unix: the path (percent-decoded in a URI; a bare path as given)
  std::string endpoint;  ///< zmq: the endpoint to connect to (`tcp://host:port`, `ipc:///path`)
  /// zmq: `?curve_server_key=...&curve_keys=...` (the one query a ZeroMQ source takes)
  curve_settings curve;
};

/// Settings of make_source(); each applies to the kinds that have it.
struct source_options {
  bool follow = false;    ///< file: keep reading as it grows (tail -F); sockets always follow
  bool from_end = false;  ///< file: only lines written from now on
  std::size_t max_line_bytes = defaults::max_line_bytes;
  std::size_t max_poll_bytes = 0;  ///< file: most bytes one poll reads (0: to the end)
  std::set<event_type> types;      ///< zmq: subscriptions (empty: every type)
  std::set<std::string> runs;      ///< zmq: subscriptions (empty: every run)
};

/// Parses `text`. Throws uri_error for a malformed URI or one no source reads (inproc://, a query
/// on a ZeroMQ URI other than CURVE's `curve_server_key` and `curve_keys`: a subscriber always
/// connects).
source_uri parse_source_uri(std::string_view text);

/// Opens the source `uri` names. Throws uri_error for a malformed URI (or a ZeroMQ one without
/// the component, or an endpoint ZeroMQ refuses), and what the source's constructor throws
/// (std::system_error: a missing file without `follow`, a socket path in use).
std::unique_ptr<source> make_source(const source_uri& uri, const source_options& options = {});
std::unique_ptr<source> make_source(std::string_view uri, const source_options& options = {});

/// True for sources that never end by themselves: a followed file, a socket server, a subscriber
/// (their runs can go stale).
bool is_live(const source_uri& uri, const source_options& options) noexcept;

/// Lets a component supply the sources for ZeroMQ URIs (foxml::events_reader_zmq does this in
/// enable_zmq_source_uris()); nullptr removes it.
using source_factory = std::unique_ptr<source> (*)(const source_uri& uri, const source_options& options);
void register_zmq_source_factory(source_factory factory) noexcept;

}  // namespace foxml::events::reader
