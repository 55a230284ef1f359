// The NVML path of the resource sampler, against the stand-in libnvidia-ml.so.1 of
// support/fake_nvml.c (found through LD_LIBRARY_PATH, set for this test only): two GPUs, GPU 1
// without a temperature sensor and with one MIG device that offers memory only.

#include <doctest/doctest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "foxml/events.hpp"
#include "test_support.hpp"

namespace fe = foxml::events;
namespace ft = foxml::events::testing;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

fe::resource_sampler_options only(std::string visible) {
  fe::resource_sampler_options options;
  options.visible_devices = std::move(visible);
  return options;
}

std::vector<std::string> names_of(fe::resource_sampler& sampler) {
  std::vector<std::string> names;
  const fe::resource_sample& s = sampler.sample();
  for (std::size_t i = 0; i < s.gpu_count; ++i) names.emplace_back(s.gpus[i].name);
  return names;
}

std::vector<std::string> names_of(fe::resource_sampler_options options) {
  fe::resource_sampler sampler(std::move(options));
  return names_of(sampler);
}

const std::string gpu0 = "Stand-in GPU 0", gpu1 = "Stand-in GPU 1", mig = "Stand-in GPU 1 MIG 1g.8gb";

// $CUDA_VISIBLE_DEVICES for one scope (set before any sampler thread of the test runs).
struct visible_devices_env {
  explicit visible_devices_env(const char* value) {
    if (value != nullptr) {
      setenv("CUDA_VISIBLE_DEVICES", value, 1);
    } else {
      unsetenv("CUDA_VISIBLE_DEVICES");
    }
  }
  ~visible_devices_env() { unsetenv("CUDA_VISIBLE_DEVICES"); }
};

}  // namespace

TEST_CASE("every reading a device offers, and only those: an unsupported one leaves out that field") {
  visible_devices_env env(nullptr);
  REQUIRE(fe::nvml_available());
  fe::resource_sampler sampler;
  REQUIRE(sampler.gpu_count() == 3);
  const fe::resource_sample& s = sampler.sample();
  REQUIRE(s.gpu_count == 3);

  const fe::gpu_sample& g0 = s.gpus[0];
  CHECK(g0.index == 0);
  CHECK(g0.name == gpu0);
  CHECK(g0.util_pct == 42.0);
  CHECK(g0.mem_used_bytes == 1LL << 30);
  CHECK(g0.mem_total_bytes == 16LL << 30);
  CHECK(g0.temperature_c == 55.0);
  CHECK(g0.power_w == doctest::Approx(123.456));

  const fe::gpu_sample& g1 = s.gpus[1];
  CHECK(g1.index == 1);
  CHECK(g1.name == gpu1);
  CHECK(g1.util_pct == 7.0);
  CHECK_FALSE(g1.temperature_c.has_value());  // NOT_SUPPORTED on this device only
  CHECK(g1.power_w == doctest::Approx(80.0));

  // MIG devices as NVML lists them, after their parent and with its index.
  const fe::gpu_sample& m = s.gpus[2];
  CHECK(m.index == 1);
  CHECK(m.name == mig);
  CHECK(m.mem_used_bytes == 512LL << 20);
  CHECK(m.mem_total_bytes == 8LL << 30);
  CHECK_FALSE(m.util_pct.has_value());
  CHECK_FALSE(m.temperature_c.has_value());
  CHECK_FALSE(m.power_w.has_value());

  // A second sample (the unsupported readings are no longer asked for) reads the same.
  const fe::resource_sample& again = sampler.sample();
  REQUIRE(again.gpu_count == 3);
  CHECK(again.gpus[0].temperature_c == 55.0);
  CHECK_FALSE(again.gpus[1].temperature_c.has_value());
  CHECK(again.gpus[1].util_pct == 7.0);
}

