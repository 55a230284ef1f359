// The single-pass decoder against the DOM decoder it replaced (support/reference_decoder.hpp,
// nlohmann::ordered_json) and nlohmann::json::accept: over mutated emitter lines, the same lines
// must be accepted, with the same events, and rejected with the same error; plus the JSON edges.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "foxml/events.hpp"
#include "support/reference_decoder.hpp"

namespace fe = foxml::events;

namespace {

bool same_number(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) || (a == b && std::signbit(a) == std::signbit(b));
}
bool same_number(const std::optional<double>& a, const std::optional<double>& b) {
  return a.has_value() == b.has_value() && (!a || same_number(*a, *b));
}

// Field by field; returns the first difference, empty when there is none.
std::string difference(const fe::event& a, const fe::event& b) {
#define FOXML_SAME(member) \
  if (!(a.member == b.member)) return #member
#define FOXML_SAME_NUMBER(member) \
  if (!same_number(a.member, b.member)) return #member
  FOXML_SAME(type); FOXML_SAME(run_id); FOXML_SAME(timestamp); FOXML_SAME(unix_us); FOXML_SAME(seq);
  FOXML_SAME(pid); FOXML_SAME(host); FOXML_SAME(rank); FOXML_SAME(world_size); FOXML_SAME(local_rank); FOXML_SAME(truncated);
  FOXML_SAME(name); FOXML_SAME(stage); FOXML_SAME(current_target); FOXML_SAME(previous_stage);
  FOXML_SAME(new_stage); FOXML_SAME(target); FOXML_SAME(status); FOXML_SAME(level); FOXML_SAME(message);
  FOXML_SAME(error_message); FOXML_SAME(error_type);
  FOXML_SAME_NUMBER(progress_pct); FOXML_SAME_NUMBER(best_auc); FOXML_SAME_NUMBER(duration_s);
  FOXML_SAME_NUMBER(cpu_pct);
  FOXML_SAME_NUMBER(process_start_time); FOXML_SAME_NUMBER(heartbeat_interval_s); FOXML_SAME(stale_after_heartbeats);
  FOXML_SAME(targets_complete); FOXML_SAME(targets_total); FOXML_SAME(step); FOXML_SAME(total_steps);
  FOXML_SAME(epoch); FOXML_SAME(total_epochs); FOXML_SAME(models_trained); FOXML_SAME(rss_bytes);
  FOXML_SAME(mem_used_bytes); FOXML_SAME(mem_total_bytes); FOXML_SAME(count); FOXML_SAME(first_seq);
  FOXML_SAME(last_seq); FOXML_SAME(recoverable); FOXML_SAME(config_json); FOXML_SAME(tags);
#undef FOXML_SAME
#undef FOXML_SAME_NUMBER
  if (a.metrics.has_value() != b.metrics.has_value()) return "metrics";
  if (a.metrics) {
    if (a.metrics->size() != b.metrics->size()) return "metrics size";
    for (std::size_t i = 0; i < a.metrics->size(); ++i) {
      if ((*a.metrics)[i].first != (*b.metrics)[i].first) return "metric name";
      if (!same_number((*a.metrics)[i].second, (*b.metrics)[i].second)) return "metric value";
    }
  }
  if (a.gpus.has_value() != b.gpus.has_value()) return "gpus";
  if (a.gpus) {
    if (a.gpus->size() != b.gpus->size()) return "gpus size";
    for (std::size_t i = 0; i < a.gpus->size(); ++i) {
      const auto &x = (*a.gpus)[i], &y = (*b.gpus)[i];
      if (x.index != y.index || x.name != y.name || !same_number(x.util_pct, y.util_pct) ||
          x.mem_used_bytes != y.mem_used_bytes || x.mem_total_bytes != y.mem_total_bytes ||
          !same_number(x.temperature_c, y.temperature_c) || !same_number(x.power_w, y.power_w)) {
        return "gpu";
      }
    }
  }
  return {};
}

