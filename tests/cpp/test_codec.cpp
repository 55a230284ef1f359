// The hand-written encoder against nlohmann's parser, over random events (a round-trip property),
// and the decoder against hostile lines.
#include <doctest/doctest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "foxml/events.hpp"

namespace fe = foxml::events;
using nlohmann::json;

namespace {

// Random strings mixing ASCII, escapes, multi-byte UTF-8 and invalid bytes.
std::string random_string(std::mt19937_64& rng, bool allow_invalid) {
  static const char* pieces[] = {"a", "Z", "0", " ", "\"", "\\", "\n", "\t", "\x01", "\x1f", "/",
                                 "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xED\x9F\xBF"};
  static const char* invalid[] = {"\xFF", "\xC3", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xC0\x80"};
  std::string s;
  const int n = static_cast<int>(rng() % 24);
  for (int i = 0; i < n; ++i) {
    if (allow_invalid && rng() % 10 == 0) {
      s += invalid[rng() % std::size(invalid)];
    } else {
      s += pieces[rng() % std::size(pieces)];
    }
  }
  return s;
}

double random_number(std::mt19937_64& rng) {
  switch (rng() % 8) {
    case 0: return std::nan("");
    case 1: return std::numeric_limits<double>::infinity();
    case 2: return -std::numeric_limits<double>::infinity();
    case 3: return 0.0;
    case 4: return std::ldexp(static_cast<double>(rng() % 1000), static_cast<int>(rng() % 2000) - 1000);
    default: return std::uniform_real_distribution<double>(-1e6, 1e6)(rng);
  }
}

bool same_number(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

}  // namespace

TEST_CASE("random events survive encode -> nlohmann parse -> our decoder") {
  std::mt19937_64 rng(20261123);
  constexpr int rounds = 3000;
  struct expected_event {
    std::string stage, target, message;
    double pct;
    std::vector<std::pair<std::string, double>> metrics;
    std::int64_t step;
  };
  std::vector<expected_event> expected;
  auto out = std::make_unique<fe::memory_sink>();
  auto store = out->store();
  {
    fe::training_event_emitter emitter("run-\xE2\x82\xAC-\"q\"", std::move(out));
    for (int i = 0; i < rounds; ++i) {
      expected_event e;
      e.stage = random_string(rng, false);
      e.target = random_string(rng, false);
      e.message = random_string(rng, false);
      e.pct = random_number(rng);
      e.step = static_cast<std::int64_t>(rng()) >> (rng() % 64);
      const int n = static_cast<int>(rng() % 6);
      for (int k = 0; k < n; ++k) e.metrics.emplace_back(random_string(rng, false) + std::to_string(k), random_number(rng));
      std::vector<fe::metric> metrics;
      for (const auto& [name, value] : e.metrics) metrics.push_back({name, value});

      fe::progress_update p;
      p.stage = e.stage;
      p.progress_pct = e.pct;
      p.current_target = e.target;
      p.step = e.step;
      REQUIRE(emitter.emit_progress(p));
      REQUIRE(emitter.emit_metrics(e.step, metrics.data(), metrics.size()));
      REQUIRE(emitter.emit_log(random_string(rng, true), e.message));
      expected.push_back(std::move(e));
    }
    REQUIRE(emitter.close().ok());
  }
  const auto lines = store->lines();
  REQUIRE(lines.size() == rounds * 3);
  for (int i = 0; i < rounds; ++i) {
    const auto& e = expected[i];
    for (int k = 0; k < 3; ++k) {
      const std::string& line = lines[i * 3 + k];
      REQUIRE_MESSAGE(json::accept(line), line);  // nlohmann also rejects invalid UTF-8
      CHECK(line.find('\n') == std::string::npos);
    }
    const auto progress = fe::decode_line(lines[i * 3]);
    REQUIRE_MESSAGE(progress, progress.error);
    CHECK(progress.value->run_id == "run-\xE2\x82\xAC-\"q\"");
    CHECK(*progress.value->stage == e.stage);
    CHECK(*progress.value->current_target == e.target);
    CHECK(same_number(*progress.value->progress_pct, e.pct));
    CHECK(*progress.value->step == e.step);
    const auto metrics = fe::decode_line(lines[i * 3 + 1]);
    REQUIRE(metrics);
    REQUIRE(metrics.value->metrics->size() == e.metrics.size());
    for (std::size_t k = 0; k < e.metrics.size(); ++k) {
      CHECK((*metrics.value->metrics)[k].first == e.metrics[k].first);
      CHECK(same_number((*metrics.value->metrics)[k].second, e.metrics[k].second));
    }
    const auto log = fe::decode_line(lines[i * 3 + 2]);
    REQUIRE(log);
    CHECK(*log.value->message == e.message);
    CHECK(log.value->seq == static_cast<std::uint64_t>(i * 3 + 2));
  }
}

TEST_CASE("the decoder turns hostile lines into errors, never crashes") {
  const std::string deep_array = std::string(100'000, '[') + std::string(100'000, ']');
  const std::string deep_object = [] {
    std::string s = R"({"event_type":"log","run_id":"r","x":)";
    for (int i = 0; i < 5000; ++i) s += R"({"a":)";
    s += "1";
    for (int i = 0; i < 5000; ++i) s += "}";
    return s + "}";
  }();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty line"},
      {"   ", "malformed JSON"},
      {"{", "malformed JSON"},
      {"[]", "not a JSON object"},
      {"42", "not a JSON object"},
      {"{\"event_type\":\"log\"}", "missing run_id"},
      {"{\"run_id\":\"r\"}", "missing event_type"},
      {"{\"event_type\":\"warp\",\"run_id\":\"r\"}", "unknown event_type"},
      {"{\"event_type\":\"log\",\"run_id\":\"r\",\"seq\":-1}", "seq"},
      {"{\"event_type\":\"log\",\"run_id\":\"r\",\"message\":5}", "message"},
      {"{\"event_type\":\"metrics\",\"run_id\":\"r\",\"metrics\":{\"a\":\"x\"}}", "metrics"},
      {"{\"event_type\":\"progress\",\"run_id\":\"r\",\"progress_pct\":1e400}", "malformed JSON"},
      {"{\"event_type\":\"log\",\"run_id\":\"r\",\"message\":\"\\ud800\"}", "malformed JSON"},
      {"{\"event_type\":\"log\",\"run_id\":\"r\",\"message\":\"\xFF\"}", "malformed JSON"},
      {std::string("{\"event_type\":\"log\",\"run_id\":\"r\"\0}", 35), "malformed JSON"},
      {"{\"event_type\":\"log\",\"run_id\":\"r\",\"message\":\"a\nb\"}", "malformed JSON"},
      {"{\"event_type\":\"log\",\"run_id\":\"r\"} trailing", "malformed JSON"},
      {"{\"event_type\":\"log\",\"run_id\":\"r\",\"step\":123456789012345678901234567890}", "step"},
      {deep_array, "nested deeper"},
      {deep_object, "nested deeper"},
      {std::string(2 << 20, ' '), "over the cap"},
  };
  for (const auto& [line, expected_error] : cases) {
    CAPTURE(line.substr(0, 80));
    const auto result = fe::decode_line(line);
    CHECK_FALSE(result);
    CHECK_MESSAGE(result.error.find(expected_error) != std::string::npos, result.error);
  }
}

TEST_CASE("the decoder accepts what the wire format allows") {
  SUBCASE("a UTF-8 byte order mark, CRLF, unknown fields and seed-style lines") {
    const auto bom = fe::decode_line("\xEF\xBB\xBF{\"event_type\":\"heartbeat\",\"run_id\":\"r\"}\r\n");
    CHECK_MESSAGE(bom, bom.error);
    const auto seed = fe::decode_line(
        R"({"event_type": "progress", "stage": "ranking", "progress_pct": 0, "current_target": null,)"
        R"( "targets_complete": 0, "targets_total": 0, "run_id": "r1", "timestamp": "2026-01-21T10:00:00.123456+00:00",)"
        R"( "future_field": {"x": [1, 2]}})");
    REQUIRE_MESSAGE(seed, seed.error);
    CHECK(seed.value->type == fe::event_type::progress);
    CHECK(*seed.value->progress_pct == 0.0);
    CHECK_FALSE(seed.value->current_target.has_value());
    CHECK(seed.value->unix_us == 1768989600123456);
  }
  SUBCASE("timestamps in other offsets and without fractions") {
    CHECK(fe::parse_timestamp_us("1970-01-01T00:00:00+00:00") == 0);
    CHECK(fe::parse_timestamp_us("1970-01-01T01:00:00+01:00") == 0);
    CHECK(fe::parse_timestamp_us("1970-01-01T00:00:01.5Z") == 1'500'000);
    CHECK_FALSE(fe::parse_timestamp_us("yesterday").has_value());
    CHECK_FALSE(fe::parse_timestamp_us("2026-13-01T00:00:00Z").has_value());
  }
}
