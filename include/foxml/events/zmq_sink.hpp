#pragma once
/// The ZeroMQ PUB sink (component foxml::events_zmq; the core never links libzmq). Each event is a
/// two-frame message: the topic `<event_type>\x1f<run_id>\x1f` (see zmq_topic.hpp), then the JSON
/// line without its `\n`. Subscribers filter with ZeroMQ's own prefix matching.

#include <chrono>
#include <memory>
#include <string>

#include "foxml/events/sink.hpp"
#include "foxml/events/sink_uri.hpp"
#include "foxml/events/zmq_curve.hpp"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace foxml::events {
namespace detail {
class command_inbox;
}

/// Settings of a zmq_sink.
struct zmq_sink_options {
  /// A ZeroMQ endpoint: `tcp://host:port`, `ipc:///path`, `inproc://name`.
  std::string endpoint;
  /// Bind the PUB socket (subscribers connect) or connect it (to a subscriber or an XSUB proxy).
  bool bind = true;
  /// Messages queued per subscriber before sends are refused; refused lines count as drops.
  int send_hwm = 10000;
  /// How long close() lets queued messages leave (a connecting sink waits up to this long in
  /// close() for them; a bound one leaves it to the shared context, which never ends).
  std::chrono::milliseconds linger{200};
  /// The cppzmq context to use (inproc:// needs the subscriber's own context); it must outlive
  /// the sink. nullptr uses shared_zmq_context().
  zmq::context_t* context = nullptr;

  // The control back-channel (control.hpp): a SUB socket on the command endpoint, bound when the
  // event socket binds and connected when it connects, subscribed to `<run_id>\x1f`.
  /// Command endpoint; empty: zmq_command_endpoint(endpoint) (zmq_topic.hpp).
  std::string command_endpoint;
  /// Whether to open the command socket at all.
  bool commands = true;

  /// CURVE on both sockets (zmq_curve.hpp). Connecting: a CURVE client, needing `server_key` and
  /// `keys` both. Binding: a CURVE server with `keys` alone (`server_key` is refused); the library
  /// runs no ZAP handler, so any client that knows this sink's public key may subscribe and send
  /// commands: the traffic is encrypted, not restricted (an events-proxy restricts clients).
  curve_settings curve;
};

/// Publishes lines on a PUB socket without ever blocking: sends use ZMQ_DONTWAIT, and
/// ZMQ_XPUB_NODROP makes a subscriber at its high-water mark refuse the send instead of silently
/// losing it, so the worker counts and reports it in a `dropped` event. As with any PUB socket,
/// a line a bound sink publishes while no subscriber is connected reaches nobody and is not counted.
/// A connecting sink (to an events-proxy, which subscribes to everything) refuses lines until its
/// peer's first subscription arrived, so a proxy that is down or not yet up costs no line silently:
/// the worker retries them for sink_retry_timeout, then drops and counts them (a tee with a file
/// keeps them). Nothing waits on the network: connecting is asynchronous.
class zmq_sink final : public sink {
 public:
  /// Creates the socket and binds or connects it. Throws std::invalid_argument for bad options
  /// and std::system_error naming the endpoint when binding or connecting fails.
  explicit zmq_sink(zmq_sink_options options);
  ~zmq_sink() override;
  zmq_sink(const zmq_sink&) = delete;
  zmq_sink& operator=(const zmq_sink&) = delete;

  std::size_t write(const line_batch& batch) noexcept override;
  void close() noexcept override;
  bool healthy() noexcept override { return socket_ != nullptr; }
  /// ZeroMQ contexts do not survive fork(): a forked child's events from this sink are dropped.
  std::unique_ptr<sink> reopen_after_fork() const override { return nullptr; }
  std::string describe() const override;
  /// Subscribes the command socket to this run's commands and keeps the emitter's inbox.
  void attach_control(control_attachment& attachment) noexcept override;
  /// Takes the commands waiting on the command socket into the inbox.
  void poll(std::chrono::steady_clock::time_point now) noexcept override;
  /// The command endpoint in use (the bound one for a wildcard port); empty when commands are off.
  const std::string& command_endpoint() const noexcept { return command_endpoint_; }

 private:
  zmq_sink_options options_;
  // A connecting tcp/ipc sink's own context: close() terminates it, which lets what libzmq still
  // holds leave within `linger` (the shared context is never terminated, so at process exit its
  // queue would die with the I/O thread: lines counted as written, never sent).
  std::unique_ptr<zmq::context_t> own_context_;  // declared first: destroyed after the sockets
  std::unique_ptr<zmq::socket_t> socket_;
  std::string topic_;
  bool subscribed_ = false;  // a connecting sink's peer has subscribed (always true when bound)

  void open_commands(zmq::context_t& context);
  void apply_curve(zmq::socket_t& socket);
  curve_keypair curve_keys_;  // a binding CURVE sink's keypair

  std::unique_ptr<zmq::socket_t> commands_;  // SUB, used by the worker only once attached
  std::string command_endpoint_;
  detail::command_inbox* inbox_ = nullptr;
};

/// Returns the process-wide context of sinks given none (URI-built ones too). Never destroyed:
/// terminating a context waits for every socket, and an emitter may outlive static objects.
zmq::context_t& shared_zmq_context();

/// Makes make_sink() accept zmq+tcp://, zmq+ipc:// and inproc:// URIs: the one way to enable
/// them (linking foxml::events_zmq alone does not). Call it before building sinks from URIs
/// (the Python package does); calling again is harmless.
void enable_zmq_sink_uris();

/// Builds a zmq_sink from a parsed URI (what enable_zmq_sink_uris() registers).
std::unique_ptr<sink> make_zmq_sink(const sink_uri& uri);

}  // namespace foxml::events
