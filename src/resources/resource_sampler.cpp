#include "foxml/events/resources.hpp"

#include <chrono>
#include <cstdlib>

#include "nvml.hpp"
#include "proc_stats.hpp"

namespace foxml::events {
namespace {

std::optional<std::string> visible_devices(const resource_sampler_options& options) {
  if (options.all_gpus) return std::nullopt;
  if (options.visible_devices) return options.visible_devices;
  if (const char* env = std::getenv("CUDA_VISIBLE_DEVICES")) return std::string(env);
  return std::nullopt;
}

}  // namespace

struct resource_sampler::impl {
  explicit impl(const resource_sampler_options& options) : gpus(visible_devices(options)) {
    gpu_buffer.reserve(gpus.count());
  }

  detail::nvml_gpus gpus;
  std::vector<gpu_sample> gpu_buffer;
  resource_sample last;
  // The baseline of the next CPU figure: the previous sample, or the sampler's making.
  std::int64_t cpu_ns = detail::process_cpu_ns();
  std::chrono::steady_clock::time_point wall = std::chrono::steady_clock::now();
};

resource_sampler::resource_sampler(resource_sampler_options options) : impl_(std::make_unique<impl>(options)) {}

resource_sampler::~resource_sampler() = default;

std::size_t resource_sampler::gpu_count() const noexcept { return impl_->gpus.count(); }

const resource_sample& resource_sampler::sample() noexcept {
  impl& s = *impl_;
  const auto wall = std::chrono::steady_clock::now();
  const std::int64_t cpu_ns = detail::process_cpu_ns();
  const auto wall_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wall - s.wall).count();
  // Two samples in the same nanosecond: keep the previous figure rather than divide by zero.
  if (wall_ns > 0) {
    s.last.cpu_pct = 100.0 * static_cast<double>(cpu_ns - s.cpu_ns) / static_cast<double>(wall_ns);
    s.cpu_ns = cpu_ns;
    s.wall = wall;
  }
  s.last.rss_bytes = detail::resident_bytes();
  const detail::system_memory memory = detail::read_system_memory();
  s.last.mem_used_bytes = memory.used_bytes;
  s.last.mem_total_bytes = memory.total_bytes;
  s.gpus.read(s.gpu_buffer);
  s.last.gpus = s.gpu_buffer.data();
  s.last.gpu_count = s.gpu_buffer.size();
  return s.last;
}

bool nvml_available() noexcept { return detail::nvml() != nullptr; }

}  // namespace foxml::events
