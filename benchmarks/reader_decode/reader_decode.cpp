// Reader-side decode throughput on the same emitter lines, in one binary so every peer sees the
// same machine: foxml::events::decode_line (per line, and over one read buffer split at '\n'),
// simdjson 3 On-Demand (per line, and iterate_many over the buffer) and simdjson's validating DOM
// parser landing the same fields in the same fe::event, the DOM parse alone (no fields), and
// nlohmann::json::parse (DOM). Key lookup is
// the decoder's own (detail::lookup_field) for every variant that fills an event, so the figures
// compare parsing, not key matching. After the Google Benchmark output, one table gives lines/s
// and each variant's ratio to decode_line, all from this run.
// Usage: reader_decode [--benchmark_* flags]
#include <benchmark/benchmark.h>
#include <simdjson.h>

#include <cstdio>
#include <foxml/events.hpp>
#include <map>
#include <type_traits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "decode_fields.hpp"  // detail::lookup_field, the decoder's key map (internal header)

namespace fe = foxml::events;

namespace {

// A mix like a training loop's: progress, metrics with 4 scalars, stage changes and logs, written
// by the real emitter so the lines carry every header field in wire order.
const std::vector<std::string>& emitter_lines() {
  static const std::vector<std::string> lines = [] {
    auto out = std::make_unique<fe::memory_sink>();
    auto store = out->store();
    {
      fe::training_event_emitter emitter("bench-run-1795438758", std::move(out));
      std::mt19937_64 rng(42);
      std::uniform_real_distribution<double> unit(0.0, 1.0);
      const char* stages[] = {"dataset_loading", "training", "evaluation"};
      for (int i = 0; i < 1024; ++i) {
        switch (i % 4) {
          case 0: {
            fe::progress_update p;
            p.stage = "training";
            p.progress_pct = unit(rng) * 100.0;
            p.step = i;
            p.total_steps = 4096;
            p.epoch = i / 256;
            p.total_epochs = 4;
            emitter.emit_progress(p);
            break;
          }
          case 1:
            emitter.emit_metrics(i, {{"loss", unit(rng) * 5.0}, {"accuracy", unit(rng)}, {"lr", 0.05},
                                     {"grad_norm", unit(rng) * 10.0}});
            break;
          case 2: emitter.emit_stage_change(stages[(i / 4) % 3], stages[(i / 4 + 1) % 3]); break;
          default: emitter.emit_log("info", "step " + std::to_string(i) + " done, loss went down nicely"); break;
        }
      }
      emitter.close();
    }
    return store->lines();
  }();
  return lines;
}

template <class Decode>
void run_over_lines(benchmark::State& state, Decode decode) {
  const auto& lines = emitter_lines();
  std::size_t i = 0, bytes = 0;
  for (auto _ : state) {
    const std::string& line = lines[i];
    decode(line);
    bytes += line.size();
    i = (i + 1 == lines.size()) ? 0 : i + 1;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}

void bm_decode_line(benchmark::State& state) {
  run_over_lines(state, [&state](const std::string& line) {
    auto result = fe::decode_line(line);
    if (!result) state.SkipWithError(result.error.c_str());
    benchmark::DoNotOptimize(result);
  });
}

void bm_nlohmann_parse(benchmark::State& state) {
  run_over_lines(state, [](const std::string& line) {
    auto doc = nlohmann::json::parse(line);
    benchmark::DoNotOptimize(doc);
  });
}

// Every line joined with '\n', as one read() of a followed file hands them over.
const std::string& joined_lines() {
  static const std::string joined = [] {
    std::string out;
    for (const auto& line : emitter_lines()) out.append(line).push_back('\n');
    return out;
  }();
  return joined;
}

void bm_decode_buffer(benchmark::State& state) {
  const std::string& buffer = joined_lines();
  for (auto _ : state) {
    std::string_view rest = buffer;
    while (!rest.empty()) {
      const auto nl = rest.find('\n');
      auto result = fe::decode_line(rest.substr(0, nl));
      if (!result) state.SkipWithError(result.error.c_str());
      benchmark::DoNotOptimize(result);
      rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * emitter_lines().size()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * buffer.size()));
}

// ---- simdjson On-Demand: the same fields into the same fe::event -------------------------------
namespace od = simdjson::ondemand;
using fe::detail::field;
using fe::field_kind;

bool sj_string(od::value v, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s)) return false;
  out.assign(s);
  return true;
}
bool sj_integer(od::value v, std::int64_t& out) {
  if (!v.get_int64().get(out)) return true;
  double d;  // 5.0 from a producer that only has floats, as the decoder takes it
  if (v.get_double().get(d) || d != static_cast<double>(static_cast<std::int64_t>(d))) return false;
  out = static_cast<std::int64_t>(d);
  return true;
}

