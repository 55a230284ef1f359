#include "api.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <map>

#include "foxml/events/reader/run_json.hpp"
#include "foxml/events/schema_keys.hpp"
#include "server.hpp"

namespace events_bridge {
namespace fr = foxml::events::reader;
namespace names = foxml::events::schema::names;  // wire keys, spelled once
using json = nlohmann::ordered_json;

namespace {

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A run as JSON: the summary for lists, else the whole state thinned to `max_points` per series
// (the tracker's to_json options: one place for both).
json run_json(const fr::run_state& run, std::int64_t now, bool summary, std::size_t max_points) {
  fr::run_json_options options;
  options.history = !summary;
  options.max_points = max_points;
  return json::parse(fr::to_json(run, now, options));
}

}  // namespace

reply error_reply(unsigned status, const std::string& message) {
  return {status, json{{"error", message}}.dump()};
}

std::string event_message(const std::string& line, std::uint64_t cursor, std::uint64_t coalesced) {
  std::string out = "{\"cursor\":" + std::to_string(cursor) + ",";
  if (coalesced > 0) out += "\"coalesced\":" + std::to_string(coalesced) + ",";
  // A wire line is always a non-empty JSON object; `{}` would leave a trailing comma.
  if (line.size() > 2) {
    out.append(line, 1, std::string::npos);
  } else {
    out.back() = '}';
  }
  return out;
}

reply runs_reply(server& s) {
  const auto now = now_us();
  json runs = json::array();
  std::map<std::string, std::size_t> counts;
  for (const auto& run : s.reader().runs()) {
    json one = run_json(run, now, true, 0);
    counts[one.value(std::string(names::status), "unknown")] += 1;
    runs.push_back(std::move(one));
  }
  json count_json = json::object();
  for (const auto& [status, n] : counts) count_json[status] = n;
  return {200, json{{"runs", std::move(runs)}, {"counts", std::move(count_json)}}.dump()};
}

reply run_reply(server& s, const std::string& run_id) {
  const auto run = s.reader().run(run_id);
  if (!run) return error_reply(404, "unknown run: " + run_id);
  return {200, run_json(*run, now_us(), false, s.options().max_points).dump()};
}

reply run_events_reply(server& s, const std::string& run_id, const target& t) {
  if (!s.reader().run(run_id)) return error_reply(404, "unknown run: " + run_id);
  std::uint64_t since = 0;
  std::size_t limit = defaults::events_page;
  std::set<foxml::events::event_type> types;
  if (auto it = t.query.find("since"); it != t.query.end()) {
    const auto value = parse_count(it->second);
    if (!value) return error_reply(400, "since must be a cursor (a whole number)");
    since = *value;
  }
  if (auto it = t.query.find("limit"); it != t.query.end()) {
    const auto value = parse_count(it->second);
    if (!value || *value == 0) return error_reply(400, "limit must be a whole number above 0");
    limit = static_cast<std::size_t>(std::min<std::uint64_t>(*value, defaults::events_page));
  }
  if (auto it = t.query.find("types"); it != t.query.end()) {
    for (const auto& name : split_list(it->second)) {
      const auto type = foxml::events::parse_event_type(name);
      if (!type) return error_reply(400, "unknown event type: " + name);
      types.insert(*type);
    }
  }
  // Reads in chunks until the page is full: the run's events may be sparse in the ring.
  const auto& ring = s.reader().buffer();
  json events = json::array();
  std::uint64_t cursor = since, missed = 0;
  const std::uint64_t end = ring.end();
  while (events.size() < limit && cursor < end) {
    fr::ring_read r = ring.read_since(cursor, 4096);
    missed += r.missed;
    std::uint64_t position = r.next - r.events.size();
    for (const auto& e : r.events) {
      cursor = position + 1;
      if (e->value.run_id == run_id && (types.empty() || types.count(e->value.type))) {
        json event = json::parse(e->line, nullptr, false);
        if (event.is_discarded()) event = json::object();
        json with_cursor = json{{"cursor", position}};
        with_cursor.update(event);
        events.push_back(std::move(with_cursor));
        if (events.size() >= limit) break;
      }
      ++position;
    }
    if (r.events.empty()) break;
    if (events.size() < limit) cursor = r.next;
  }
  return {200, json{{"events", std::move(events)}, {"next", cursor}, {"missed", missed}}.dump()};
}

reply training_status_reply(server& s) {
  const auto status = s.reader().training_status();
  json events = json::array();
  for (const auto& line : status.events) {
    json one = json::parse(line, nullptr, false);
    if (!one.is_discarded()) events.push_back(std::move(one));
  }
  json out = {{"running", status.running},
              {"run_id", status.run_id ? json(*status.run_id) : json(nullptr)},
              {std::string(names::stage), status.stage ? json(*status.stage) : json(nullptr)},
              {std::string(names::progress_pct), status.progress_pct},
              {std::string(names::current_target), status.current_target ? json(*status.current_target) : json(nullptr)},
              {"events", std::move(events)}};
  return {200, out.dump()};
}

reply health_reply(server& s) {
  auto& c = s.counters();
  const double uptime =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - s.started()).count();
  json out = {{std::string(names::status), "ok"},
              {"sources", s.options().sources},
              {"uptime_s", uptime},
              {"clients", c.ws_clients.load()},
              {"events", s.reader().buffer().end()},
              {"reader", json::parse(s.reader().stats_json())},
              {"bridge",
               {{"http_requests", c.http_requests.load()},
                {"http_errors", c.http_errors.load()},
                {"ws_connections", c.ws_connections.load()},
                {"ws_clients", c.ws_clients.load()},
                {"ws_messages", c.ws_messages.load()},
                {"ws_coalesced", c.ws_coalesced.load()},
                {"ws_missed", c.ws_missed.load()},
                {"slow_client_disconnects", c.slow_disconnects.load()},
                {"oversize_frames", c.oversize_frames.load()},
                {"commands", c.commands.load()},
                {"events_per_s", s.events_per_s()}}}};
  if (auto error = s.reader().error()) {
    out[std::string(names::status)] = "degraded";
    out["error"] = *error;
  }
  return {200, out.dump()};
}

}  // namespace events_bridge
