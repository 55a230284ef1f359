#pragma once
// GPUs through NVML, loaded at run time (no build-time dependency on the CUDA toolkit or driver).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "foxml/events/event.hpp"

namespace foxml::events::detail {

struct nvml_api;

// The GPUs one resource_sampler reports on, chosen when it is made.
class nvml_gpus {
 public:
  // `visible`: a $CUDA_VISIBLE_DEVICES-style selection; nullopt selects every device.
  explicit nvml_gpus(const std::optional<std::string>& visible);

  std::size_t count() const noexcept { return devices_.size(); }
  // Reads every chosen GPU into `out` (cleared first; its capacity is kept). Names point into
  // this object.
  void read(std::vector<gpu_sample>& out) noexcept;

 private:
  struct device {
    void* handle = nullptr;  // nvmlDevice_t
    std::int64_t index = 0;
    std::string name;
    // Cleared once NVML says the device does not support the reading, so it is not asked again.
    bool util = true, temperature = true, power = true;
  };
  const nvml_api* api_ = nullptr;
  std::vector<device> devices_;
};

// Loads and initialises NVML once per process; nullptr when it is not there or does not start.
const nvml_api* nvml() noexcept;

}  // namespace foxml::events::detail