TEST_CASE("CUDA_VISIBLE_DEVICES: indices, GPU- and MIG- UUIDs and prefixes, CUDA's stop at a bad entry") {
  using list = std::vector<std::string>;
  CHECK(names_of(only("0")) == list{gpu0});
  CHECK(names_of(only("1")) == list{gpu1, mig});
  CHECK(names_of(only("1,0")) == list{gpu0, gpu1, mig});  // reported in NVML's order
  CHECK(names_of(only(" 0 , 1 ")) == list{gpu0, gpu1, mig});
  CHECK(names_of(only("GPU-11111111-1111-1111-1111-111111111111")) == list{gpu1, mig});
  CHECK(names_of(only("GPU-0000")) == list{gpu0});
  CHECK(names_of(only("MIG-22222222")) == list{mig});
  CHECK(names_of(only("0,7,1")) == list{gpu0});  // the list ends at the first that names nothing
  CHECK(names_of(only("-1,0")) == list{});
  CHECK(names_of(only("GPU-ffff")) == list{});
  CHECK(names_of(only("")) == list{});
  CHECK(names_of(only("0x1")) == list{});
  fe::resource_sampler_options all = only("");
  all.all_gpus = true;
  CHECK(names_of(all) == list{gpu0, gpu1, mig});
}

TEST_CASE("the sampler follows $CUDA_VISIBLE_DEVICES by default") {
  {
    visible_devices_env env("MIG-2222");
    CHECK(names_of(fe::resource_sampler_options{}) == std::vector<std::string>{mig});
  }
  {
    visible_devices_env env("");
    CHECK(names_of(fe::resource_sampler_options{}).empty());
  }
  {
    visible_devices_env env(nullptr);
    CHECK(names_of(fe::resource_sampler_options{}).size() == 3);
  }
}

TEST_CASE("on the wire: a field one GPU lacks is absent from that GPU's object only") {
  visible_devices_env env("1");
  auto store = std::make_shared<fe::memory_store>();
  fe::emitter_options options;
  options.resources_interval = 20ms;
  {
    fe::training_event_emitter emitter("run-nvml", std::make_unique<fe::memory_sink>(store), options);
    fe::resource_sampler sampler(only("0,1"));
    emitter.emit_resources(sampler.sample());
    REQUIRE(ft::eventually([&] {
      std::size_t n = 0;
      for (const auto& line : store->lines()) n += json::parse(line)["event_type"] == "resources";
      return n >= 2;
    }));
    REQUIRE(emitter.close(10s).ok());
  }
  bool saw_emitted = false, saw_sampled = false;
  for (const auto& line : store->lines()) {
    const json j = json::parse(line);
    if (j["event_type"] != "resources") continue;
    const json& gpus = j["gpus"];
    const auto decoded = fe::decode_line(line);
    REQUIRE_MESSAGE(decoded, decoded.error);
    REQUIRE(decoded.value->gpus->size() == gpus.size());
    if (gpus.size() == 3) {  // the application's own emit_resources (GPUs 0 and 1)
      saw_emitted = true;
      CHECK(gpus[0]["temperature_c"] == 55.0);
      CHECK(gpus[0]["power_w"] == 123.456);
      CHECK(gpus[1]["util_pct"] == 7.0);
      CHECK_FALSE(gpus[1].contains("temperature_c"));
      CHECK(gpus[1]["power_w"] == 80.0);
      CHECK(gpus[2]["mem_total_bytes"] == 8LL << 30);
      CHECK_FALSE(gpus[2].contains("util_pct"));
      CHECK((*decoded.value->gpus)[1].temperature_c == std::nullopt);
      CHECK((*decoded.value->gpus)[0].power_w == 123.456);
    } else {  // the sampler thread's, which follows $CUDA_VISIBLE_DEVICES=1
      saw_sampled = true;
      REQUIRE(gpus.size() == 2);
      CHECK(gpus[0]["name"] == gpu1);
      CHECK(gpus[1]["name"] == mig);
    }
  }
  CHECK(saw_emitted);
  CHECK(saw_sampled);
}
