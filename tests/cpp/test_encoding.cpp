// The wire format of every event type: field names and JSON types as the schema table and
// DESIGN.md say, checked with nlohmann's parser (an independent JSON implementation).
#include <doctest/doctest.h>

#include <cmath>
#include <ctime>
#include <random>
#include <limits>
#include <nlohmann/json.hpp>

#include "foxml/events.hpp"
#include "test_support.hpp"
#include "civil_date.hpp"  // src/: the worker's lock-free date arithmetic

namespace fe = foxml::events;
using nlohmann::json;

namespace {

// Runs `emit` against a fresh emitter with a memory sink and returns every line it produced.
template <class Emit>
std::vector<json> emit_and_parse(Emit emit, fe::emitter_options options = {}) {
  auto out = std::make_unique<fe::memory_sink>();
  auto store = out->store();
  {
    options.host = "test-host";
    options.rank = 1;
    options.world_size = 4;
    fe::training_event_emitter emitter("run-1", std::move(out), options);
    emit(emitter);
    REQUIRE(emitter.close().ok());
  }
  std::vector<json> parsed;
  for (const auto& line : store->lines()) {
    REQUIRE_MESSAGE(json::accept(line), line);
    parsed.push_back(json::parse(line));
  }
  return parsed;
}

bool has_kind(const json& value, fe::field_kind kind) {
  switch (kind) {
    case fe::field_kind::string: return value.is_string();
    case fe::field_kind::number:
      return value.is_number() || value == "NaN" || value == "Infinity" || value == "-Infinity";
    case fe::field_kind::integer: return value.is_number_integer();
    case fe::field_kind::boolean: return value.is_boolean();
    case fe::field_kind::metric_map:
      if (!value.is_object()) return false;
      for (const auto& item : value.items()) {
        if (!has_kind(item.value(), fe::field_kind::number)) return false;
      }
      return true;
    case fe::field_kind::json_object: return value.is_object();
    case fe::field_kind::string_list:
      if (!value.is_array()) return false;
      for (const auto& item : value) {
        if (!item.is_string()) return false;
      }
      return true;
    case fe::field_kind::gpu_list:
      if (!value.is_array()) return false;
      for (const auto& gpu : value) {
        for (const auto& spec : fe::gpu_fields) {
          if (!gpu.contains(spec.key)) {
            if (!spec.optional) return false;
            continue;
          }
          if (!has_kind(gpu[std::string(spec.key)], spec.kind)) return false;
        }
      }
      return true;
  }
  return false;
}

// Checks the header every event carries and the type's fields against the schema table, and that
// no key outside the schema appears.
void check_against_schema(const json& line, fe::event_type type) {
  CAPTURE(line.dump());
  CHECK(line["event_type"] == std::string(fe::to_string(type)));
  CHECK(line["run_id"] == "run-1");
  CHECK(line["timestamp"].is_string());
  CHECK(fe::parse_timestamp_us(line["timestamp"].get<std::string>()).has_value());
  CHECK(line["seq"].is_number_unsigned());
  CHECK(line["pid"] == static_cast<std::int64_t>(getpid()));
  CHECK(line["host"] == "test-host");
  CHECK(line["rank"] == 1);
  CHECK(line["world_size"] == 4);
  std::size_t known = std::size(fe::header_keys);
  for (const auto& spec : fe::fields_of(type)) {
    const std::string key(spec.key);
    if (!line.contains(key)) {
      CHECK_MESSAGE(spec.optional, "missing required field ", key);
      continue;
    }
    ++known;
    const json& value = line[key];
    if (value.is_null()) {
      CHECK_MESSAGE(spec.nullable, "null in non-nullable field ", key);
    } else {
      CHECK_MESSAGE(has_kind(value, spec.kind), "wrong JSON type for ", key);
    }
  }
  CHECK(line.size() == known);
}

}  // namespace

