#include "foxml/events/zmq_sink.hpp"

#include <zmq.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>

#include "foxml/events/zmq_topic.hpp"

namespace foxml::events {
namespace {

std::system_error zmq_failure(const std::string& what, const std::string& endpoint) {
  const int err = zmq_errno();
  return std::system_error(err, std::generic_category(),
                           "foxml::events: ZeroMQ sink cannot " + what + " '" + endpoint + "': " + zmq_strerror(err));
}

}  // namespace

void* shared_zmq_context() {
  // Never destroyed: zmq_ctx_term waits for every socket, and an emitter may outlive statics.
  static void* const context = zmq_ctx_new();
  return context;
}

zmq_sink::zmq_sink(zmq_sink_options options) : options_(std::move(options)) {
  if (options_.endpoint.empty()) throw std::invalid_argument("foxml::events: ZeroMQ sink endpoint must not be empty");
  if (options_.send_hwm < 0) throw std::invalid_argument("foxml::events: ZeroMQ sink send_hwm must not be negative");
  void* context = options_.context != nullptr ? options_.context : shared_zmq_context();
  socket_ = zmq_socket(context, ZMQ_PUB);
  if (socket_ == nullptr) throw zmq_failure("create a PUB socket for", options_.endpoint);
  const int hwm = options_.send_hwm;
  const int nodrop = 1;
  const int linger = static_cast<int>(options_.linger.count());
  const bool set = zmq_setsockopt(socket_, ZMQ_SNDHWM, &hwm, sizeof(hwm)) == 0 &&
                   zmq_setsockopt(socket_, ZMQ_XPUB_NODROP, &nodrop, sizeof(nodrop)) == 0 &&
                   zmq_setsockopt(socket_, ZMQ_LINGER, &linger, sizeof(linger)) == 0;
  const bool attached = set && (options_.bind ? zmq_bind(socket_, options_.endpoint.c_str())
                                              : zmq_connect(socket_, options_.endpoint.c_str())) == 0;
  if (!attached) {
    const std::system_error error = zmq_failure(!set ? "configure" : options_.bind ? "bind" : "connect to",
                                                options_.endpoint);
    zmq_close(socket_);
    socket_ = nullptr;
    throw error;
  }
}

zmq_sink::~zmq_sink() { close(); }

std::size_t zmq_sink::write(const line_batch& batch) noexcept {
  if (socket_ == nullptr) return 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    std::string_view line = batch.line(i);
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    zmq_topic_of_line(line, topic_);
    // The high-water mark is checked on the first frame only (a message is never split), so a
    // refused topic frame leaves nothing half-sent.
    if (zmq_send(socket_, topic_.data(), topic_.size(), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) return i;
    while (zmq_send(socket_, line.data(), line.size(), ZMQ_DONTWAIT) < 0) {
      if (zmq_errno() != EAGAIN && zmq_errno() != EINTR) return i;  // the context is ending
    }
  }
  return batch.size();
}

void zmq_sink::close() noexcept {
  if (socket_ != nullptr) {
    zmq_close(socket_);
    socket_ = nullptr;
  }
}

std::string zmq_sink::describe() const {
  std::string text = "zmq+" + options_.endpoint;
  if (options_.endpoint.rfind("inproc://", 0) == 0) text = options_.endpoint;
  return text + (options_.bind ? "?bind=1" : "?connect=1");
}

std::unique_ptr<sink> make_zmq_sink(const sink_uri& uri) {
  zmq_sink_options options;
  options.endpoint = uri.zmq_endpoint();
  options.bind = uri.bind;
  return std::make_unique<zmq_sink>(std::move(options));
}

void enable_zmq_sink_uris() { register_zmq_sink_factory(&make_zmq_sink); }

namespace {
// Linking this file (any use of zmq_sink) is enough for URIs to work, too.
[[maybe_unused]] const bool registered = (enable_zmq_sink_uris(), true);
}  // namespace

}  // namespace foxml::events