template <field_kind kind, class T>
bool sj_member(od::value v, std::optional<T>& member) {
  bool null = false;
  if (!v.is_null().get(null) && null) {  // null is every field's "not set", as in decode_line
    member.reset();
    return true;
  }
  if constexpr (kind == field_kind::string) {
    return sj_string(v, member.emplace());
  } else if constexpr (kind == field_kind::number) {
    return !v.get_double().get(member.emplace());
  } else if constexpr (kind == field_kind::integer) {
    return sj_integer(v, member.emplace());
  } else if constexpr (kind == field_kind::boolean) {
    return !v.get_bool().get(member.emplace());
  } else if constexpr (kind == field_kind::metric_map) {
    od::object metrics;
    if (v.get_object().get(metrics)) return false;
    auto& values = member.emplace();
    values.reserve(4);
    for (auto entry : metrics) {
      std::string_view name;
      double d;
      if (entry.unescaped_key().get(name) || entry.value().get_double().get(d)) return false;
      values.emplace_back(std::string(name), d);
    }
    return true;
  } else if constexpr (kind == field_kind::string_list) {
    od::array tags;
    if (v.get_array().get(tags)) return false;
    auto& out = member.emplace();
    for (auto tag : tags) {
      std::string_view s;
      if (tag.get_string().get(s)) return false;
      out.emplace_back(s);
    }
    return true;
  } else {  // config and gpus are not in these lines; skipped like unknown keys
    (void)v;
    (void)member;
    return true;
  }
}

// One document (a line) into `ev`; false on any error simdjson reports.
template <class Document>
bool sj_event(Document& doc, fe::event& ev) {
  od::object object;
  if (doc.get_object().get(object)) return false;
  bool has_type = false, has_run_id = false;
  for (auto member : object) {
    std::string_view key;
    od::value v;
    if (member.unescaped_key().get(key) || member.value().get(v)) return false;
    const field f = fe::detail::lookup_field(key);
    bool ok = true;
    switch (f) {
#define FOXML_EVENTS_SJ_KEY(wire_key, member_name, wire_kind) \
  case field::wire_key: ok = sj_member<field_kind::wire_kind>(v, ev.member_name); break;
      FOXML_EVENTS_WIRE_KEYS(FOXML_EVENTS_SJ_KEY)
#undef FOXML_EVENTS_SJ_KEY
      case field::event_type: {
        std::string_view t;
        ok = !v.get_string().get(t);
        if (ok) {
          const auto type = fe::parse_event_type(t);
          ok = type.has_value();
          if (ok) ev.type = *type;
        }
        has_type = true;
        break;
      }
      case field::run_id: ok = sj_string(v, ev.run_id); has_run_id = true; break;
      case field::timestamp: ok = sj_string(v, ev.timestamp); break;
      case field::host: ok = sj_string(v, ev.host); break;
      case field::seq: ok = !v.get_uint64().get(ev.seq); break;
      case field::pid: ok = sj_integer(v, ev.pid); break;
      case field::rank: ok = sj_integer(v, ev.rank); break;
      case field::world_size: ok = sj_integer(v, ev.world_size); break;
      case field::local_rank: ok = sj_integer(v, ev.local_rank); break;
      case field::truncated: ok = !v.get_bool().get(ev.truncated); break;
      default: break;  // unknown keys: On-Demand skips them without validating
    }
    if (!ok) return false;
  }
  if (!has_type || !has_run_id) return false;
  ev.unix_us = fe::parse_timestamp_us(ev.timestamp).value_or(0);
  // simdjson 3.0.1 has no document::at_end(): content after the object goes unnoticed here (per
  // line), and iterate_many takes it as the next document.
  return true;
}