TEST_CASE("every event type encodes with the schema's field names and JSON types") {
  const fe::metric auc_metrics[] = {{"auc", 0.7}, {"logloss", 0.4}};
  const std::string_view tags[] = {"baseline", "cpu"};
  const fe::gpu_sample gpus[] = {{0, "H100", 87.5, 1 << 30, 80LL << 30, 61.0, 312.5},
                                 {1, "H100", 12.0, 1 << 20, 80LL << 30},
                                 {2, "A100 MIG 1g.10gb", std::nullopt, 1 << 20, 10LL << 30}};
  const auto lines = emit_and_parse([&](fe::training_event_emitter& e) {
    fe::run_start_info start;
    start.name = "digits";
    start.config_json = R"({"lr": 0.01, "layers": [64, 32], "nested": {"ok": true}})";
    start.tags = tags;
    start.tag_count = 2;
    start.total_steps = 1000;
    start.total_epochs = 5;
    e.emit_run_start(start);

    fe::progress_update p;
    p.stage = "training";
    p.progress_pct = 42.5;
    p.current_target = "ret_5m";
    p.targets_complete = 3;
    p.targets_total = 10;
    p.step = 425;
    p.total_steps = 1000;
    p.epoch = 2;
    p.total_epochs = 5;
    e.emit_progress(p);

    e.emit_stage_change(std::nullopt, "ranking");
    fe::target_result result;
    result.target = "ret_5m";
    result.status = "success";
    result.models_trained = 4;
    result.best_auc = 0.65;
    result.metrics = auc_metrics;
    result.metric_count = 2;
    e.emit_target_complete(result);
    e.emit_metrics(7, {{"loss", 0.25}, {"accuracy", 0.9}, {"lr", 1e-3}}, 1);
    e.emit_log("info", "hello");
    fe::resource_sample sample;
    sample.cpu_pct = 150.0;
    sample.rss_bytes = 1 << 28;
    sample.mem_used_bytes = 1LL << 33;
    sample.mem_total_bytes = 1LL << 34;
    sample.gpus = gpus;
    sample.gpu_count = 3;
    e.emit_resources(sample);
    e.emit_error("CUDA out of memory", "OutOfMemoryError", false);
    e.emit_heartbeat();
    e.emit_run_complete("success", 12.5);
  });

  const fe::event_type expected[] = {
      fe::event_type::run_start, fe::event_type::progress,  fe::event_type::stage_change,
      fe::event_type::target_complete, fe::event_type::metrics, fe::event_type::log,
      fe::event_type::resources, fe::event_type::error,     fe::event_type::heartbeat,
      fe::event_type::run_complete};
  REQUIRE(lines.size() == std::size(expected));
  for (std::size_t i = 0; i < lines.size(); ++i) {
    check_against_schema(lines[i], expected[i]);
    CHECK(lines[i]["seq"] == i);
  }

  CHECK(lines[0]["config"] == json::parse(R"({"lr": 0.01, "layers": [64, 32], "nested": {"ok": true}})"));
  CHECK(lines[0]["tags"] == json::array({"baseline", "cpu"}));
  CHECK(lines[1]["progress_pct"] == 42.5);
  CHECK(lines[1]["current_target"] == "ret_5m");
  CHECK(lines[1]["step"] == 425);
  CHECK(lines[2]["previous_stage"].is_null());
  CHECK(lines[2]["new_stage"] == "ranking");
  CHECK(lines[3]["best_auc"] == 0.65);
  CHECK(lines[3]["metrics"]["auc"] == 0.7);
  CHECK(lines[4]["metrics"] == json::parse(R"({"loss":0.25,"accuracy":0.9,"lr":0.001})"));
  CHECK(lines[4]["epoch"] == 1);
  CHECK(lines[6]["gpus"][0]["temperature_c"] == 61.0);
  CHECK_FALSE(lines[6]["gpus"][1].contains("temperature_c"));
  CHECK(lines[6]["gpus"][0]["power_w"] == 312.5);
  CHECK_FALSE(lines[6]["gpus"][1].contains("power_w"));
  // A reading the device does not offer is left out of that device only.
  CHECK(lines[6]["gpus"][1]["util_pct"] == 12.0);
  CHECK_FALSE(lines[6]["gpus"][2].contains("util_pct"));
  CHECK(lines[6]["gpus"][2]["mem_total_bytes"] == 10LL << 30);
  CHECK(lines[7]["recoverable"] == false);
  CHECK(lines[9]["duration_s"] == 12.5);
}

TEST_CASE("optional fields are left out and nullable ones written as null") {
  const auto lines = emit_and_parse([](fe::training_event_emitter& e) {
    e.emit_run_start();
    e.emit_progress("ranking", 0.0);
    fe::target_result result;
    result.target = "t";
    e.emit_target_complete(result);
    e.emit_metrics(0, {});
  });
  REQUIRE(lines.size() == 4);
  for (const char* key : {"name", "config", "tags", "total_steps", "total_epochs"}) CHECK_FALSE(lines[0].contains(key));
  CHECK(lines[1]["current_target"].is_null());
  CHECK(lines[1]["progress_pct"] == 0.0);
  CHECK(lines[1].dump().find("\"progress_pct\":0.0") != std::string::npos);
  CHECK_FALSE(lines[1].contains("step"));
  CHECK(lines[2]["best_auc"].is_null());
  CHECK_FALSE(lines[2].contains("metrics"));
  CHECK(lines[3]["metrics"] == json::object());
}

