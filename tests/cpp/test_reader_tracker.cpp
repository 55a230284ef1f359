// The run tracker, checked against the seed's own consumers: the bridge's status endpoint and
// the Rust view's handle_event, both ported here line for line and fed the raw JSON of a stream
// that the real emitter wrote (the seed trainer's sequence, fixtures/seed_run.hpp).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "fixtures/reader_helpers.hpp"
#include "fixtures/seed_run.hpp"
#include "foxml/events/file_sink.hpp"
#include "foxml/events/reader/file_source.hpp"
#include "foxml/events/reader/run_tracker.hpp"

using namespace foxml::events::reader;
using json = nlohmann::json;

namespace {

// seed 004, Part 3: get_training_status() over recent_training_events.
struct seed_bridge {
  std::vector<json> recent;
  std::vector<std::string> recent_lines;
  void add(const std::string& line) {
    recent.push_back(json::parse(line));
    recent_lines.push_back(line);
    if (recent.size() > 50) {
      recent.erase(recent.begin());
      recent_lines.erase(recent_lines.begin());
    }
  }
};

// seed 004, Part 4: TrainingView::handle_event.
struct seed_rust_view {
  bool running = false;
  std::optional<std::string> run_id;
  std::string stage;
  double progress_pct = 0;
  std::optional<std::string> current_target;
  std::int64_t targets_complete = 0, targets_total = 0;
  std::vector<target_summary> completed;

  static std::optional<std::string> opt_str(const json& e, const char* key) {
    return e.contains(key) && e[key].is_string() ? std::optional<std::string>(e[key].get<std::string>()) : std::nullopt;
  }
  void handle(const json& e) {
    const auto type = e["event_type"].get<std::string>();
    if (type == "progress") {
      running = true;
      run_id = e["run_id"].get<std::string>();
      stage = opt_str(e, "stage").value_or("");
      progress_pct = e.value("progress_pct", 0.0);
      current_target = opt_str(e, "current_target");
      targets_complete = e.value("targets_complete", 0);
      targets_total = e.value("targets_total", 0);
    } else if (type == "target_complete") {
      if (auto target = opt_str(e, "target")) {
        target_summary t;
        t.name = *target;
        t.status = opt_str(e, "status").value_or("");
        t.models_trained = e.value("models_trained", 0);
        if (e.contains("best_auc") && e["best_auc"].is_number()) t.best_auc = e["best_auc"].get<double>();
        completed.push_back(t);
      }
    } else if (type == "run_complete") {
      running = false;
      progress_pct = 100.0;
    }
  }
};

std::vector<stream_event> recorded_stream(const reader_test::temp_dir& dir, const char* run_id) {
  const auto path = dir / "seed.jsonl";
  {
    foxml::events::training_event_emitter emitter(run_id, std::make_unique<foxml::events::file_sink>(path));
    reader_test::run_seed_pipeline(emitter);
    REQUIRE(emitter.close().ok());
  }
  file_source src(path);
  event_stream stream;
  std::vector<stream_event> events;
  src.poll(std::chrono::milliseconds(0), [&](const raw_line& l) {
    if (auto e = stream.push(l)) events.push_back(std::move(*e));
  });
  REQUIRE(stream.stats().malformed == 0);
  return events;
}

}  // namespace

TEST_CASE("reproduces the seed bridge's status endpoint at every point of a recorded run") {
  reader_test::temp_dir dir;
  const auto events = recorded_stream(dir, "seed-run-1");
  REQUIRE(events.size() > 20);
  run_tracker tracker;
  seed_bridge bridge;
  for (const auto& e : events) {
    tracker.apply(e.value, e.line);
    bridge.add(e.line);
    const auto status = tracker.training_status();
    const json& latest = bridge.recent.back();
    CAPTURE(e.line);
    CHECK(status.running == (latest["event_type"] != "run_complete"));
    CHECK(status.run_id == latest["run_id"].get<std::string>());
    const std::vector<std::string> last10(bridge.recent_lines.end() - std::min<std::size_t>(10, bridge.recent_lines.size()),
                                          bridge.recent_lines.end());
    CHECK(status.events == last10);
    // The seed reads stage/progress/target off the latest event, so they agree where it is a
    // progress event; elsewhere the tracker keeps the run's values where the seed shows null.
    if (latest["event_type"] == "progress") {
      CHECK(status.stage == latest["stage"].get<std::string>());
      CHECK(status.progress_pct == doctest::Approx(latest["progress_pct"].get<double>()));
      CHECK(status.current_target == seed_rust_view::opt_str(latest, "current_target"));
    }
  }
  CHECK_FALSE(tracker.training_status().running);
}

