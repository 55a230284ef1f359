// The run tracker, checked against the seed's own consumers: the bridge's status endpoint and
// the Rust view's handle_event, both ported here line for line and fed the raw JSON of a stream
// that the real emitter wrote (the seed trainer's sequence, fixtures/seed_run.hpp).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "fixtures/reader_helpers.hpp"
#include "fixtures/seed_run.hpp"
#include "foxml/events/file_sink.hpp"
#include "foxml/events/reader/file_source.hpp"
#include "foxml/events/reader/run_json.hpp"
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

namespace {

namespace fe = foxml::events;

fe::event make_event(fe::event_type type, const char* run_id, std::int64_t unix_us, std::int64_t rank = 0) {
  fe::event e;
  e.type = type;
  e.run_id = run_id;
  e.unix_us = unix_us;
  e.rank = rank;
  e.host = "host-" + std::to_string(rank);
  return e;
}

fe::event metrics_at(const char* run_id, std::int64_t unix_us, std::int64_t step,
                     std::vector<std::pair<std::string, double>> values) {
  auto e = make_event(fe::event_type::metrics, run_id, unix_us);
  e.step = step;
  e.metrics = std::move(values);
  return e;
}

json run_json(const run_tracker& tracker, const char* run_id, std::int64_t now_us, run_json_options options = {}) {
  return json::parse(to_json(*tracker.find(run_id), now_us, options));
}

}  // namespace

TEST_CASE("run_start's tags, config and time, the lowest rank's host, and elapsed time") {
  run_tracker tracker;
  auto rank1 = make_event(fe::event_type::run_start, "r", 9'000'000, 1);
  rank1.tags = std::vector<std::string>{"rank-one"};
  rank1.config_json = R"({"lr":0.5})";
  tracker.apply(rank1);
  auto start = make_event(fe::event_type::run_start, "r", 10'000'000, 0);
  start.tags = std::vector<std::string>{"digits", "cpu"};
  start.config_json = R"({"lr":0.1,"price_per_hour":2.5,"layers":[64,32]})";
  tracker.apply(start);
  const run_state& run = *tracker.find("r");
  CHECK(run.tags == std::vector<std::string>{"digits", "cpu"});  // the lowest rank's wins
  CHECK(run.host() == "host-0");
  CHECK(run.started_us == 9'000'000);  // the earliest run_start
  CHECK(run.elapsed_s(15'000'000) == doctest::Approx(6.0));  // running: up to now

  json j = run_json(tracker, "r", 15'000'000);
  CHECK(j.at("tags") == json::array({"digits", "cpu"}));
  CHECK(j.at("config") == json::parse(R"({"lr":0.1,"price_per_hour":2.5,"layers":[64,32]})"));
  CHECK(j.at("host") == "host-0");
  CHECK(j.at("started") == 9.0);
  CHECK(j.at("elapsed_s") == doctest::Approx(6.0));
  CHECK(j.at("steps_per_s").is_null());
  CHECK(j.at("logs") == json::array());
  CHECK(j.at("resources").is_null());
  CHECK(j.at("resource_history") == json::object());

  for (std::int64_t rank : {0, 1}) {
    auto end = make_event(fe::event_type::run_complete, "r", 20'000'000 + rank, rank);
    end.status = "success";
    tracker.apply(end);
  }
  CHECK(tracker.find("r")->status == run_status::completed);
  j = run_json(tracker, "r", 99'000'000);
  CHECK(j.at("elapsed_s") == doctest::Approx(11.0));  // ended: up to its run_complete, not now

  // No run_start: no `started`, no tags or config; elapsed from the first event.
  tracker.apply(metrics_at("bare", 1'000'000, 1, {{"loss", 1.0}}));
  j = run_json(tracker, "bare", 4'000'000);
  CHECK(j.at("started").is_null());
  CHECK(j.at("config").is_null());
  CHECK(j.at("tags") == json::array());
  CHECK(j.at("elapsed_s") == doctest::Approx(3.0));
}