// Per line: each line copied into a padded buffer first, as a reader holding lines would have to
// (simdjson reads up to SIMDJSON_PADDING bytes past the end).
void bm_simdjson_ondemand_line(benchmark::State& state) {
  od::parser parser;
  std::string padded;
  run_over_lines(state, [&](const std::string& line) {
    padded.assign(line);
    padded.resize(line.size() + simdjson::SIMDJSON_PADDING);
    od::document doc;
    fe::event ev;
    if (parser.iterate(padded.data(), line.size(), padded.size()).get(doc) || !sj_event(doc, ev)) {
      state.SkipWithError("simdjson rejected an emitter line");
    }
    benchmark::DoNotOptimize(ev);
  });
}

// Over the whole buffer: simdjson's own NDJSON path (stage 1 over the batch, then each document).
void bm_simdjson_iterate_many(benchmark::State& state) {
  od::parser parser;
  const simdjson::padded_string buffer(joined_lines());
  for (auto _ : state) {
    od::document_stream stream;
    if (parser.iterate_many(buffer).get(stream)) state.SkipWithError("iterate_many failed");
    std::size_t n = 0;
    for (auto doc : stream) {
      fe::event ev;
      od::document_reference ref;
      if (std::move(doc).get(ref) || !sj_event(ref, ev)) state.SkipWithError("simdjson rejected an emitter line");
      benchmark::DoNotOptimize(ev);
      ++n;
    }
    if (n != emitter_lines().size()) state.SkipWithError("iterate_many saw another number of lines");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * emitter_lines().size()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * joined_lines().size()));
}

// ---- simdjson DOM: validates the whole line first (as strict as decode_line on syntax), then
// the same fields from its tape into the same fe::event.
namespace dom = simdjson::dom;

bool dom_integer(dom::element v, std::int64_t& out) {
  if (!v.get_int64().get(out)) return true;
  double d;
  if (v.get_double().get(d) || d != static_cast<double>(static_cast<std::int64_t>(d))) return false;
  out = static_cast<std::int64_t>(d);
  return true;
}

template <field_kind kind, class T>
bool dom_member(dom::element v, std::optional<T>& member) {
  if (v.is_null()) {
    member.reset();
    return true;
  }
  if constexpr (kind == field_kind::string) {
    std::string_view s;
    if (v.get_string().get(s)) return false;
    member.emplace(s);
    return true;
  } else if constexpr (kind == field_kind::number) {
    return !v.get_double().get(member.emplace());
  } else if constexpr (kind == field_kind::integer) {
    return dom_integer(v, member.emplace());
  } else if constexpr (kind == field_kind::boolean) {
    return !v.get_bool().get(member.emplace());
  } else if constexpr (kind == field_kind::metric_map) {
    dom::object metrics;
    if (v.get_object().get(metrics)) return false;
    auto& values = member.emplace();
    values.reserve(4);
    for (auto [name, value] : metrics) {
      double d;
      if (value.get_double().get(d)) return false;
      values.emplace_back(std::string(name), d);
    }
    return true;
  } else if constexpr (kind == field_kind::string_list) {
    dom::array tags;
    if (v.get_array().get(tags)) return false;
    auto& out = member.emplace();
    for (auto tag : tags) {
      std::string_view s;
      if (tag.get_string().get(s)) return false;
      out.emplace_back(s);
    }
    return true;
  } else {
    (void)member;
    return true;
  }
}

