#pragma once
/// The ZeroMQ PUB sink (component foxml::events_zmq; the core never links libzmq). Each event is a
/// two-frame message: the topic `<event_type>\x1f<run_id>\x1f` (see zmq_topic.hpp), then the JSON
/// line without its `\n`. Subscribers filter with ZeroMQ's own prefix matching.

#include <chrono>
#include <memory>
#include <string>

#include "foxml/events/sink.hpp"
#include "foxml/events/sink_uri.hpp"

namespace foxml::events {

/// Settings of a zmq_sink.
struct zmq_sink_options {
  /// A ZeroMQ endpoint: `tcp://host:port`, `ipc:///path`, `inproc://name`.
  std::string endpoint;
  /// Bind the PUB socket (subscribers connect) or connect it (to a subscriber or an XSUB proxy).
  bool bind = true;
  /// Messages queued per subscriber before sends are refused; refused lines count as drops.
  int send_hwm = 10000;
  /// How long close() lets queued messages leave.
  std::chrono::milliseconds linger{200};
  /// A `zmq::context_t::handle()` to use (inproc:// needs the subscriber's own context); nullptr
  /// uses a process-wide context.
  void* context = nullptr;
};

/// Publishes lines on a PUB socket without ever blocking: sends use ZMQ_DONTWAIT, and
/// ZMQ_XPUB_NODROP makes a subscriber at its high-water mark refuse the send instead of silently
/// losing it, so the worker counts and reports it in a `dropped` event. As with any PUB socket,
/// a line published while no subscriber is connected reaches nobody and is not counted.
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

 private:
  zmq_sink_options options_;
  void* socket_ = nullptr;
  std::string topic_;
};

/// Returns the context the URI-built ZeroMQ sinks use (a `void*` libzmq context handle).
void* shared_zmq_context();

/// Makes make_sink() accept zmq+tcp://, zmq+ipc:// and inproc:// URIs. Call once before
/// building sinks from URIs (init_training_events does); calling again is harmless.
void enable_zmq_sink_uris();

/// Builds a zmq_sink from a parsed URI (what enable_zmq_sink_uris() registers).
std::unique_ptr<sink> make_zmq_sink(const sink_uri& uri);

}  // namespace foxml::events