TEST_CASE("steps_per_s from the steps of progress and metrics events over the ETA window") {
  run_tracker_options options;
  options.eta_window = std::chrono::seconds(10);
  run_tracker tracker(options);
  // 5 steps/s for 20 s (the metrics of a step twice: counted once), then 1 step/s.
  for (int i = 0; i <= 20; ++i) {
    tracker.apply(metrics_at("r", i * 1'000'000, i * 5, {{"loss", 1.0}}));
    tracker.apply(metrics_at("r", i * 1'000'000 + 500'000, i * 5, {{"val_loss", 1.0}}));
  }
  REQUIRE(tracker.find("r")->steps_per_s);
  CHECK(*tracker.find("r")->steps_per_s == doctest::Approx(5.0).epsilon(0.01));
  // A step's late metrics (an evaluation after it) time the step, not the evaluation.
  tracker.apply(metrics_at("r", 25'000'000, 100, {{"val_acc", 1.0}}));
  CHECK(*tracker.find("r")->steps_per_s == doctest::Approx(5.0).epsilon(0.01));
  for (int i = 21; i <= 40; ++i) {
    auto p = make_event(fe::event_type::progress, "r", i * 1'000'000);
    p.stage = "training";
    p.step = 100 + (i - 20);
    tracker.apply(p);
  }
  CHECK(*tracker.find("r")->steps_per_s == doctest::Approx(1.0).epsilon(0.01));  // the window forgot the fast part
  // A step going back (a new phase) starts the rate afresh; a single sample keeps the last rate.
  tracker.apply(metrics_at("r", 41'000'000, 0, {{"loss", 1.0}}));
  CHECK(*tracker.find("r")->steps_per_s == doctest::Approx(1.0).epsilon(0.01));
  CHECK(run_json(tracker, "r", 41'000'000).at("steps_per_s").get<double>() == doctest::Approx(1.0).epsilon(0.01));
  // Fast steps (a sample kept every window/256 at most, so memory stays bounded): 1000 steps/s.
  for (int i = 1; i <= 30'000; ++i) tracker.apply(metrics_at("r", 41'000'000 + i * 1000, i, {{"loss", 1.0}}));
  CHECK(*tracker.find("r")->steps_per_s == doctest::Approx(1000.0).epsilon(0.01));
}

TEST_CASE("logs: the newest, oldest first, every rank, long messages cut on a UTF-8 boundary") {
  run_tracker_options options;
  options.recent_logs = 3;
  options.max_log_message_bytes = 8;
  run_tracker tracker(options);
  for (int i = 0; i < 5; ++i) {
    auto log = make_event(fe::event_type::log, "r", i * 1'000'000, i % 2);
    log.level = i == 4 ? "warning" : "info";
    log.message = "line " + std::to_string(i);
    tracker.apply(log);
  }
  auto long_log = make_event(fe::event_type::log, "r", 9'000'000);
  long_log.level = "error";
  long_log.message = "abcdef\xc3\xa9\xc3\xa9";  // the cut at 8 bytes falls inside the second é
  tracker.apply(long_log);
  const auto& logs = tracker.find("r")->logs;
  REQUIRE(logs.size() == 3);
  CHECK(logs[0].message == "line 3");
  CHECK(logs[0].rank == 1);
  CHECK(logs[2].message == "abcdef\xc3\xa9");
  const json j = run_json(tracker, "r", 10'000'000);
  CHECK(j.at("logs").size() == 3);
  CHECK(j.at("logs")[1] == json{{"time", 4.0}, {"level", "warning"}, {"message", "line 4"}, {"rank", 0}});
}

TEST_CASE("resources: the latest sample, and a bounded history with the GPU mean and sum") {
  run_tracker_options options;
  options.resource_history = 4;
  run_tracker tracker(options);
  auto cpu_only = make_event(fe::event_type::resources, "r", 1'000'000);
  cpu_only.cpu_pct = 50.0;
  cpu_only.rss_bytes = 1000;
  tracker.apply(cpu_only);
  json j = run_json(tracker, "r", 1'000'000);
  CHECK(j.at("resources").at("cpu_pct") == 50.0);
  CHECK(j.at("resources").at("gpus") == json::array());
  CHECK(j.at("resource_history").contains("cpu_pct"));
  CHECK(j.at("resource_history").at("rss_bytes") == json::array({json::array({1.0, 1000})}));
  CHECK_FALSE(j.at("resource_history").contains("gpu_util_pct"));  // never sampled: no series

  for (int i = 2; i <= 6; ++i) {
    auto sample = make_event(fe::event_type::resources, "r", i * 1'000'000);
    sample.cpu_pct = 10.0 * i;
    sample.rss_bytes = 1000 * i;
    sample.mem_used_bytes = 5;
    sample.mem_total_bytes = 10;
    fe::gpu_info a, b;
    a.index = 0;
    a.name = "H100";
    a.util_pct = 40.0;
    a.mem_used_bytes = 100;
    a.mem_total_bytes = 1000;
    a.temperature_c = 60.0;
    b.index = 1;
    b.util_pct = i == 6 ? std::nullopt : std::optional<double>(80.0);  // MIG: no utilisation reading
    b.mem_used_bytes = 300;
    sample.gpus = std::vector<fe::gpu_info>{a, b};
    tracker.apply(sample);
  }
  // A rank other than the lowest does not replace the run's sample.
  auto other = make_event(fe::event_type::resources, "r", 7'000'000, 3);
  other.cpu_pct = 99.0;
  tracker.apply(other);
  const run_state& run = *tracker.find("r");
  REQUIRE(run.resource_history.size() == 4);
  CHECK(run.resource_history.front().unix_us == 3'000'000);
  CHECK(run.resource_history[0].gpu_util_pct == doctest::Approx(60.0));
  CHECK(run.resource_history.back().gpu_util_pct == doctest::Approx(40.0));  // the mean over GPUs with a reading
  CHECK(run.resource_history.back().gpu_mem_used_bytes == 400);
  j = run_json(tracker, "r", 7'000'000);
  const json& latest = j.at("resources");
  CHECK(latest.at("time") == 6.0);
  CHECK(latest.at("cpu_pct") == 60.0);
  CHECK(latest.at("mem_total_bytes") == 10);
  REQUIRE(latest.at("gpus").size() == 2);
  CHECK(latest.at("gpus")[0] == json{{"index", 0}, {"name", "H100"}, {"util_pct", 40.0}, {"mem_used_bytes", 100},
                                     {"mem_total_bytes", 1000}, {"temperature_c", 60.0}, {"power_w", nullptr}});
  CHECK(latest.at("gpus")[1].at("util_pct").is_null());
  const json& history = j.at("resource_history");
  CHECK(history.at("cpu_pct").size() == 4);
  CHECK(history.at("gpu_util_pct").back() == json::array({6.0, 40.0}));
  CHECK(history.at("gpu_mem_used_bytes").front() == json::array({3.0, 400}));
}

TEST_CASE("split_metric_name: one rule for training and validation series") {
  const auto parts = [](std::string_view name) {
    const auto p = split_metric_name(name);
    return std::pair{p.base, p.validation};
  };
  using p = std::pair<std::string, bool>;
  CHECK(parts("loss") == p{"loss", false});
  CHECK(parts("train_loss") == p{"loss", false});
  CHECK(parts("train/loss") == p{"loss", false});
  for (const char* name : {"val_loss", "val/loss", "valid_loss", "validation_loss", "eval_loss", "eval/loss",
                           "test_loss", "loss_val"}) {
    CAPTURE(name);
    CHECK(parts(name) == p{"loss", true});
  }
  CHECK(parts("val_") == p{"val_", false});  // a marker with nothing left is a name
  CHECK(parts("_val") == p{"_val", false});
  CHECK(parts("interval") == p{"interval", false});
  CHECK(parts("evaluation_time") == p{"evaluation_time", false});
}

TEST_CASE("metric_groups: train and val of a name together, every metric in exactly one group") {
  run_tracker tracker;
  tracker.apply(metrics_at("r", 1, 1,
                           {{"train_loss", 1.0}, {"loss", 1.0}, {"val_loss", 1.0}, {"eval/loss", 1.0},
                            {"train/acc", 1.0}, {"acc_val", 1.0}, {"lr", 1.0}}));
  const auto groups = metric_groups(*tracker.find("r"));
  std::vector<std::string> seen;
  for (const auto& [base, g] : groups) {
    if (g.train) seen.push_back(*g.train);
    if (g.val) seen.push_back(*g.val);
  }
  std::sort(seen.begin(), seen.end());
  CHECK(seen == std::vector<std::string>{"acc_val", "eval/loss", "loss", "lr", "train/acc", "train_loss", "val_loss"});
  CHECK(groups.at("loss").train == "loss");  // the bare name is the training series
  CHECK(groups.at("loss").val == "eval/loss");  // first in name order
  CHECK(groups.at("train_loss").train == "train_loss");
  CHECK(groups.at("val_loss").val == "val_loss");
  CHECK(groups.at("acc").train == "train/acc");
  CHECK(groups.at("acc").val == "acc_val");
  CHECK(groups.at("lr").train == "lr");
  CHECK_FALSE(groups.at("lr").val);
  const json j = run_json(tracker, "r", 1);
  CHECK(j.at("metric_groups").at("acc") == json{{"train", "train/acc"}, {"val", "acc_val"}});
  CHECK(j.at("metric_groups").at("lr") == json{{"train", "lr"}, {"val", nullptr}});
}

TEST_CASE("run_json_options: series thinned to max_points with first and last kept, and the summary form") {
  CHECK(thinned_indices(10, 100) == std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(thinned_indices(10, 4) == std::vector<std::size_t>{0, 3, 6, 9});
  CHECK(thinned_indices(1000, 2) == std::vector<std::size_t>{0, 999});
  CHECK(thinned_indices(7, 1) == std::vector<std::size_t>{6});
  CHECK(thinned_indices(7, 0).empty());
  CHECK(thinned_indices(0, 5).empty());
  for (std::size_t size : {2u, 3u, 17u, 500u, 1000u}) {
    for (std::size_t max : {2u, 3u, 10u, 499u}) {
      const auto kept = thinned_indices(size, max);
      CAPTURE(size);
      CAPTURE(max);
      REQUIRE(kept.size() == std::min(size, max));
      CHECK(kept.front() == 0);
      CHECK(kept.back() == size - 1);
      CHECK(std::adjacent_find(kept.begin(), kept.end(), std::greater_equal<>()) == kept.end());  // strictly rising
    }
  }

  run_tracker tracker;
  for (int step = 0; step < 1000; ++step) {
    tracker.apply(metrics_at("r", step * 1000, step, {{"loss", 1.0 / (step + 1)}}));
    auto sample = make_event(fe::event_type::resources, "r", step * 1000);
    sample.cpu_pct = step;
    tracker.apply(sample);
    auto log = make_event(fe::event_type::log, "r", step * 1000);
    log.message = "x";
    tracker.apply(log);
  }
  run_json_options thin;
  thin.max_points = 50;
  json j = run_json(tracker, "r", 1'000'000, thin);
  const json& loss = j.at("metric_history").at("loss");
  REQUIRE(loss.size() == 50);
  CHECK(loss.front() == json::array({0, 1.0}));
  CHECK(loss.back().at(0) == 999);
  REQUIRE(j.at("resource_history").at("cpu_pct").size() == 50);
  CHECK(j.at("resource_history").at("cpu_pct").back() == json::array({0.999, 999.0}));
  CHECK(j.at("logs").size() == defaults::recent_logs);  // logs are a list, never thinned

  // The full form keeps everything the tracker holds.
  j = run_json(tracker, "r", 1'000'000);
  CHECK(j.at("metric_history").at("loss").size() == defaults::metric_history);
  CHECK(j.at("resource_history").at("cpu_pct").size() == defaults::resource_history);
  CHECK(json::parse(to_json(*tracker.find("r"), 1'000'000)) == j);

  run_json_options summary;
  summary.history = false;
  j = run_json(tracker, "r", 1'000'000, summary);
  for (const char* gone : {"metric_history", "resource_history", "logs", "config"}) {
    CAPTURE(gone);
    CHECK_FALSE(j.contains(gone));
  }
  for (const char* kept : {"metrics", "metric_groups", "resources", "elapsed_s", "steps_per_s", "tags", "host", "started"}) {
    CAPTURE(kept);
    CHECK(j.contains(kept));
  }
}
