// The ZeroMQ path of send_command (commands.hpp): the part of the sender that needs libzmq.

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <stdexcept>

#include "foxml/events/reader/commands.hpp"
#include "foxml/events/schema_keys.hpp"
#include "foxml/events/zmq_curve.hpp"
#include "foxml/events/zmq_topic.hpp"

namespace foxml::events::reader {
namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Resend interval: a PUB drops what it sends before its peers have connected and subscribed
// (ZeroMQ's slow joiner), so the same id goes out again until the run acknowledges it; the
// emitter takes an id once.
constexpr auto resend_every = 100ms;

command_result send_over_zmq(const std::string& event_endpoint, const std::string& command_endpoint,
                             command_request request, std::chrono::milliseconds timeout,
                             const curve_settings& curve) {
  const std::string line = encode_command(request);
  command_result result;
  result.id = request.id;
  result.via = "zmq";
  // make_source's spelling (zmq+tcp://) is accepted; ZeroMQ itself knows only tcp://, ipc://...
  const auto strip = [](const std::string& e) { return e.rfind("zmq+", 0) == 0 ? e.substr(4) : e; };
  std::string commands;
  try {
    commands = command_endpoint.empty() ? zmq_command_endpoint(strip(event_endpoint)) : strip(command_endpoint);
  } catch (const std::invalid_argument& e) {
    result.error = e.what();
    return result;
  }
  try {
    zmq::context_t context(1);
    zmq::socket_t pub(context, zmq::socket_type::pub);
    zmq::socket_t sub(context, zmq::socket_type::sub);
    pub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::linger, 0);
    apply_curve_client(pub, curve);
    apply_curve_client(sub, curve);
    sub.set(zmq::sockopt::subscribe, zmq_topic(event_type::command_received, request.run_id));
    // The emitter acknowledges an id once: our subscription must be in place before the command
    // can arrive, or the one command_received is published to nobody. Its handshake is watched;
    // the subscription goes out right after it, ahead of anything we send on the other socket.
    const std::string monitor_endpoint = "inproc://foxml-events-command-" + result.id;
    if (zmq_socket_monitor(sub.handle(), monitor_endpoint.c_str(), ZMQ_EVENT_HANDSHAKE_SUCCEEDED) != 0) {
      throw zmq::error_t();
    }
    zmq::socket_t monitor(context, zmq::socket_type::pair);
    monitor.set(zmq::sockopt::linger, 0);
    monitor.connect(monitor_endpoint);
    sub.connect(strip(event_endpoint));
    const auto deadline = clock::now() + timeout;
    zmq::pollitem_t watch{monitor.handle(), 0, ZMQ_POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (zmq::poll(&watch, 1, std::max(0ms, left)) == 0) {
      result.error = "could not reach the event endpoint " + event_endpoint + " in time (no ZeroMQ handshake" +
                     std::string(curve.enabled() ? "; a CURVE server refuses a key it does not list)" : ")");
      return result;
    }
    pub.connect(commands);
    const std::string topic = zmq_command_topic(request.run_id);
    auto next_send = clock::now();
    std::vector<zmq::message_t> frames;
    while (clock::now() < deadline) {
      if (clock::now() >= next_send) {
        std::array<zmq::const_buffer, 2> parts = {zmq::buffer(topic), zmq::buffer(line)};
        zmq::send_multipart(pub, parts, zmq::send_flags::dontwait);
        next_send = clock::now() + resend_every;
      }
      const auto wait = std::min(next_send, deadline) - clock::now();
      zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::max(0ms, std::chrono::duration_cast<std::chrono::milliseconds>(wait)));
      for (;;) {
        frames.clear();
        if (!zmq::recv_multipart(sub, std::back_inserter(frames), zmq::recv_flags::dontwait)) break;
        if (frames.size() != 2) continue;
        const std::string text = frames[1].to_string();
        const auto event = nlohmann::json::parse(text, nullptr, false);
        if (!event.is_object() || event.value("event_type", "") != "command_received" ||
            event.value(std::string(schema::names::command_id), "") != result.id) {
          continue;
        }
        result.received.push_back(text);
        result.ok = result.acknowledged = true;
        result.delivered = 1;
        return result;
      }
    }
    result.error = "no command_received from run " + request.run_id + " on " + event_endpoint + " in time (sent on " +
                   commands + " every 100 ms)";
  } catch (const std::runtime_error& e) {  // a bad key file
    result.error = e.what();
  } catch (const std::invalid_argument& e) {  // CURVE half-given
    result.error = e.what();
  } catch (const zmq::error_t& e) {
    result.error = std::string("ZeroMQ: ") + e.what() + " (event endpoint " + event_endpoint + ", command endpoint " +
                   commands + ")";
  }
  return result;
}

}  // namespace

void enable_zmq_commands() { register_zmq_command_sender(&send_over_zmq); }

}  // namespace foxml::events::reader
