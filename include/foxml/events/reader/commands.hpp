#pragma once
/// The sender side of the control back-channel (issue 11): a command to a run, through
///  (a) the run's own control endpoint, a Unix socket in a control directory (no listener needed),
///  (b) a socket_source listener that relays it on the run's emitter connections,
///  (c) ZeroMQ: PUB on the command endpoint (zmq_command_endpoint()), resent every 100 ms with
///      the same id until the run's `command_received` with that id arrives on the event endpoint.
/// The wire format is in docs/protocol.md ("Control"). Every connect, write and read here has a
/// deadline: a stale socket file or a silent peer ends in an error, never a hang.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "foxml/events/control.hpp"
#include "foxml/events/sink_uri.hpp"  // curve_settings

namespace foxml::events::reader {

/// How long a sender waits for an acknowledgement unless told otherwise.
inline constexpr std::chrono::milliseconds default_command_timeout{5000};

/// One command to send. Empty `id`/`sender` are filled in (make_command_id(), default_sender()).
struct command_request {
  std::string run_id;
  std::string name;      ///< cancel, pause, resume, checkpoint or a user name ([A-Za-z0-9_.-]{1,64})
  std::string arg_json;  ///< any JSON value as text; empty: no `arg`
  std::string id;
  std::string sender;
};

/// What became of a command.
struct command_result {
  /// The transport took the command: an endpoint answered ok, a listener delivered it to at
  /// least one connection, or (ZeroMQ) the run acknowledged it.
  bool ok = false;
  /// The trainer took it: a control endpoint's ok or a `command_received` event with its id.
  bool acknowledged = false;
  bool duplicate = false;    ///< the trainer had already taken a command with this id
  bool unknown_run = false;  ///< nothing reachable serves this run id
  std::string id;            ///< the command's id (generated when the request had none)
  std::string via;           ///< `control`, `relay` or `zmq`
  std::string error;         ///< why not ok / not acknowledged
  std::uint64_t delivered = 0;  ///< endpoints (control) or emitter connections (relay) that took it
  std::vector<std::string> received;  ///< `command_received` event lines seen (relay, ZeroMQ)
};

/// Throws std::invalid_argument unless valid_command_name(name) (control.hpp).
void validate_command_name(std::string_view name);
/// Returns 16 lowercase hex characters from std::random_device.
std::string make_command_id();
/// Returns `<user>@<host>:<pid>` of this process.
std::string default_sender();
/// Fills in the id and sender and returns the command line (compact JSON, no `\n`). Throws
/// std::invalid_argument for a bad name, id, empty run id, `arg_json` that is not JSON, or a
/// line over max_command_bytes.
std::string encode_command(command_request& request);

// ---- (a) control endpoints

/// Returns control_directory_for(default_event_file()): where runs writing the default file put
/// their control endpoints.
std::string default_control_directory();

/// One socket file found in a control directory.
struct control_endpoint {
  std::string path;
  std::string run_id;       ///< from the status answer (from the file name when not running)
  long pid = 0;             ///< from the file name, then the answer
  std::string host;
  bool running = false;     ///< it answered the status query
  std::string status_json;  ///< the answer's `status` object, compact JSON
  std::string error;        ///< why it is not running (connection refused: a stale file)
};

/// Queries every `*.sock` file in `dir` for its status, each within `timeout`. A missing
/// directory gives an empty list; a stale file is listed as not running.
std::vector<control_endpoint> list_control_endpoints(const std::string& dir,
                                                     std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));

/// Sends to every endpoint of `request.run_id` in `dir` (control_endpoint_path() with the pid
/// of each file there: a restarted run has one per pid).
/// `unknown_run` when none is there or none accepts connections.
command_result send_command_control(const std::string& dir, command_request request,
                                    std::chrono::milliseconds timeout = default_command_timeout);

// ---- (b) a listener's relay

/// Connects to a socket_source at `socket_path` as a control client, sends the command, reads
/// the listener's answer, then waits for the forwarded `command_received` until `timeout`.
command_result send_command_relay(const std::string& socket_path, command_request request,
                                  std::chrono::milliseconds timeout = default_command_timeout);

// ---- (c) ZeroMQ (foxml::events_reader_zmq; enable_zmq_source_uris() registers it)

/// Publishes on `command_endpoint` (empty: zmq_command_endpoint(event_endpoint)) and subscribes
/// to the run's `command_received` on `event_endpoint`. Both are connected (the emitter or a
/// proxy binds). `curve`: both sockets are CURVE clients (zmq_curve.hpp; a CURVE events-proxy).
/// Without the component, returns an error saying so.
command_result send_command_zmq(const std::string& event_endpoint, const std::string& command_endpoint,
                                command_request request,
                                std::chrono::milliseconds timeout = default_command_timeout,
                                const curve_settings& curve = {});

using zmq_command_sender = command_result (*)(const std::string& event_endpoint, const std::string& command_endpoint,
                                              command_request request, std::chrono::milliseconds timeout,
                                              const curve_settings& curve);
/// Lets foxml::events_reader_zmq supply send_command_zmq() (nullptr removes it).
void register_zmq_command_sender(zmq_command_sender sender) noexcept;
/// Registers the ZeroMQ sender (defined in foxml::events_reader_zmq; enable_zmq_source_uris()
/// calls it too).
void enable_zmq_commands();

}  // namespace foxml::events::reader