// Decodes `line` both ways and checks they agree; returns whether it was accepted.
bool check_agrees(const std::string& line, const fe::decode_limits& limits = {}) {
  const auto ours = fe::decode_line(line, limits);
  const auto theirs = reference::decode_line(line, limits);
  CAPTURE(line);
  REQUIRE_MESSAGE(ours.value.has_value() == theirs.value.has_value(), ours.error, " / ", theirs.error);
  if (ours) {
    CHECK_MESSAGE(nlohmann::json::accept(line), "accepted what nlohmann rejects");
    const std::string diff = difference(*ours.value, *theirs.value);
    CHECK_MESSAGE(diff.empty(), diff);
  } else {
    CHECK(ours.error == theirs.error);
  }
  return ours.value.has_value();
}

std::vector<std::string> emitter_seed_lines() {
  auto out = std::make_unique<fe::memory_sink>();
  auto store = out->store();
  {
    fe::training_event_emitter emitter("run-\xE2\x82\xAC-7", std::move(out));
    const std::string_view tags[] = {"example", "t\xC3\xA9st"};
    fe::run_start_info start;
    start.name = "demo";
    start.config_json = R"({"lr":0.05,"layers":[64,32],"opt":{"name":"adam","betas":[0.9,0.999]},"x":null})";
    start.tags = tags;
    start.tag_count = 2;
    start.total_steps = 600;
    emitter.emit_run_start(start);
    emitter.emit_stage_change(std::nullopt, "training");
    fe::progress_update p;
    p.stage = "training";
    p.progress_pct = 12.5;
    p.current_target = "y\"1\"";
    p.step = 7;
    p.epoch = 1;
    emitter.emit_progress(p);
    emitter.emit_metrics(7, {{"loss", 0.123456789}, {"acc", 0.5}, {"lr", 1e-4}, {"nan", std::nan("")}});
    emitter.emit_log("info", "line\nwith \\ escapes \x01 and \xF0\x9F\x98\x80");
    const fe::gpu_sample gpus[] = {{0, "H100", 93.5, 1 << 30, 80ll << 30, 61.0, 250.0}, {1, "H100", std::nullopt, 0, 1, std::nullopt}};
    fe::resource_sample r;
    r.cpu_pct = 250.0;
    r.rss_bytes = 123456789;
    r.gpus = gpus;
    r.gpu_count = 2;
    emitter.emit_resources(r);
    const fe::metric extra[] = {{"f1", 0.75}};
    fe::target_result t;
    t.target = "y";
    t.best_auc = 0.91;
    t.metrics = extra;
    t.metric_count = 1;
    emitter.emit_target_complete(t);
    emitter.emit_error("boom", "RuntimeError", false);
    emitter.emit_heartbeat();
    emitter.emit_run_complete("success", 12.25);
    emitter.close();
  }
  auto lines = store->lines();
  // Hand-written lines for what the emitter never writes: whitespace, BOM, unknown and repeated keys.
  lines.insert(lines.end(), {
      "\xEF\xBB\xBF { \"event_type\" : \"dropped\" ,\"run_id\":\"r\",\"count\":3,\"first_seq\":1,\"last_seq\":3 }\r\n",
      R"({"event_type":"log","run_id":"r","level":"w","message":"a","message":"b","future":{"x":[1,{"y":[]}]}})",
      R"({"event_type":"metrics","run_id":"r","step":1.0,"metrics":{"a":1,"b":"Infinity","a":-0.0,"c":"-Infinity"}})",
      R"({"event_type":"run_complete","run_id":"r","status":"ok","duration_s":null,"seq":18446744073709551615})",
      R"({"event_type":"error","run_id":"r","error_message":"\u00e9\ud83d\ude00\/","error_type":"E","recoverable":null})",
      R"({"event_type":"resources","run_id":"r","cpu_pct":"NaN","gpus":[{"index":2.0,"name":"A","name":3,"util_pct":1e2}]})",
      R"({"event_type":"heartbeat","run_id":"r","truncated":true,"pid":-5,"rank":1e1,"world_size":-0,"local_rank":2.0})",
  });
  return lines;
}

