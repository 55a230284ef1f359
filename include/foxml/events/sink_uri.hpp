#pragma once
/// Sinks from URIs: `file:///abs/events.jsonl`, `unix:///abs/events.sock`, `zmq+tcp://host:port`,
/// `zmq+ipc:///abs/path`, `inproc://name`. A comma-separated list is a fallback chain (first
/// healthy wins); `|` joins tee branches, each a chain: `unix:///a.sock,file:///a.jsonl | zmq+ipc:///b`.

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "foxml/events/sink.hpp"

namespace foxml::events {

/// ZeroMQ CURVE settings as a URI or command line gives them (applied by zmq_curve.hpp):
/// `server_key`, the server's public key (Z85 or a public-key file), and `keys`, the path of this
/// side's key file. Both or neither on a connecting socket.
struct curve_settings {
  std::string server_key;
  std::string keys;
  bool enabled() const noexcept { return !server_key.empty() || !keys.empty(); }
};

enum class sink_scheme : std::uint8_t { file, unix_socket, zmq_tcp, zmq_ipc, zmq_inproc };

/// One parsed sink URI.
struct sink_uri {
  std::string text;  ///< the URI as given (trimmed)
  sink_scheme scheme = sink_scheme::file;
  std::string path;  ///< file, unix, zmq+ipc: the absolute path (percent-decoded); inproc: the name
  std::string host;  ///< zmq+tcp: host name, address, `[v6]` or `*` (bind only)
  std::uint16_t port = 0;  ///< zmq+tcp
  /// ZeroMQ: bind the PUB socket (zmq+ipc and inproc by default) or connect it (zmq+tcp by
  /// default); `?bind=1` / `?connect=1` choose.
  bool bind = false;
  /// ZeroMQ: the command endpoint given by `?commands=<endpoint>` (percent-encoded); empty: the
  /// rule of zmq_command_endpoint() (zmq_topic.hpp).
  std::string commands;
  /// ZeroMQ CURVE (zmq_curve.hpp), percent-decoded: `?curve_server_key=` and `?curve_keys=`.
  curve_settings curve;

  /// Returns the ZeroMQ endpoint: `tcp://host:port`, `ipc:///path` or `inproc://name`.
  std::string zmq_endpoint() const;
  /// Returns the ZeroMQ command endpoint: `commands`, else derived from zmq_endpoint().
  std::string zmq_command_endpoint() const;
};

/// What a malformed URI throws: the message names the role ("sink", or "source" for the reader's
/// make_source, which shares this grammar), the URI and the rule it breaks.
class uri_error : public std::invalid_argument {
 public:
  uri_error(std::string_view role, std::string_view uri, std::string rule);
  const std::string& uri() const noexcept { return uri_; }
  const std::string& rule() const noexcept { return rule_; }

 private:
  std::string uri_, rule_;
};

/// Parses one URI. Throws uri_error (a std::invalid_argument) naming the URI and what is wrong with it.
sink_uri parse_sink_uri(std::string_view text);

/// Parses a sink list: tee branches separated by `|`, each a comma-separated fallback chain.
/// Throws std::invalid_argument for an empty list, an empty element or a malformed URI.
std::vector<std::vector<sink_uri>> parse_sink_list(std::string_view text);

/// Builds one sink from a parsed URI. ZeroMQ URIs need the foxml::events_zmq component (see
/// enable_zmq_sink_uris() in zmq_sink.hpp); without it they throw std::invalid_argument.
std::unique_ptr<sink> make_sink(const sink_uri& uri);

/// Builds the sink a list describes (every URI is checked before any sink is created). Throws
/// std::invalid_argument for malformed input and std::system_error when a file cannot be opened.
std::unique_ptr<sink> make_sink(std::string_view uri_list);

/// Returns `<default_event_directory()>/events.sock`, or `$FOXML_TRAINING_EVENT_SOCKET` when set.
std::string default_event_socket();

/// Returns the sink list used when nothing is given in code: `$FOXML_EVENTS_SINKS` when set;
/// else the socket then the file (`unix://<default_event_socket()>,file://<default_event_file()>`,
/// where the seed variables FOXML_TRAINING_EVENT_SOCKET / FOXML_TRAINING_EVENT_FILE replace
/// their part).
std::string default_sink_list();

/// Builds the sink of default_sink_list(), creating the per-user directory (mode 0700) for the
/// default paths. That directory, and an existing default event file in it, must be ours and
/// private (see check_private_directory()); otherwise std::system_error names the path and why.
/// This is what `init_training_events(run_id)` uses.
std::unique_ptr<sink> make_default_sink();

/// Lets a component supply the sinks for ZeroMQ URIs (foxml::events_zmq does this); `factory`
/// may throw for set-up errors. Passing nullptr removes it.
using sink_factory = std::unique_ptr<sink> (*)(const sink_uri& uri);
void register_zmq_sink_factory(sink_factory factory) noexcept;

}  // namespace foxml::events
