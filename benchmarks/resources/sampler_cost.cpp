// The resource sampler's cost per sample, on the sampler's own thread: CPU time (what it takes
// from the machine; the training threads never wait for it) and wall time per sample, with and
// without the emit into the worker's queue, and what that makes at the default 10 s interval.
// Usage: sampler_cost [samples]   (GPUs: whatever NVML this process finds; none without one)

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "foxml/events.hpp"

namespace fe = foxml::events;

namespace {

double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

struct figures {
  double cpu_us_mean, wall_us_median, wall_us_p99;
};

template <class Step>
figures measure(int samples, Step step) {
  std::vector<double> wall(samples);
  const double cpu0 = thread_cpu_ns();
  for (int i = 0; i < samples; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    wall[i] = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  }
  const double cpu_us = (thread_cpu_ns() - cpu0) / 1e3 / samples;
  std::sort(wall.begin(), wall.end());
  return {cpu_us, wall[samples / 2], wall[std::min<std::size_t>(samples - 1, samples * 99 / 100)]};
}

void print(const char* what, const figures& f) {
  std::printf("| %-28s | %8.1f | %8.1f | %8.1f | %9.5f%% |\n", what, f.cpu_us_mean, f.wall_us_median, f.wall_us_p99,
              f.cpu_us_mean / 10e6 * 100.0);
}

}  // namespace

int main(int argc, char** argv) {
  const int samples = argc > 1 ? std::max(1, std::atoi(argv[1])) : 20000;
  const auto load_start = std::chrono::steady_clock::now();
  fe::resource_sampler sampler;
  const double load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_start).count();
  std::printf("resource sampler: %zu GPU(s) via NVML (%s), %d samples; making the sampler took %.2f ms\n\n",
              sampler.gpu_count(), fe::nvml_available() ? "loaded" : "not found", samples, load_ms);
  std::printf("| %-28s | %8s | %8s | %8s | %10s |\n", "per sample", "CPU us", "wall p50", "wall p99",
              "core @10s");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(30, '-').c_str(), std::string(10, '-').c_str(),
              std::string(10, '-').c_str(), std::string(10, '-').c_str(), std::string(12, '-').c_str());
  print("sample()", measure(samples, [&] { sampler.sample(); }));

  fe::emitter_options options;
  options.queue_capacity = 1 << 16;
  options.overflow = fe::overflow_policy::block;
  options.block_timeout = std::chrono::seconds(1);
  fe::training_event_emitter emitter("bench-resources", std::make_unique<fe::memory_sink>(), options);
  print("sample() + emit_resources()", measure(samples, [&] { emitter.emit_resources(sampler.sample()); }));
  emitter.close();
  return 0;
}
