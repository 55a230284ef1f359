#pragma once
/// Resource sampling: the process's CPU and memory, the machine's memory and the GPUs this process
/// may use, as a `resource_sample` for emit_resources(). The emitter runs one in its own thread
/// when `emitter_options::resources_interval` is set; it can also be used on its own.
///
/// - `cpu_pct`: CPU time of every thread of this process (user + system) over the wall time since
///   the previous sample, in percent of one core: 250 means two and a half cores busy. The first
///   sample covers the time since the sampler was made, never a meaningless 0.
/// - `rss_bytes`: resident set size (/proc/self/statm).
/// - `mem_used_bytes` / `mem_total_bytes`: the machine's MemTotal - MemAvailable and MemTotal from
///   /proc/meminfo: memory not available to new work without swapping (what `free` reports as
///   used since procps-ng 4, and what psutil's `percent` is based on; page cache is not "used").
///   Kernels before 3.14 lack MemAvailable: MemFree + Buffers + Cached stands in for it there.
///   Container limits (cgroups) are not applied.
/// - `gpus`: through NVML, loaded at run time with dlopen("libnvidia-ml.so.1") (no build-time
///   dependency; loaded once per process, never unloaded). No NVML, or no GPU: an empty list.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "foxml/events/event.hpp"

namespace foxml::events {

/// Settings of a resource_sampler.
struct resource_sampler_options {
  /// Which GPUs to report, in the syntax of $CUDA_VISIBLE_DEVICES (comma-separated NVML indices,
  /// `GPU-<uuid>` or `MIG-<uuid>`, unique prefixes allowed; an empty string means none; CUDA's
  /// rule applies: the list ends at the first entry that matches nothing). Unset: the value of
  /// $CUDA_VISIBLE_DEVICES, and every GPU when that is unset too. Indices are NVML's (PCI bus
  /// order, what CUDA uses under CUDA_DEVICE_ORDER=PCI_BUS_ID).
  std::optional<std::string> visible_devices;
  /// Report every GPU NVML lists, whatever $CUDA_VISIBLE_DEVICES says.
  bool all_gpus = false;
};

/// Takes resource samples. One sampler serves one thread at a time (the emitter's sampler
/// thread); separate samplers may run in parallel. Sampling allocates nothing after the first call.
class resource_sampler {
 public:
  /// Takes the CPU baseline the first sample is measured against, and finds the GPUs to report
  /// (loading NVML when this process has not yet).
  explicit resource_sampler(resource_sampler_options options = {});
  ~resource_sampler();
  resource_sampler(const resource_sampler&) = delete;
  resource_sampler& operator=(const resource_sampler&) = delete;

  /// Samples now. The returned view (its `gpus` and their names) stays valid until the next call
  /// or the sampler's end. A /proc file that cannot be read leaves its figures at 0; a GPU reading
  /// NVML refuses is left out of that GPU (a GPU whose memory cannot be read is left out).
  const resource_sample& sample() noexcept;

  /// GPUs this sampler reports on (fixed when it was made).
  std::size_t gpu_count() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Whether NVML could be loaded and initialised in this process (loads it on the first call).
bool nvml_available() noexcept;

}  // namespace foxml::events
