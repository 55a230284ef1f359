#include "foxml/events/zmq_sink.hpp"

#include <zmq.hpp>

#include <cerrno>
#include <stdexcept>
#include <system_error>

#include "foxml/events/control.hpp"
#include "foxml/events/detail/command_inbox.hpp"
#include "foxml/events/zmq_topic.hpp"

namespace foxml::events {
namespace {

std::system_error zmq_failure(const zmq::error_t& error, const std::string& what, const std::string& endpoint) {
  return std::system_error(error.num(), std::generic_category(),
                           "foxml::events: ZeroMQ sink cannot " + what + " '" + endpoint + "': " + error.what());
}

}  // namespace

zmq::context_t& shared_zmq_context() {
  static zmq::context_t* const context = new zmq::context_t();
  return *context;
}

zmq_sink::zmq_sink(zmq_sink_options options) : options_(std::move(options)) {
  if (options_.endpoint.empty()) throw std::invalid_argument("foxml::events: ZeroMQ sink endpoint must not be empty");
  if (options_.send_hwm < 0) throw std::invalid_argument("foxml::events: ZeroMQ sink send_hwm must not be negative");
  if (options_.context == nullptr && !options_.bind && options_.endpoint.rfind("inproc://", 0) != 0) {
    own_context_ = std::make_unique<zmq::context_t>();
  }
  zmq::context_t& context = options_.context != nullptr ? *options_.context
                            : own_context_              ? *own_context_
                                                        : shared_zmq_context();
  if (options_.bind && !options_.curve.server_key.empty()) {
    throw std::invalid_argument(
        "foxml::events: a binding ZeroMQ sink is the CURVE server: give curve_keys alone, not curve_server_key");
  }
  // Read once: a bad key file is a set-up error here, before any socket exists.
  if (options_.bind && options_.curve.enabled()) curve_keys_ = read_curve_key_file(options_.curve.keys);
  const char* step = "create a PUB socket for";
  try {
    // Connecting, an XPUB: it sees its peer's subscriptions, so lines are not sent into a
    // connection that is not there yet (write() below).
    socket_ = std::make_unique<zmq::socket_t>(context, options_.bind ? zmq::socket_type::pub : zmq::socket_type::xpub);
    subscribed_ = options_.bind;
    step = "configure";
    socket_->set(zmq::sockopt::sndhwm, options_.send_hwm);
    socket_->set(zmq::sockopt::xpub_nodrop, true);
    socket_->set(zmq::sockopt::linger, static_cast<int>(options_.linger.count()));
    apply_curve(*socket_);
    step = options_.bind ? "bind" : "connect to";
    if (options_.bind) {
      socket_->bind(options_.endpoint);
    } else {
      socket_->connect(options_.endpoint);
    }
  } catch (const zmq::error_t& e) {
    socket_.reset();
    throw zmq_failure(e, step, options_.endpoint);
  } catch (...) {
    socket_.reset();  // a bad key file (apply_curve): before the context goes
    throw;
  }
  open_commands(context);
}

void zmq_sink::apply_curve(zmq::socket_t& socket) {
  if (!options_.curve.enabled()) return;
  if (options_.bind) {
    apply_curve_server(socket, curve_keys_);
  } else {
    apply_curve_client(socket, options_.curve);
  }
}

void zmq_sink::open_commands(zmq::context_t& context) {
  if (!options_.commands) return;
  command_endpoint_ = options_.command_endpoint.empty() ? zmq_command_endpoint(options_.endpoint)
                                                        : options_.command_endpoint;
  const char* step = "create a SUB socket for";
  try {
    commands_ = std::make_unique<zmq::socket_t>(context, zmq::socket_type::sub);
    step = "configure";
    commands_->set(zmq::sockopt::linger, 0);
    commands_->set(zmq::sockopt::rcvhwm, static_cast<int>(command_inbox_capacity * 4));
    // A command is one line of at most max_command_bytes; a larger frame is not read at all.
    commands_->set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(max_command_bytes + 1024));
    apply_curve(*commands_);
    step = options_.bind ? "bind the command socket to" : "connect the command socket to";
    if (options_.bind) {
      commands_->bind(command_endpoint_);
      // A wildcard port (`tcp://h:*`) binds one of the system's choosing: report that one.
      command_endpoint_ = commands_->get(zmq::sockopt::last_endpoint);
    } else {
      commands_->connect(command_endpoint_);
    }
  } catch (const zmq::error_t& e) {
    commands_.reset();
    socket_.reset();
    throw zmq_failure(e, step, command_endpoint_);
  } catch (...) {
    commands_.reset();
    socket_.reset();
    throw;
  }
}

void zmq_sink::attach_control(control_attachment& attachment) noexcept {
  if (!commands_) return;
  try {
    commands_->set(zmq::sockopt::subscribe, zmq_command_topic(attachment.inbox->run_id()));
    inbox_ = attachment.inbox;
  } catch (...) {
    // The context is ending or memory ran out: no commands through this sink.
  }
}

void zmq_sink::poll(std::chrono::steady_clock::time_point) noexcept {
  if (inbox_ == nullptr || !commands_) return;
  // Bounded per call: a flood of commands cannot hold the worker.
  for (int i = 0; i < 64; ++i) {
    try {
      zmq::message_t topic, body;
      if (!commands_->recv(topic, zmq::recv_flags::dontwait)) return;
      if (!topic.more()) continue;  // a single frame is not a command
      if (!commands_->recv(body, zmq::recv_flags::dontwait)) return;
      if (body.more()) {  // more than two frames: not a command; skip the rest of it
        zmq::message_t extra;
        do {
          if (!commands_->recv(extra, zmq::recv_flags::dontwait)) return;
        } while (extra.more());
        continue;
      }
      inbox_->offer_line(body.to_string_view());
    } catch (...) {
      return;
    }
  }
}

zmq_sink::~zmq_sink() { close(); }

std::size_t zmq_sink::write(const line_batch& batch) noexcept {
  if (!socket_) return 0;
  if (!subscribed_) {
    try {
      zmq::message_t subscription;
      while (socket_->recv(subscription, zmq::recv_flags::dontwait)) {
        if (subscription.size() > 0 && subscription.data<unsigned char>()[0] == 1) subscribed_ = true;
      }
    } catch (...) {
    }
    if (!subscribed_) return 0;
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    std::string_view line = batch.line(i);
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    try {
      zmq_topic_of_line(line, topic_);
      // The high-water mark is checked on the first frame only (a message is never split), so a
      // refused topic frame leaves nothing half-sent.
      if (!socket_->send(zmq::const_buffer(topic_.data(), topic_.size()),
                         zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        return i;
      }
    } catch (...) {
      return i;  // out of memory for the topic, or the context is ending
    }
    for (;;) {
      try {
        if (socket_->send(zmq::const_buffer(line.data(), line.size()), zmq::send_flags::dontwait)) break;
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) return i;  // the context is ending
      }
    }
  }
  return batch.size();
}

void zmq_sink::close() noexcept {
  inbox_ = nullptr;
  if (commands_) {
    commands_->close();
    commands_.reset();
  }
  if (socket_) {
    socket_->close();
    socket_.reset();
  }
  if (own_context_) {
    own_context_->close();  // waits up to `linger` for the queued messages to leave
    own_context_.reset();
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
  options.command_endpoint = uri.zmq_command_endpoint();
  options.curve = uri.curve;
  return std::make_unique<zmq_sink>(std::move(options));
}

void enable_zmq_sink_uris() { register_zmq_sink_factory(&make_zmq_sink); }

}  // namespace foxml::events
