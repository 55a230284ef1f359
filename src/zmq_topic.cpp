#include "foxml/events/zmq_topic.hpp"

#include <stdexcept>

#include "json_writer.hpp"

namespace foxml::events {
namespace {

constexpr std::string_view type_key = "{\"event_type\":\"";
constexpr std::string_view run_key = "\",\"run_id\":\"";

}  // namespace

bool zmq_topic_of_line(std::string_view line, std::string& topic) {
  topic.clear();
  const auto fail = [&] {
    topic.assign(2, zmq_topic_separator);
    return false;
  };
  if (line.substr(0, type_key.size()) != type_key) return fail();
  const std::size_t type_begin = type_key.size();
  const std::size_t type_end = line.find('"', type_begin);
  if (type_end == std::string_view::npos || line.substr(type_end, run_key.size()) != run_key) return fail();
  const std::size_t run_begin = type_end + run_key.size();
  std::size_t i = run_begin;
  while (i < line.size() && line[i] != '"') i += line[i] == '\\' ? 2 : 1;
  if (i >= line.size()) return fail();
  topic.append(line.substr(type_begin, type_end - type_begin));
  topic += zmq_topic_separator;
  topic.append(line.substr(run_begin, i - run_begin));
  topic += zmq_topic_separator;
  return true;
}

std::string zmq_type_subscription(event_type type) {
  std::string prefix(to_string(type));
  prefix += zmq_topic_separator;
  return prefix;
}

std::string zmq_topic(event_type type, std::string_view run_id) {
  std::string topic = zmq_type_subscription(type);
  // The same escaping as the encoder's, so the prefix matches the bytes on the wire.
  detail::append_json_string(topic, run_id);
  topic.erase(topic.size() - 1);  // the closing quote
  topic.erase(topic.find('"'), 1);  // the opening quote, right after the separator
  topic += zmq_topic_separator;
  return topic;
}

std::vector<std::string> zmq_run_subscriptions(std::string_view run_id) {
  return zmq_subscriptions({}, {std::string(run_id)});
}

std::vector<std::string> zmq_subscriptions(const std::set<event_type>& types, const std::set<std::string>& runs) {
  std::vector<std::string> prefixes;
  if (runs.empty()) {
    if (types.empty()) prefixes.emplace_back();
    for (const event_type type : types) prefixes.push_back(zmq_type_subscription(type));
    return prefixes;
  }
  // A prefix must start with the type, so a run filter needs one subscription per type.
  std::vector<event_type> all(types.begin(), types.end());
  if (all.empty()) {
    for (std::size_t i = 0; i < event_type_count; ++i) all.push_back(static_cast<event_type>(i));
  }
  prefixes.reserve(all.size() * runs.size());
  for (const event_type type : all) {
    for (const std::string& run : runs) prefixes.push_back(zmq_topic(type, run));
  }
  return prefixes;
}

std::string zmq_command_endpoint(std::string_view event_endpoint) {
  const auto reject = [&](const char* why) {
    throw std::invalid_argument("foxml::events: no command endpoint for ZeroMQ endpoint '" +
                                std::string(event_endpoint) + "': " + why);
  };
  constexpr std::string_view tcp = "tcp://";
  if (event_endpoint.substr(0, tcp.size()) == tcp) {
    const std::size_t colon = event_endpoint.rfind(':');
    if (colon == std::string_view::npos || colon < tcp.size()) reject("no port");
    const std::string_view digits = event_endpoint.substr(colon + 1);
    if (digits == "*") return std::string(event_endpoint);  // an ephemeral port: another ephemeral one
    if (digits.empty() || digits.size() > 5) reject("the port is not a number");
    unsigned long port = 0;
    for (const char c : digits) {
      if (c < '0' || c > '9') reject("the port is not a number (give the command endpoint itself)");
      port = port * 10 + static_cast<unsigned long>(c - '0');
    }
    if (port == 0 || port >= 65535) reject("the port + 1 is not a port");
    return std::string(event_endpoint.substr(0, colon + 1)) + std::to_string(port + 1);
  }
  if (event_endpoint.substr(0, 6) == "ipc://" || event_endpoint.substr(0, 9) == "inproc://") {
    return std::string(event_endpoint) + ".commands";
  }
  reject("not tcp://, ipc:// or inproc://");
  return {};
}

std::string zmq_command_topic(std::string_view run_id) {
  std::string topic(run_id);
  topic += zmq_topic_separator;
  return topic;
}

}  // namespace foxml::events
