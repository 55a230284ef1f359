#include "foxml/events/zmq_topic.hpp"

#include <stdexcept>
#include <string>

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

// ---- the command path (issue 11)

std::string zmq_command_endpoint(std::string_view event_endpoint) {
  const auto refuse = [&](const char* why) {
    return std::invalid_argument("foxml::events: no command endpoint for ZeroMQ endpoint '" +
                                 std::string(event_endpoint) + "': " + why);
  };
  std::string_view rest = event_endpoint;
  std::string prefix;
  if (rest.substr(0, 4) == "zmq+") {
    prefix = "zmq+";
    rest.remove_prefix(4);
  }
  if (rest.substr(0, 6) == "ipc://" || rest.substr(0, 9) == "inproc://") {
    if (rest.find("://") + 3 == rest.size()) throw refuse("empty path");
    return prefix + std::string(rest) + ".commands";
  }
  if (rest.substr(0, 6) != "tcp://") throw refuse("only tcp://, ipc:// and inproc:// have a command endpoint");
  // The port is after the last ':' (an IPv6 host is bracketed, so its colons come before it).
  const std::size_t colon = rest.rfind(':');
  const std::string_view port = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
  if (colon < 6 || port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos) {
    throw refuse("the port + 1 rule needs a numeric port (give the command endpoint explicitly)");
  }
  const unsigned long number = std::stoul(std::string(port));
  if (number == 0 || number >= 65535) throw refuse("the port + 1 rule needs a port from 1 to 65534");
  return prefix + std::string(rest.substr(0, colon + 1)) + std::to_string(number + 1);
}

std::string zmq_command_topic(std::string_view run_id) {
  std::string topic(run_id);
  topic += zmq_topic_separator;
  return topic;
}

}  // namespace foxml::events