std::string mutate(std::string s, std::mt19937_64& rng, const std::vector<std::string>& pool) {
  using namespace std::string_view_literals;
  static const std::string_view inserts[] = {
      "\""sv, "\\"sv, "\0"sv, "\x80"sv, "\xC0"sv, "\xED\xA0\x80"sv, "{"sv, "["sv, "}"sv, "]"sv, ","sv, ":"sv,
      "0"sv, "1"sv, "9"sv, "e"sv, "E"sv, "-"sv, "+"sv, "."sv, " "sv, "\t"sv, "\\u"sv, "\\ud800"sv, "\\udc00"sv,
      "\\u0041"sv, "null"sv, "true"sv, "1e400"sv, "\xEF\xBB\xBF"sv, "\xF4\x90\x80\x80"sv, "\xC3\xA9"sv,
      "\x7F"sv, "\x1F"sv, "\n"sv};
  static const char* members[] = {
      R"("message":null,)", R"("message":1,)", R"("seq":-0,)", R"("seq":1.0,)", R"("seq":9223372036854775808,)",
      R"("step":9223372036854775808,)", R"("step":-9223372036854775809,)", R"("step":8999999999999999.0,)",
      R"("pid":1e3,)", R"("pid":"1",)", R"("host":null,)", R"("timestamp":5,)", R"("truncated":null,)",
      R"("metrics":{"a":"x","a":2},)", R"("metrics":[],)", R"("tags":["a",1],)", R"("tags":null,)",
      R"("gpus":[{"index":"x","temperature_c":"NaN"}],)", R"("gpus":[1],)", R"("config":{"b":1,"a":[1.5e3,-0]},)",
      R"("config":"x",)", R"("event_type":"warp",)", R"("event_type":1,)", R"("run_id":null,)", R"("progress_pct":1e-400,)",
      R"("progress_pct":"Infinity",)", R"("progress_pct":"inf",)", R"("recoverable":0,)", R"("x\u0041":[[[]]],)",
      R"("event\u005ftype":"log",)", R"("best_auc":-1.5E-3,)", R"("count":18446744073709551616,)"};
  const int rounds = 1 + static_cast<int>(rng() % 3);
  for (int r = 0; r < rounds && !s.empty(); ++r) {
    const std::size_t at = rng() % (s.size() + 1);
    switch (rng() % 8) {
      case 0: if (at < s.size()) s[at] = static_cast<char>(rng()); break;
      case 1: {
        const std::string_view piece = inserts[rng() % std::size(inserts)];
        s.insert(at, piece.data(), piece.size());
        break;
      }
      case 2: s.erase(at, rng() % 8); break;
      case 3: s.resize(at); break;
      case 4: {  // duplicate a fragment elsewhere
        const std::size_t from = rng() % s.size(), len = 1 + rng() % 24;
        s.insert(rng() % (s.size() + 1), s.substr(from, len));
        break;
      }
      case 5: {  // a whole member after the opening brace: valid JSON, other types, repeated keys
        const auto brace = s.find('{');
        if (brace != std::string::npos) s.insert(brace + 1, members[rng() % std::size(members)]);
        break;
      }
      case 6: {  // splice a piece of another line
        const std::string& other = pool[rng() % pool.size()];
        const std::size_t from = rng() % other.size();
        s.insert(at, other.substr(from, rng() % 40));
        break;
      }
      default: {  // a digit run or a quote somewhere a value starts
        const auto colon = s.find(':', at);
        if (colon != std::string::npos) s.insert(colon + 1, rng() % 2 ? "0" : "\"");
        break;
      }
    }
  }
  return s;
}

}  // namespace