TEST_CASE("non-finite numbers stay valid JSON and come back as non-finite from our decoder") {
  auto out = std::make_unique<fe::memory_sink>();
  auto store = out->store();
  {
    fe::training_event_emitter emitter("run-nan", std::move(out));
    emitter.emit_metrics(1, {{"loss", std::nan("")},
                             {"grad_norm", std::numeric_limits<double>::infinity()},
                             {"floor", -std::numeric_limits<double>::infinity()}});
    emitter.emit_progress("training", std::nan(""));
    REQUIRE(emitter.close().ok());
  }
  const auto lines = store->lines();
  REQUIRE(lines.size() == 2);
  for (const auto& line : lines) CHECK_MESSAGE(json::accept(line), line);
  CHECK(json::parse(lines[0])["metrics"]["loss"] == "NaN");

  const auto metrics = fe::decode_line(lines[0]);
  REQUIRE(metrics);
  CHECK(std::isnan(*metrics.value->metric_value("loss")));
  CHECK(*metrics.value->metric_value("grad_norm") == std::numeric_limits<double>::infinity());
  CHECK(*metrics.value->metric_value("floor") == -std::numeric_limits<double>::infinity());
  const auto progress = fe::decode_line(lines[1]);
  REQUIRE(progress);
  CHECK(std::isnan(*progress.value->progress_pct));
}

TEST_CASE("invalid UTF-8 is repaired and control characters escaped") {
  const std::string broken = std::string("ok \xC3\x28 lone \x80 cut \xE2\x82 surrogate \xED\xA0\x80 overlong \xC0\xAF") +
                             std::string("\0nul\n\t\"q\"\\", 10);
  const auto lines = emit_and_parse([&](fe::training_event_emitter& e) {
    e.emit_log("warning", broken);
    e.emit_metrics(0, {{std::string_view("\xFF\xFE", 2), 1.0}});
  });
  REQUIRE(lines.size() == 2);
  const std::string message = lines[0]["message"];
  CHECK(message.find("ok \xEF\xBF\xBD(") == 0);  // U+FFFD stands where the bad byte was
  CHECK(message.find('\0') != std::string::npos);  // NUL travels escaped (\u0000) and comes back
  CHECK(message.find("\n\t\"q\"\\") != std::string::npos);
  CHECK(lines[1]["metrics"].contains("\xEF\xBF\xBD\xEF\xBF\xBD"));
}

TEST_CASE("an over-long line is shortened and marked, or dropped and counted") {
  fe::emitter_options options;
  options.max_line_bytes = 4096;
  const std::string huge(100'000, 'x');
  std::vector<fe::metric> many;
  std::vector<std::string> names;
  for (int i = 0; i < 2000; ++i) names.push_back("metric_" + std::to_string(i));
  for (const auto& n : names) many.push_back({n, 1.0});

  auto out = std::make_unique<fe::memory_sink>();
  auto store = out->store();
  fe::emitter_stats stats;
  {
    fe::training_event_emitter emitter("run-big", std::move(out), options);
    emitter.emit_log("info", huge);                          // shortened
    emitter.emit_metrics(1, many.data(), many.size());       // cannot fit: dropped
    emitter.emit_log("info", "small");                       // untouched
    REQUIRE(emitter.close().ok());
    stats = emitter.stats();
  }
  const auto lines = store->lines();
  REQUIRE(lines.size() == 3);  // shortened log, small log, and the `dropped` report
  const json shortened = json::parse(lines[0]);
  CHECK(lines[0].size() <= options.max_line_bytes);
  CHECK(shortened["truncated"] == true);
  const std::string text = shortened["message"];
  CHECK(text.rfind("xxxx", 0) == 0);
  CHECK(text.find("[truncated ") != std::string::npos);
  CHECK(json::parse(lines[1])["message"] == "small");
  CHECK_FALSE(json::parse(lines[1]).contains("truncated"));
  const json dropped = json::parse(lines[2]);
  CHECK(dropped["event_type"] == "dropped");
  CHECK(dropped["count"] == 1);
  CHECK(dropped["first_seq"] == 1);
  CHECK(dropped["last_seq"] == 1);
  CHECK(stats.truncated == 1);
  CHECK(stats.dropped_oversize == 1);
}

TEST_CASE("an invalid or pretty-printed config never breaks the line") {
  const auto lines = emit_and_parse([](fe::training_event_emitter& e) {
    fe::run_start_info pretty;
    pretty.config_json = "{\n  \"lr\": 0.1,\n  \"name\": \"a\"\n}";
    e.emit_run_start(pretty);
    fe::run_start_info invalid;
    invalid.config_json = "{lr: NaN}";
    e.emit_run_start(invalid);
    fe::run_start_info array;
    array.config_json = "[1, 2]";
    e.emit_run_start(array);
  });
  REQUIRE(lines.size() == 3);
  CHECK(lines[0]["config"] == json::parse(R"({"lr":0.1,"name":"a"})"));
  CHECK(lines[1]["config"]["_invalid_config"] == "{lr: NaN}");
  CHECK(lines[2]["config"]["_invalid_config"] == "[1, 2]");
}

TEST_CASE("timestamps are ISO 8601 UTC with microseconds and close to the wall clock") {
  const auto before = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const auto lines = emit_and_parse([](fe::training_event_emitter& e) { e.emit_heartbeat(); });
  const auto after = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  REQUIRE(lines.size() == 1);
  const std::string ts = lines[0]["timestamp"];
  CHECK(ts.size() == 32);
  CHECK(ts.substr(26) == "+00:00");
  CHECK(ts[10] == 'T');
  const auto us = fe::parse_timestamp_us(ts);
  REQUIRE(us.has_value());
  // The TSC conversion may be off by its calibration error; a millisecond is far more than that.
  CHECK(*us >= before - 1000);
  CHECK(*us <= after + 1000);
}

TEST_CASE("the config keeps the key order the trainer wrote") {
  auto out = std::make_unique<fe::memory_sink>();
  auto store = out->store();
  {
    fe::training_event_emitter emitter("run-order", std::move(out));
    fe::run_start_info start;
    start.config_json = R"({"zeta": 1, "alpha": {"y": 2, "b": 3}})";
    emitter.emit_run_start(start);
    REQUIRE(emitter.close().ok());
  }
  const auto lines = store->lines();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find(R"("config":{"zeta":1,"alpha":{"y":2,"b":3}})") != std::string::npos);
}

