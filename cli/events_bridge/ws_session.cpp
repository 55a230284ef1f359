#include "ws_session.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "api.hpp"
#include "foxml/events/schema_keys.hpp"
#include "server.hpp"

namespace events_bridge {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace fe = foxml::events;
namespace fr = foxml::events::reader;

namespace {

// Per-step events a rate-limited client may get folded; everything else (lifecycle, logs,
// heartbeats...) always goes out.
bool coalescable(fe::event_type type) {
  return type == fe::event_type::progress || type == fe::event_type::metrics || type == fe::event_type::resources;
}

constexpr std::size_t ring_chunk = 1024;

}  // namespace

ws_session::ws_session(server& owner, asio::ip::tcp::socket socket, ws_params params)
    : owner_(owner),
      ws_(std::move(socket)),
      params_(std::move(params)),
      ping_timer_(ws_.get_executor()),
      coalesce_timer_(ws_.get_executor()),
      grace_timer_(ws_.get_executor()) {
  if (params_.max_hz > 0) {
    period_ = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(1.0 / params_.max_hz));
  }
}

void ws_session::run(beast::http::request<beast::http::string_body> request) {
  beast::get_lowest_layer(ws_).expires_never();
  ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  ws_.read_message_max(defaults::max_frame_bytes);
  ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(beast::http::field::server, "events-bridge"); }));
  boost::system::error_code ignored;
  // A bounded kernel buffer: a stalled client holds at most this beyond its message queue.
  beast::get_lowest_layer(ws_).socket().set_option(asio::socket_base::send_buffer_size(defaults::socket_send_buffer),
                                                   ignored);
  ws_.async_accept(request, [self = shared_from_this()](beast::error_code ec) { self->on_accept(ec); });
}

void ws_session::on_accept(beast::error_code ec) {
  if (ec) return;  // the handshake failed: nothing was registered
  open_ = true;
  owner_.add(shared_from_this());
  send_history();
  read_next();
  arm_ping();
  pump();
}

void ws_session::send_history() {
  const auto& ring = owner_.reader().buffer();
  if (params_.since) {
    // Resume: everything still held from the cursor on; pump() reports what the ring lost.
    cursor_ = std::min(*params_.since, ring.end());
    return;
  }
  // The last `ws_history` matching events, then live from the position after the read: the ring
  // is read by cursor only, so the seam has no gap and no duplicate.
  fr::ring_read r = ring.read_since(ring.begin());
  std::deque<std::pair<fr::shared_event, std::uint64_t>> recent;
  std::uint64_t position = r.next - r.events.size();
  const std::size_t keep = owner_.options().ws_history;
  for (auto& e : r.events) {
    const auto& v = e->value;
    if ((params_.types.empty() || params_.types.count(v.type)) && (params_.run.empty() || params_.run == v.run_id)) {
      recent.emplace_back(std::move(e), position);
      if (recent.size() > keep) recent.pop_front();
    }
    ++position;
  }
  cursor_ = r.next;
  for (const auto& [e, at] : recent) offer(e, at);
}

void ws_session::pump() {
  // The ring is the backlog: events move into the queue only while it has room, so a burst or a
  // resume from an old cursor waits in the ring, not in per-client copies. A client whose queue
  // is full when the ring overwrites its next event has stopped keeping up: it is disconnected.
  const auto& ring = owner_.reader().buffer();
  const std::size_t limit = owner_.options().client_queue;
  while (!closing_) {
    if (queue_.size() >= limit) {
      backlogged_ = true;
      if (ring.begin() > cursor_) too_slow();
      return;
    }
    fr::ring_read r = ring.read_since(cursor_, std::min(ring_chunk, limit - queue_.size()));
    std::uint64_t position = r.next - r.events.size();
    if (r.missed > 0) {
      if (backlogged_) {
        too_slow();
        return;
      }
      // A resume from a cursor the ring no longer holds (or an io thread that fell behind the
      // reader): said, never silent.
      owner_.counters().ws_missed += r.missed;
      enqueue(fmt::format("{{\"type\":\"missed\",\"{}\":{},\"cursor\":{}}}", foxml::events::schema::names::count, r.missed, position));
    }
    backlogged_ = false;
    cursor_ = r.next;
    for (const auto& e : r.events) {
      if (closing_) return;
      offer(e, position++);
    }
    if (r.events.empty()) return;
  }
}

void ws_session::offer(const fr::shared_event& e, std::uint64_t cursor) {
  const auto& v = e->value;
  if (!params_.types.empty() && !params_.types.count(v.type)) return;
  if (!params_.run.empty() && params_.run != v.run_id) return;
  if (period_.count() == 0 || !coalescable(v.type)) {
    // Held per-step events of the run go first, so a run_complete never overtakes its last progress.
    if (period_.count() != 0) flush_held(v.run_id, false);
    enqueue(event_message(e->line, cursor));
    return;
  }
  const auto now = clock::now();
  held_event& h = held_[v.run_id + '\x1f' + std::to_string(v.rank) + '\x1f' + std::string(fe::to_string(v.type))];
  if (!h.present && now >= h.next_send) {
    h.next_send = now + period_;
    enqueue(event_message(e->line, cursor, h.folded));
    h.folded = 0;
    return;
  }
  if (h.present) {
    ++h.folded;
    owner_.counters().ws_coalesced += 1;
  }
  h.line = e->line;
  h.cursor = cursor;
  h.present = true;
  arm_coalesce_timer();
}

