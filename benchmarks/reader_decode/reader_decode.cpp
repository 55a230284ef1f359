// Reader-side decode throughput: foxml::events::decode_line against nlohmann::json::parse (DOM) of
// the same emitter lines, in one binary so both see the same machine. Reports items_per_second
// (lines/s). Usage: reader_decode [--benchmark_* flags]
#include <benchmark/benchmark.h>

#include <foxml/events.hpp>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

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

BENCHMARK(bm_decode_line);
BENCHMARK(bm_nlohmann_parse);

}  // namespace

BENCHMARK_MAIN();
