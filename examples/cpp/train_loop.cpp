// A small C++ trainer: fits a linear model with SGD and reports what it does through foxml-events.
// Usage: train_loop [EVENTS.jsonl] [--steps-per-epoch N] [--epochs N] [--step-delay-ms N]
#include <foxml/events.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace fe = foxml::events;

int main(int argc, char** argv) {
  std::string path = fe::default_event_file();
  int epochs = 3, steps_per_epoch = 200, delay_ms = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (arg == "--epochs") epochs = next();
    else if (arg == "--steps-per-epoch") steps_per_epoch = next();
    else if (arg == "--step-delay-ms") delay_ms = next();
    else path = arg;
  }
  const std::string run_id = "cpp-linear-" + std::to_string(std::chrono::system_clock::now().time_since_epoch() / std::chrono::seconds(1));
  fe::training_event_emitter emitter(run_id, std::make_unique<fe::file_sink>(path));
  std::printf("run %s: events -> %s\n", run_id.c_str(), path.c_str());

  const std::int64_t total_steps = static_cast<std::int64_t>(epochs) * steps_per_epoch;
  const std::string_view tags[] = {"example", "cpp"};
  fe::run_start_info start;
  start.name = "linear-regression";
  start.config_json = R"({"lr":0.05,"features":8,"batch":32})";
  start.tags = tags;
  start.tag_count = 2;
  start.total_steps = total_steps;
  start.total_epochs = epochs;
  emitter.emit_run_start(start);

  emitter.emit_stage_change(std::nullopt, "dataset_loading");
  std::mt19937 rng(7);
  std::normal_distribution<double> noise(0.0, 0.1);
  const int features = 8, samples = 4096;
  std::vector<double> true_w(features), x(static_cast<std::size_t>(samples) * features), y(samples);
  for (auto& w : true_w) w = noise(rng) * 10;
  for (int s = 0; s < samples; ++s) {
    double dot = 0;
    for (int f = 0; f < features; ++f) {
      x[s * features + f] = noise(rng) * 10;
      dot += x[s * features + f] * true_w[f];
    }
    y[s] = dot + noise(rng);
  }

  emitter.emit_stage_change("dataset_loading", "training");
  std::vector<double> w(features, 0.0);
  const double lr = 0.05;
  std::int64_t step = 0;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    for (int k = 0; k < steps_per_epoch; ++k, ++step) {
      std::vector<double> grad(features, 0.0);
      double loss = 0;
      for (int b = 0; b < 32; ++b) {
        const int s = static_cast<int>(rng() % samples);
        double err = -y[s];
        for (int f = 0; f < features; ++f) err += w[f] * x[s * features + f];
        loss += err * err / 32;
        for (int f = 0; f < features; ++f) grad[f] += 2 * err * x[s * features + f] / 32;
      }
      for (int f = 0; f < features; ++f) w[f] -= lr * grad[f] / 100;
      emitter.emit_metrics(step, {{"loss", loss}, {"lr", lr}}, epoch);
      fe::progress_update p;
      p.stage = "training";
      p.progress_pct = 100.0 * static_cast<double>(step + 1) / static_cast<double>(total_steps);
      p.step = step + 1;
      p.total_steps = total_steps;
      p.epoch = epoch + 1;
      p.total_epochs = epochs;
      emitter.emit_progress(p);
      if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    }
  }
  emitter.emit_stage_change("training", "validation");
  double error = 0;
  for (int f = 0; f < features; ++f) error += std::fabs(w[f] - true_w[f]);
  const fe::metric final_metrics[] = {{"weight_error", error}};
  fe::target_result result;
  result.target = "linear";
  result.status = "success";
  result.models_trained = 1;
  result.metrics = final_metrics;
  result.metric_count = 1;
  emitter.emit_target_complete(result);
  emitter.emit_stage_change("validation", "save_model");
  emitter.emit_run_complete("success");
  const auto report = emitter.close();
  std::printf("%s: %llu events written, %llu dropped\n", fe::to_string(report.status),
              static_cast<unsigned long long>(emitter.stats().written), static_cast<unsigned long long>(report.dropped));
  return report.ok() ? 0 : 1;
}