void ws_session::flush_held(const std::string& run_id, bool all_due) {
  const auto now = clock::now();
  for (auto& [key, h] : held_) {
    if (!h.present) continue;
    const bool same_run = key.compare(0, key.find('\x1f'), run_id) == 0 && key.find('\x1f') == run_id.size();
    if (all_due ? now < h.next_send : !same_run) continue;
    h.present = false;
    h.next_send = now + period_;
    enqueue(event_message(h.line, h.cursor, h.folded));
    h.folded = 0;
    if (closing_) return;
  }
}

void ws_session::arm_coalesce_timer() {
  if (coalesce_armed_ || closing_) return;
  auto earliest = clock::time_point::max();
  for (const auto& [key, h] : held_) {
    if (h.present) earliest = std::min(earliest, h.next_send);
  }
  if (earliest == clock::time_point::max()) return;
  coalesce_armed_ = true;
  coalesce_timer_.expires_at(earliest);
  coalesce_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    self->coalesce_armed_ = false;
    if (ec || self->closing_) return;
    self->flush_held("", true);
    self->arm_coalesce_timer();
  });
}

void ws_session::enqueue(std::string message) {
  if (closing_) return;
  // pump() fills the queue only to its limit; pings, missed reports and coalesced events come on
  // top, a few at most.
  queue_.push_back(std::move(message));
  owner_.counters().ws_messages += 1;
  last_sent_ = clock::now();
  if (!writing_) write_next();
}

void ws_session::write_next() {
  writing_ = true;
  ws_.text(true);
  ws_.async_write(asio::buffer(queue_.front()), [self = shared_from_this()](beast::error_code ec, std::size_t) {
    self->writing_ = false;
    if (ec) {
      self->finish();
      return;
    }
    self->queue_.pop_front();
    if (self->close_after_write_) {
      self->close_with(*self->close_after_write_);
      return;
    }
    if (self->closing_) return;
    if (self->backlogged_) self->pump();  // room again: take more from the ring
    if (!self->queue_.empty() && !self->writing_ && !self->closing_) self->write_next();
  });
}

void ws_session::read_next() {
  ws_.async_read(incoming_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
    if (ec) {
      // Beast has already answered a frame over read_message_max with close code 1009.
      if (ec == websocket::error::message_too_big) {
        self->owner_.counters().oversize_frames += 1;
        fmt::print(stderr, "events-bridge: a WebSocket client sent a message over {} bytes; closed (1009)\n",
                   defaults::max_frame_bytes);
      }
      self->finish();
      return;
    }
    self->incoming_.consume(self->incoming_.size());  // what clients send is ignored
    self->read_next();
  });
}

void ws_session::arm_ping() {
  ping_timer_.expires_at(last_sent_ + owner_.options().ping_after);
  ping_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->closing_) return;
    if (clock::now() - self->last_sent_ >= self->owner_.options().ping_after) {
      self->enqueue(fmt::format("{{\"type\":\"ping\",\"cursor\":{}}}", self->cursor_));
    }
    self->arm_ping();
  });
}

void ws_session::too_slow() {
  if (closing_) return;
  owner_.counters().slow_disconnects += 1;
  boost::system::error_code ignored;
  const auto peer = beast::get_lowest_layer(ws_).socket().remote_endpoint(ignored);
  fmt::print(stderr, "events-bridge: WebSocket client {}:{} fell behind by its whole queue ({} messages) and "
                     "the ring; disconnected (1008)\n",
             peer.address().to_string(), peer.port(), owner_.options().client_queue);
  // The message being written stays (its buffer is in use); the rest go.
  while (queue_.size() > (writing_ ? 1U : 0U)) queue_.pop_back();
  close_with(websocket::close_code::policy_error);
}

void ws_session::close_with(websocket::close_code code) {
  closing_ = true;
  ping_timer_.cancel();
  coalesce_timer_.cancel();
  if (writing_) {
    // A close frame has to wait for the write in flight; a client that reads nothing never lets
    // it finish, so the socket is closed outright after a grace period.
    close_after_write_ = code;
    grace_timer_.expires_after(defaults::close_grace);
    grace_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      boost::system::error_code ignored;
      beast::get_lowest_layer(self->ws_).socket().close(ignored);
      self->finish();
    });
    return;
  }
  close_after_write_.reset();
  grace_timer_.cancel();
  if (code == websocket::close_code::policy_error) {
    // A client that stopped reading will not answer the close frame either: don't wait for it.
    websocket::stream_base::timeout quick = websocket::stream_base::timeout::suggested(beast::role_type::server);
    quick.handshake_timeout = defaults::close_grace;
    ws_.set_option(quick);
  }
  ws_.async_close(code, [self = shared_from_this()](beast::error_code) { self->finish(); });
}

void ws_session::shutdown() {
  if (!closing_) close_with(websocket::close_code::going_away);
}

void ws_session::finish() {
  closing_ = true;
  ping_timer_.cancel();
  coalesce_timer_.cancel();
  grace_timer_.cancel();
  if (open_) {
    open_ = false;
    owner_.remove(shared_from_this());
  }
}

}  // namespace events_bridge