TEST_CASE("a config nested deeper than the reader accepts is written as a marker the reader decodes") {
  // issue 9, defect 11: a run_start nested 32 deep was written as is and refused by decode_line.
  auto nested = [](std::size_t levels) {
    std::string text;
    for (std::size_t i = 1; i < levels; ++i) text += "{\"k\":";
    text += "{\"leaf\":1}";
    text.append(levels - 1, '}');
    return text;
  };
  auto out = std::make_unique<fe::memory_sink>();
  auto store = out->store();
  {
    fe::training_event_emitter emitter("run-1", std::move(out));
    for (std::size_t levels : {fe::max_config_depth, fe::max_config_depth + 1, std::size_t{500}}) {
      const std::string config = nested(levels);  // run_start_info borrows it
      fe::run_start_info info;
      info.config_json = config;
      emitter.emit_run_start(info);
    }
    REQUIRE(emitter.close().ok());
  }
  const auto lines = store->lines();
  REQUIRE(lines.size() == 3);
  for (const auto& line : lines) REQUIRE_MESSAGE(fe::decode_line(line), line.substr(0, 200));
  const auto deepest = fe::decode_line(lines[0]);
  CHECK(json::parse(*deepest.value->config_json) == json::parse(nested(fe::max_config_depth)));
  for (std::size_t i : {1, 2}) {
    const json config = json::parse(*fe::decode_line(lines[i]).value->config_json);
    CHECK(config["_too_deep_config"] == nested(i == 1 ? fe::max_config_depth + 1 : 500));
  }
}

TEST_CASE("the worker's date arithmetic agrees with gmtime_r from 1970 to 2400") {
  // The worker formats dates without gmtime_r (its tzset lock can be held across fork()).
  std::mt19937_64 random(7);
  std::uniform_int_distribution<std::int64_t> seconds(0, 13'569'465'600);  // up to 2400-01-01
  for (int i = 0; i < 200'000; ++i) {
    const std::int64_t t = i < 3 ? std::int64_t{951'782'400} + i * 86'400 : seconds(random);  // 2000-02-29 +-
    const std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    REQUIRE(gmtime_r(&tt, &tm) != nullptr);
    const auto date = fe::detail::civil_from_days(t / 86400);
    REQUIRE(date.year == tm.tm_year + 1900);
    REQUIRE(date.month == static_cast<unsigned>(tm.tm_mon + 1));
    REQUIRE(date.day == static_cast<unsigned>(tm.tm_mday));
    REQUIRE(fe::detail::days_from_civil(date.year, date.month, date.day) == t / 86400);
  }
}
