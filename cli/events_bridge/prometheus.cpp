// GET /metrics: the bridge's and the runs' numbers in the Prometheus text format 0.0.4.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>

#include "api.hpp"
#include "foxml/events/reader/run_json.hpp"
#include "foxml/events/schema_keys.hpp"
#include "server.hpp"

namespace events_bridge {
namespace fr = foxml::events::reader;
namespace names = foxml::events::schema::names;  // wire keys, spelled once

namespace {

// Label values escape backslash, double quote and line feed (the exposition format's rule).
std::string label(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Sample values: Go's float syntax, where non-finite numbers are NaN, +Inf and -Inf.
std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

struct exposition {
  std::string text;
  void family(const char* name, const char* type, const char* help) {
    text += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void sample(const char* name, double value, const std::string& labels = "") {
    text += labels.empty() ? fmt::format("{} {}\n", name, number(value))
                           : fmt::format("{}{{{}}} {}\n", name, labels, number(value));
  }
};

}  // namespace

reply metrics_reply(server& s) {
  exposition out;
  const auto runs = s.reader().runs();
  const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  fr::run_json_options summary;
  summary.history = false;
  std::vector<nlohmann::json> states;
  states.reserve(runs.size());
  for (const auto& run : runs) states.push_back(nlohmann::json::parse(fr::to_json(run, now, summary)));  // no histories: only latest values are exported
  const auto run_label = [](const nlohmann::json& r) {
    return fmt::format("run_id=\"{}\"", label(r.value("run_id", "")));
  };
  const auto numeric = [](const nlohmann::json& r, std::string_view key) -> std::optional<double> {
    auto it = r.find(std::string(key));
    if (it == r.end() || !it->is_number()) return std::nullopt;
    return it->get<double>();
  };

  out.family("foxml_run_info", "gauge", "Runs the bridge has seen (1 per run), labelled with name and status.");
  for (const auto& r : states) {
    out.sample("foxml_run_info", 1,
               fmt::format("{},{}=\"{}\",{}=\"{}\"", run_label(r), names::name,
                           label(r.value(std::string(names::name), nlohmann::json()).is_string() ? r.at(std::string(names::name)).get<std::string>() : ""),
                           names::status, label(r.value(std::string(names::status), ""))));
  }
  const std::pair<std::string_view, const char*> per_run[] = {
      {names::progress_pct, "Percent complete."}, {names::step, "Latest step."}, {names::epoch, "Latest epoch."},
      {"eta_s", "Estimated seconds left."}, {"events", "Events seen for the run."}};
  for (const auto& [key, help] : per_run) {
    const std::string name = "foxml_run_" + std::string(key);
    out.family(name.c_str(), "gauge", help);
    for (const auto& r : states) {
      if (auto v = numeric(r, key)) out.sample(name.c_str(), *v, run_label(r));
    }
  }
  out.family("foxml_run_metric", "gauge", "Latest value of each metric a run reports, by `metric` label.");
  for (const auto& r : states) {
    auto it = r.find(std::string(names::metrics));
    if (it == r.end() || !it->is_object()) continue;
    for (const auto& [metric, value] : it->items()) {
      if (value.is_number()) {
        out.sample("foxml_run_metric", value.get<double>(),
                   fmt::format("{},metric=\"{}\"", run_label(r), label(metric)));
      }
    }
  }

  const auto stats = nlohmann::json::parse(s.reader().stats_json());
  const auto counter = [&](const char* name, const char* help, double value) {
    out.family(name, "counter", help);
    out.sample(name, value);
  };
  const auto stat = [&](const char* key) {
    auto it = stats.find(key);
    return it != stats.end() && it->is_number() ? it->get<double>() : 0.0;
  };
  counter("foxml_reader_events_total", "Events the reader accepted.", static_cast<double>(s.reader().buffer().end()));
  out.family("foxml_reader_events_per_second", "gauge", "Events per second over the last few seconds.");
  out.sample("foxml_reader_events_per_second", s.events_per_s());
  counter("foxml_reader_duplicates_total", "Duplicate events dropped.", stat("duplicates"));
  counter("foxml_reader_malformed_total", "Malformed lines skipped.", stat("malformed"));
  // Outstanding gaps shrink when a late event fills one: gauges, not counters.
  out.family("foxml_reader_gaps", "gauge", "Unexplained seq gaps outstanding.");
  out.sample("foxml_reader_gaps", stat("gaps"));
  out.family("foxml_reader_missing", "gauge", "Events missing in the outstanding gaps.");
  out.sample("foxml_reader_missing", stat("missing"));
  counter("foxml_reader_reported_drops_total", "Events emitters reported dropped (their `dropped` events).", stat("reported_drops"));
  counter("foxml_reader_late_total", "Events that arrived after their seq was declared missing.", stat("late"));
  auto& c = s.counters();
  out.family("foxml_bridge_ws_clients", "gauge", "Connected WebSocket clients.");
  out.sample("foxml_bridge_ws_clients", static_cast<double>(c.ws_clients.load()));
  counter("foxml_bridge_ws_messages_total", "Messages queued to WebSocket clients.", static_cast<double>(c.ws_messages.load()));
  counter("foxml_bridge_ws_coalesced_total", "Events folded by max_hz coalescing.", static_cast<double>(c.ws_coalesced.load()));
  counter("foxml_bridge_slow_client_disconnects_total", "WebSocket clients disconnected for falling behind.",
          static_cast<double>(c.slow_disconnects.load()));
  counter("foxml_bridge_http_requests_total", "HTTP requests.", static_cast<double>(c.http_requests.load()));
  counter("foxml_bridge_http_errors_total", "HTTP answers with a 4xx or 5xx status.", static_cast<double>(c.http_errors.load()));
  return {200, std::move(out.text), "text/plain; version=0.0.4; charset=utf-8"};
}

}  // namespace events_bridge
