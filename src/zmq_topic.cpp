#include "foxml/events/zmq_topic.hpp"

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
  std::vector<std::string> prefixes;
  prefixes.reserve(event_type_count);
  for (std::size_t i = 0; i < event_type_count; ++i) prefixes.push_back(zmq_topic(static_cast<event_type>(i), run_id));
  return prefixes;
}

}  // namespace foxml::events