bool dom_event(dom::element doc, fe::event& ev) {
  dom::object object;
  if (doc.get_object().get(object)) return false;
  bool has_type = false, has_run_id = false;
  for (auto [key, v] : object) {
    const field f = fe::detail::lookup_field(key);
    bool ok = true;
    std::string_view s;
    switch (f) {
#define FOXML_EVENTS_DOM_KEY(wire_key, member_name, wire_kind) \
  case field::wire_key: ok = dom_member<field_kind::wire_kind>(v, ev.member_name); break;
      FOXML_EVENTS_WIRE_KEYS(FOXML_EVENTS_DOM_KEY)
#undef FOXML_EVENTS_DOM_KEY
      case field::event_type: {
        ok = !v.get_string().get(s);
        const auto type = ok ? fe::parse_event_type(s) : std::nullopt;
        ok = type.has_value();
        if (ok) ev.type = *type;
        has_type = true;
        break;
      }
      case field::run_id: ok = !v.get_string().get(s); ev.run_id.assign(s); has_run_id = true; break;
      case field::timestamp: ok = !v.get_string().get(s); ev.timestamp.assign(s); break;
      case field::host: ok = !v.get_string().get(s); ev.host.assign(s); break;
      case field::seq: ok = !v.get_uint64().get(ev.seq); break;
      case field::pid: ok = dom_integer(v, ev.pid); break;
      case field::rank: ok = dom_integer(v, ev.rank); break;
      case field::world_size: ok = dom_integer(v, ev.world_size); break;
      case field::local_rank: ok = dom_integer(v, ev.local_rank); break;
      case field::truncated: ok = !v.get_bool().get(ev.truncated); break;
      default: break;
    }
    if (!ok) return false;
  }
  if (!has_type || !has_run_id) return false;
  ev.unix_us = fe::parse_timestamp_us(ev.timestamp).value_or(0);
  return true;
}

void bm_simdjson_dom_line(benchmark::State& state) {
  dom::parser parser;
  run_over_lines(state, [&](const std::string& line) {
    dom::element doc;
    fe::event ev;
    if (parser.parse(line).get(doc) || !dom_event(doc, ev)) state.SkipWithError("simdjson DOM rejected an emitter line");
    benchmark::DoNotOptimize(ev);
  });
}

// simdjson's DOM parser validates the whole line (grammar, numbers, UTF-8) as our decoder does;
// building its tape is the price. Only the parse: no fields are extracted.
void bm_simdjson_dom_validate(benchmark::State& state) {
  simdjson::dom::parser parser;
  run_over_lines(state, [&](const std::string& line) {
    simdjson::dom::element doc;
    if (parser.parse(line).get(doc)) state.SkipWithError("simdjson DOM rejected an emitter line");
    benchmark::DoNotOptimize(doc);
  });
}

BENCHMARK(bm_decode_line);
BENCHMARK(bm_decode_buffer);
BENCHMARK(bm_simdjson_ondemand_line);
BENCHMARK(bm_simdjson_iterate_many);
BENCHMARK(bm_simdjson_dom_line);
BENCHMARK(bm_simdjson_dom_validate);
BENCHMARK(bm_nlohmann_parse);

// Keeps each benchmark's lines/s (the median when repeated) for the ratio table.
class ratio_reporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& run : runs) {
      if (run.error_occurred) continue;
      const bool aggregate = run.run_type == Run::RT_Aggregate;
      if (aggregate && run.aggregate_name != "median") continue;
      const auto it = run.counters.find("items_per_second");
      if (it == run.counters.end()) continue;
      auto& slot = rates_[run.run_name.function_name];
      if (aggregate || slot.first == 0) slot = {it->second.value, aggregate};
      else if (!slot.second) slot.first = std::max(slot.first, it->second.value);
    }
  }
  void print_table() const {
    const auto base = rates_.find("bm_decode_line");
    if (base == rates_.end()) return;
    std::printf("\nDecode, the same %zu emitter lines, lines/s (the median when repeated), ratios from this run\n",
                emitter_lines().size());
    std::printf("\n| %-28s | %14s | %16s |\n|%s|\n", "decoder", "lines/s", "vs decode_line", std::string(66, '-').c_str());
    for (const char* name : {"bm_decode_line", "bm_decode_buffer", "bm_simdjson_ondemand_line", "bm_simdjson_iterate_many",
                             "bm_simdjson_dom_line", "bm_simdjson_dom_validate", "bm_nlohmann_parse"}) {
      const auto it = rates_.find(name);
      if (it == rates_.end()) continue;
      std::printf("| %-28s | %14.0f | %15.2fx |\n", name + 3, it->second.first, it->second.first / base->second.first);
    }
  }

 private:
  std::map<std::string, std::pair<double, bool>> rates_;  // lines/s, from a median
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  ratio_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print_table();
  benchmark::Shutdown();
  return 0;
}
