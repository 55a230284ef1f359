#include "foxml/events/reader/zmq_source.hpp"

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <cerrno>
#include <optional>
#include <vector>

#include "fd.hpp"
#include "foxml/events/reader/commands.hpp"
#include "foxml/events/reader/make_source.hpp"
#include "foxml/events/sink_uri.hpp"
#include "foxml/events/zmq_curve.hpp"
#include "foxml/events/zmq_topic.hpp"
#include "stats_json.hpp"

namespace foxml::events::reader {

struct zmq_source::impl {
  std::optional<zmq::context_t> own_context;
  zmq::socket_t socket;
  std::string origin;
  zmq_source_options options;
  zmq_source_stats stats;
  detail::waker waker;
  std::uint64_t offset = 0;

  impl(zmq::context_t& context, std::string endpoint, zmq_source_options o)
      : socket(context, zmq::socket_type::sub), origin(std::move(endpoint)), options(std::move(o)) {}

  // Receives every message waiting now without blocking. A signal (EINTR) ends the drain: the
  // caller's loop looks at why it was interrupted, and nothing is lost (ZeroMQ delivers whole
  // messages or none).
  void drain(const line_handler& on_line) {
    std::vector<zmq::message_t> frames;
    for (;;) {
      frames.clear();
      std::optional<std::size_t> parts;
      try {
        parts = zmq::recv_multipart(socket, std::back_inserter(frames), zmq::recv_flags::dontwait);
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) return;
        throw;
      }
      if (!parts) return;
      ++stats.messages;
      if (frames.size() != 2) {
        ++stats.bad_frames;
        continue;
      }
      std::string_view text(static_cast<const char*>(frames[1].data()), frames[1].size());
      if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
      const bool oversized = text.size() > options.max_line_bytes;
      if (oversized) text = text.substr(0, options.max_line_bytes);
      on_line(raw_line{text, line_position{origin, stats.messages, offset}, oversized});
      offset += frames[1].size();
    }
  }
};

zmq_source::zmq_source(const std::string& endpoint, zmq_source_options options, zmq::context_t* context) {
  std::optional<zmq::context_t> own;
  zmq::context_t* ctx = context;
  if (ctx == nullptr) ctx = &own.emplace(1);
  impl_ = std::make_unique<impl>(*ctx, endpoint, std::move(options));
  if (own) impl_->own_context = std::move(own);  // the socket only holds the raw context handle
  auto& s = *impl_;
  s.socket.set(zmq::sockopt::rcvhwm, s.options.receive_hwm);
  apply_curve_client(s.socket, s.options.curve);
  // Prefixes come from the topic helper the publisher uses, so a run id the encoder escapes
  // (quotes, backslashes, control characters) matches byte for byte.
  for (const std::string& prefix : zmq_subscriptions(s.options.types, s.options.runs)) {
    s.socket.set(zmq::sockopt::subscribe, prefix);
  }
  s.socket.connect(endpoint);
}

zmq_source::~zmq_source() {
  if (impl_) impl_->socket.close();  // before a context we own goes
}

bool zmq_source::poll(std::chrono::milliseconds timeout, const line_handler& on_line) {
  auto& s = *impl_;
  s.drain(on_line);
  zmq::pollitem_t items[] = {{s.socket.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, s.waker.fd(), ZMQ_POLLIN, 0}};
  // cppzmq throws on EINTR; a signal is a wake-up like the waker's, not a failure.
  if (zmq_poll(items, 2, static_cast<long>(timeout.count())) < 0) {
    if (zmq_errno() == EINTR) return true;
    throw zmq::error_t();
  }
  if (items[1].revents & ZMQ_POLLIN) s.waker.drain();
  s.drain(on_line);
  return true;
}

void zmq_source::wake() noexcept { impl_->waker.wake(); }

std::string zmq_source::describe() const { return impl_->origin; }

zmq_source_stats zmq_source::stats() const noexcept { return impl_->stats; }

std::string zmq_source::stats_json() const { return nlohmann::json(impl_->stats).dump(); }

void enable_zmq_source_uris() {
  enable_zmq_commands();  // a reader of a ZeroMQ source can send commands back (commands.hpp)
  register_zmq_source_factory([](const source_uri& uri, const source_options& options) -> std::unique_ptr<source> {
    zmq_source_options o;
    o.types = options.types;
    o.runs = options.runs;
    o.max_line_bytes = options.max_line_bytes;
    o.curve = uri.curve;
    try {
      return std::make_unique<zmq_source>(uri.endpoint, std::move(o));
    } catch (const zmq::error_t& e) {  // an endpoint ZeroMQ refuses: a set-up error about the URI
      throw uri_error("source", uri.text, e.what());
    } catch (const std::exception& e) {  // CURVE half-given, or a bad key file
      throw uri_error("source", uri.text, e.what());
    }
  });
}

}  // namespace foxml::events::reader