TEST_CASE("reproduces the seed Rust view's state from a recorded run") {
  reader_test::temp_dir dir;
  const auto events = recorded_stream(dir, "seed-run-2");
  run_tracker tracker;
  seed_rust_view view;
  const auto compare = [&] {
    const run_state* run = tracker.latest();
    REQUIRE(run != nullptr);
    CHECK(run->running() == view.running);
    CHECK(run->run_id == view.run_id);
    CHECK(run->stage == view.stage);
    CHECK(run->progress_pct == doctest::Approx(view.progress_pct));
    CHECK(run->current_target == view.current_target);
    CHECK(run->targets_complete == view.targets_complete);
    CHECK(run->targets_total == view.targets_total);
    REQUIRE(run->completed_targets.size() == view.completed.size());
    for (std::size_t i = 0; i < view.completed.size(); ++i) {
      CHECK(run->completed_targets[i].name == view.completed[i].name);
      CHECK(run->completed_targets[i].status == view.completed[i].status);
      CHECK(run->completed_targets[i].models_trained == view.completed[i].models_trained);
      CHECK(run->completed_targets[i].best_auc == view.completed[i].best_auc);
    }
  };
  for (const auto& e : events) {
    tracker.apply(e.value, e.line);
    view.handle(json::parse(e.line));
    CAPTURE(e.line);
    if (e.value.type == foxml::events::event_type::progress) compare();
  }
  compare();
  const run_state& run = *tracker.latest();
  CHECK(run.status == run_status::completed);
  CHECK(run.completed_targets.size() == reader_test::seed_targets().size());
  CHECK(run.completed_targets[2].status == "failed");
  CHECK_FALSE(run.completed_targets[2].best_auc);
}

TEST_CASE("keeps stage history, metrics, errors and an ETA") {
  reader_test::temp_dir dir;
  const auto events = recorded_stream(dir, "seed-run-3");
  run_tracker_options options;
  options.metric_history = 5;
  run_tracker tracker(options);
  for (const auto& e : events) tracker.apply(e.value, e.line);
  const run_state* run = tracker.find("seed-run-3");
  REQUIRE(run != nullptr);
  std::vector<std::string> stages;
  for (const auto& s : run->stages) {
    stages.push_back(s.name);
    CHECK(s.end_us.has_value());
    CHECK(s.duration_s(0) >= 0);
  }
  CHECK(stages == std::vector<std::string>{"ranking", "feature_selection", "training"});
  REQUIRE(run->metrics.count("loss") == 1);
  CHECK(run->metrics.at("loss").history.size() == 5);
  CHECK(run->metrics.at("loss").latest_step == 11);
  CHECK(run->errors.size() == 1);
  CHECK(run->errors[0].type == "training_error");
  CHECK(run->final_status == "success");
}

TEST_CASE("ETA from the rate of progress, and stale runs") {
  run_tracker tracker;
  foxml::events::event e;
  e.run_id = "r";
  e.type = foxml::events::event_type::progress;
  e.stage = "training";
  for (int i = 0; i <= 4; ++i) {
    e.unix_us = i * 1'000'000;
    e.progress_pct = i * 10.0;  // 10 %/s
    tracker.apply(e);
  }
  REQUIRE(tracker.find("r")->eta_s);
  CHECK(*tracker.find("r")->eta_s == doctest::Approx(6.0));
  tracker.check_stale(4'000'000 + 61'000'000);
  CHECK(tracker.find("r")->status == run_status::stale);
  CHECK(tracker.find("r")->running());
  e.unix_us = 70'000'000;
  tracker.apply(e);
  CHECK(tracker.find("r")->status == run_status::running);
}

TEST_CASE("run_complete statuses and unrecoverable errors") {
  run_tracker tracker;
  foxml::events::event e;
  e.type = foxml::events::event_type::run_complete;
  for (auto [run, status, expected] : {std::tuple{"a", "success", run_status::completed},
                                       std::tuple{"b", "failed", run_status::failed},
                                       std::tuple{"c", "cancelled", run_status::cancelled},
                                       std::tuple{"d", "killed", run_status::failed}}) {
    e.run_id = run;
    e.status = status;
    tracker.apply(e);
    CHECK(tracker.find(run)->status == expected);
  }
  foxml::events::event err;
  err.type = foxml::events::event_type::error;
  err.run_id = "e";
  err.error_message = "CUDA OOM";
  err.recoverable = false;
  tracker.apply(err);
  CHECK(tracker.find("e")->status == run_status::failed);
  CHECK(std::string(to_string(run_status::stale)) == "stale");
}