TEST_CASE("mutated emitter lines: decode_line agrees with the DOM decoder and nlohmann::accept") {
  const auto seeds = emitter_seed_lines();
  REQUIRE(seeds.size() >= 15);
  for (const auto& line : seeds) CHECK_MESSAGE(check_agrees(line), line);

  std::mt19937_64 rng(0x5EED'F0C5);
  constexpr int cases = 60'000;
  int accepted = 0;
  for (int i = 0; i < cases; ++i) {
    const std::string line = mutate(seeds[rng() % seeds.size()], rng, seeds);
    const bool ok = check_agrees(line);
    accepted += ok;
  }
  MESSAGE(accepted << " of " << cases << " mutated lines were still valid events");
  CHECK(accepted > cases / 20);  // the mutations must not only produce garbage
  CHECK(accepted < cases);
}

// Checked on their own: added to the seeds or mutations, they would change the mutated stream.
TEST_CASE("GPU readings a device does not offer: both decoders leave them empty") {
  CHECK(check_agrees(R"({"event_type":"resources","run_id":"r","gpus":[{"util_pct":"x","power_w":null},{"power_w":"Infinity","util_pct":null},{"power_w":7.5}]})"));
  const auto decoded = fe::decode_line(R"({"event_type":"resources","run_id":"r","gpus":[{"index":1,"power_w":7.5}]})");
  REQUIRE(decoded);
  REQUIRE(decoded.value->gpus->size() == 1);
  CHECK(decoded.value->gpus->front().power_w == 7.5);
  CHECK_FALSE(decoded.value->gpus->front().util_pct.has_value());
}

TEST_CASE("a tight depth cap: same verdicts and errors at every cap") {
  const auto seeds = emitter_seed_lines();
  std::mt19937_64 rng(7);
  for (std::size_t cap = 0; cap <= 4; ++cap) {
    fe::decode_limits limits;
    limits.max_depth = cap;
    for (int i = 0; i < 2000; ++i) check_agrees(mutate(seeds[rng() % seeds.size()], rng, seeds), limits);
  }
}

namespace {

// A log event with `members` appended, decoded by both decoders (which must agree).
fe::decode_result log_with(const std::string& members) {
  const std::string line = R"({"event_type":"log","run_id":"r")" + (members.empty() ? "" : "," + members) + "}";
  check_agrees(line);
  return fe::decode_line(line);
}

std::string message_of(const std::string& json_string) {
  const auto r = log_with(R"("message":)" + json_string);
  REQUIRE_MESSAGE(r, r.error);
  return *r.value->message;
}

double pct_of(const std::string& number) {
  const auto r = log_with(R"("progress_pct":)" + number);
  REQUIRE_MESSAGE(r, r.error);
  return *r.value->progress_pct;
}

}  // namespace

TEST_CASE("strings: every escape, surrogate pairs, UTF-8 checks") {
  CHECK(message_of(R"("\"\\\/\b\f\n\r\t")") == "\"\\/\b\f\n\r\t");
  CHECK(message_of(R"("\u0041\u00e9\u20AC\u0000x")") == std::string("A\xC3\xA9\xE2\x82\xAC\0x", 8));
  CHECK(message_of(R"("\ud83d\ude00")") == "\xF0\x9F\x98\x80");
  CHECK(message_of(R"("\uDBFF\uDFFF")") == "\xF4\x8F\xBF\xBF");
  CHECK(message_of("\"\xF0\x9F\x98\x80 \xE2\x82\xAC \xC3\xA9 \x7F\"") == "\xF0\x9F\x98\x80 \xE2\x82\xAC \xC3\xA9 \x7F");
  CHECK(message_of("\"" + std::string(100, 'a') + "\\n" + std::string(40, 'b') + "\"") ==
        std::string(100, 'a') + "\n" + std::string(40, 'b'));
  for (const char* bad : {R"("\ud800")", R"("\udc00")", R"("\udc00\ud800")", R"("\ud800x")", R"("\ud800\u0041")",
                          R"("\ud800\n")", R"("\u12")", R"("\u12g4")", R"("\x")", R"("\')", "\"a\x01\"", "\"a\tb\"",
                          "\"\xC0\x80\"", "\"\xC1\xBF\"", "\"\xE0\x80\x80\"", "\"\xF0\x80\x80\x80\"", "\"\xED\xA0\x80\"",
                          "\"\xED\xBF\xBF\"", "\"\xF4\x90\x80\x80\"", "\"\xF5\x80\x80\x80\"", "\"\x80\"", "\"\xBF\"",
                          "\"\xC3\"", "\"\xE2\x82\"", "\"\xFF\"", "\"abc", "\"abc\\"}) {
    CAPTURE(bad);
    const auto r = log_with(std::string(R"("message":)") + bad);
    CHECK_FALSE(r);
    CHECK(r.error.rfind("malformed JSON", 0) == 0);
  }
  const auto nul = log_with(std::string("\"message\":\"a\0b\"", 16));
  CHECK_FALSE(nul);
  // Keys are unescaped before they are matched, as nlohmann does.
  const auto escaped_key = log_with(R"("mess\u0061ge":"hi")");
  REQUIRE(escaped_key);
  CHECK(*escaped_key.value->message == "hi");
}

TEST_CASE("numbers at the edges") {
  CHECK(pct_of("1e308") == 1e308);
  CHECK(pct_of("5e-324") == 5e-324);
  CHECK(pct_of("1.7976931348623157e308") == 1.7976931348623157e308);
  CHECK(pct_of("1e-400") == 0.0);
  CHECK(std::signbit(pct_of("-1e-400")));
  CHECK(std::signbit(pct_of("-0.0")));
  CHECK_FALSE(std::signbit(pct_of("-0")));  // an integer to nlohmann, so +0.0 as a double
  CHECK(pct_of("0.1") == 0.1);
  CHECK(pct_of("123456789012345678901234567890") == 123456789012345678901234567890.0);
  CHECK(std::isnan(pct_of("\"NaN\"")));
  CHECK(pct_of("\"-Infinity\"") == -std::numeric_limits<double>::infinity());
  for (const char* bad : {"1e309", "-1e309", "1.7976931348623159e308", "01", "-01", "1.", ".5", "+1", "-", "1e", "1e+",
                          "0x10", "NaN", "Infinity", "inf", "1.5.2", "--1", "1e5.5", "00"}) {
    CAPTURE(bad);
    CHECK_FALSE(log_with(std::string(R"("progress_pct":)") + bad));
  }
  CHECK(log_with(R"("progress_pct":"inf")").error == "field 'progress_pct' has the wrong type (string)");

  const auto seq = [](const char* v) { return log_with(std::string(R"("seq":)") + v); };
  CHECK(seq("9223372036854775808").value->seq == 9223372036854775808ull);
  CHECK(seq("18446744073709551615").value->seq == UINT64_MAX);
  for (const char* bad : {"18446744073709551616", "-0", "-1", "1.0", "1e2", "\"1\"", "null"}) {
    CAPTURE(bad);
    CHECK(seq(bad).error == "seq is not a non-negative integer");
  }
  const auto step = [](const char* v) { return log_with(std::string(R"("step":)") + v); };
  CHECK(*step("9223372036854775807").value->step == INT64_MAX);
  CHECK(*step("-9223372036854775808").value->step == INT64_MIN);
  CHECK(*step("1e3").value->step == 1000);
  CHECK(*step("-8999999999999999.0").value->step == -8999999999999999);
  CHECK_FALSE(step("null").value->step.has_value());
  for (const char* bad : {"9223372036854775808", "-9223372036854775809", "1.5", "9e15", "\"1\"", "true"}) {
    CAPTURE(bad);
    CHECK(step(bad).error.find("field 'step' has the wrong type") == 0);
  }
  CHECK(log_with(R"("pid":18446744073709551615)").error == "pid is not an integer");
}

TEST_CASE("structure: whitespace, BOM, trailing bytes, depth, repeated keys") {
  const auto spaced = fe::decode_line(
      " \t\r\n{ \t\r\n\"event_type\" \t\r\n: \t\r\n\"metrics\" \t\r\n, \"run_id\"\n:\"r\" , \"metrics\" : { \"a\" : 1 , "
      "\"b\"\t:\t[ ][0] } , \"step\" : 2 } \t\r\n");
  CHECK_FALSE(spaced);  // a stray [0] after the array
  check_agrees(" \t\r\n{ \t\r\n\"event_type\" \t\r\n: \t\r\n\"metrics\" \t\r\n, \"run_id\"\n:\"r\" , \"metrics\" : "
               "{ \"a\" : 1 , \"b\"\t:\t-2.5e0 } , \"step\" : 2 , \"x\" : [ { } , [ ] , { \"y\" : [ null ] } ] } \t\r\n");
  const auto ok = fe::decode_line("\xEF\xBB\xBF {\"event_type\":\"log\",\"run_id\":\"r\",\"message\":\"m\"}\r\n");
  REQUIRE_MESSAGE(ok, ok.error);
  CHECK(*ok.value->message == "m");
  for (const std::string bad : {" \xEF\xBB\xBF{\"event_type\":\"log\",\"run_id\":\"r\"}",
                                "\xEF\xBB\xBF\xEF\xBB\xBF{\"event_type\":\"log\",\"run_id\":\"r\"}",
                                "\xEF\xBB{\"event_type\":\"log\",\"run_id\":\"r\"}", "\xEF\xBB\xBF",
                                "{\"event_type\":\"log\",\"run_id\":\"r\"}}", "{\"event_type\":\"log\",\"run_id\":\"r\"},",
                                "{\"event_type\":\"log\",\"run_id\":\"r\",}", "{\"event_type\":\"log\" \"run_id\":\"r\"}",
                                "{\"event_type\":\"log\",\"run_id\":\"r\"} x", "{'event_type':'log'}"}) {
    CAPTURE(bad);
    check_agrees(bad);
    CHECK_FALSE(fe::decode_line(bad));
  }
  // The top-level object is level 1: 31 more levels of unknown value fit under the default cap.
  const auto nested = [](int levels) { return log_with(R"("x":)" + std::string(levels, '[') + std::string(levels, ']')); };
  CHECK(nested(31));
  CHECK(nested(32).error == "nested deeper than 32 levels");
  const std::string deep = R"({"event_type":"log","run_id":"r","x":)" + std::string(100'000, '{');
  CHECK(fe::decode_line(deep).error == "nested deeper than 32 levels");
  // Repeated keys: the last value wins, at the position of the first (ordered_json's rule).
  CHECK(*log_with(R"("message":"a","message":"b")").value->message == "b");
  CHECK(log_with(R"("message":5,"message":"b")"));
  CHECK_FALSE(log_with(R"("message":"a","message":null)").value->message.has_value());
  CHECK(log_with(R"("message":"a","message":5)").error == "field 'message' has the wrong type (number)");
  CHECK(log_with(R"("step":"x","message":5,"step":true)").error == "field 'step' has the wrong type (boolean)");
  const auto metrics = log_with(R"("metrics":{"b":1,"a":2,"b":"x","c":3,"b":4})");
  REQUIRE(metrics);
  const std::vector<std::pair<std::string, double>> merged = {{"b", 4}, {"a", 2}, {"c", 3}};
  CHECK(*metrics.value->metrics == merged);
  const auto config = log_with(R"("config" : { "b" : [ 1 , 2.50 , -0 , 1E2 ] , "a" : {"b":1,"b":2} , "s":"\u00e9" })");
  REQUIRE(config);
  CHECK(*config.value->config_json == "{\"b\":[1,2.5,0,100.0],\"a\":{\"b\":2},\"s\":\"\xC3\xA9\"}");
}
