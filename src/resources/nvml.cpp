#include "nvml.hpp"

#include <dlfcn.h>
#include <pthread.h>

#include <cctype>
#include <cstdlib>
#include <mutex>
#include <string_view>

namespace foxml::events::detail {
namespace {

// The few NVML declarations used here, as in nvml.h of NVML API version 12 (CUDA 12 drivers).
// They are declared here rather than included so the library builds without the CUDA toolkit.
// Every entry point used exists since driver R325 (the _v2 ones) except the MIG calls (R450),
// which are looked up optionally. Layouts and values are part of NVML's stable ABI.
using nvmlReturn_t = int;
using nvmlDevice_t = struct nvmlDevice_st*;
struct nvmlUtilization_t {
  unsigned int gpu;     // percent of time a kernel was running over the last sample period
  unsigned int memory;  // percent of time device memory was read or written
};
struct nvmlMemory_t {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};
constexpr nvmlReturn_t NVML_SUCCESS = 0;
constexpr nvmlReturn_t NVML_ERROR_NOT_SUPPORTED = 3;
constexpr int NVML_TEMPERATURE_GPU = 0;           // nvmlTemperatureSensors_t
constexpr unsigned int NVML_DEVICE_MIG_ENABLE = 1;
constexpr unsigned int NVML_DEVICE_NAME_V2_BUFFER_SIZE = 96;
constexpr unsigned int NVML_DEVICE_UUID_V2_BUFFER_SIZE = 96;

}  // namespace

struct nvml_api {
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*device_count)(unsigned int*) = nullptr;
  nvmlReturn_t (*handle_by_index)(unsigned int, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*name)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*uuid)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*memory)(nvmlDevice_t, nvmlMemory_t*) = nullptr;
  // Optional: a driver without them still reports what it has.
  nvmlReturn_t (*utilization)(nvmlDevice_t, nvmlUtilization_t*) = nullptr;
  nvmlReturn_t (*temperature)(nvmlDevice_t, int, unsigned int*) = nullptr;
  nvmlReturn_t (*power_mw)(nvmlDevice_t, unsigned int*) = nullptr;
  nvmlReturn_t (*mig_mode)(nvmlDevice_t, unsigned int*, unsigned int*) = nullptr;
  nvmlReturn_t (*max_mig_count)(nvmlDevice_t, unsigned int*) = nullptr;
  nvmlReturn_t (*mig_handle)(nvmlDevice_t, unsigned int, nvmlDevice_t*) = nullptr;
};

namespace {

// Held around every use of NVML by this library (loading, listing, reading), and by fork() through
// the handlers below: a child never starts with NVML's own locks or the load half done by a
// thread it does not have (its sampler would block for good). A fork waits for one sample at most.
std::mutex nvml_mutex;
const nvml_api* loaded_api = nullptr;  // under nvml_mutex
bool load_tried = false;               // under nvml_mutex

void lock_for_fork() noexcept { nvml_mutex.lock(); }
void unlock_after_fork() noexcept { nvml_mutex.unlock(); }

template <class Fn>
void find(void* lib, const char* symbol, Fn& fn) noexcept {
  fn = reinterpret_cast<Fn>(::dlsym(lib, symbol));
}

const nvml_api* load_nvml() noexcept {
  void* lib = ::dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return nullptr;
  static nvml_api api;
  find(lib, "nvmlInit_v2", api.init);
  find(lib, "nvmlDeviceGetCount_v2", api.device_count);
  find(lib, "nvmlDeviceGetHandleByIndex_v2", api.handle_by_index);
  find(lib, "nvmlDeviceGetName", api.name);
  find(lib, "nvmlDeviceGetUUID", api.uuid);
  find(lib, "nvmlDeviceGetMemoryInfo", api.memory);
  find(lib, "nvmlDeviceGetUtilizationRates", api.utilization);
  find(lib, "nvmlDeviceGetTemperature", api.temperature);
  find(lib, "nvmlDeviceGetPowerUsage", api.power_mw);
  find(lib, "nvmlDeviceGetMigMode", api.mig_mode);
  find(lib, "nvmlDeviceGetMaxMigDeviceCount", api.max_mig_count);
  find(lib, "nvmlDeviceGetMigDeviceHandleByIndex", api.mig_handle);
  const bool usable = api.init && api.device_count && api.handle_by_index && api.name && api.uuid && api.memory;
  if (!usable || api.init() != NVML_SUCCESS) {
    ::dlclose(lib);  // nothing of it is in use yet
    return nullptr;
  }
  // Never unloaded (nor nvmlShutdown): samplers of other emitters may be reading at any time, and
  // the library stays usable in fork children.
  return &api;
}

// One device as NVML lists it, before the selection.
struct listed {
  nvmlDevice_t handle = nullptr;
  unsigned int index = 0;  // NVML index of the physical GPU (a MIG device: its parent's)
  bool mig = false;
  std::string uuid, name;
};

std::string text_of(nvmlReturn_t (*fn)(nvmlDevice_t, char*, unsigned int), nvmlDevice_t handle, unsigned int size) {
  std::string out(size, '\0');
  if (fn(handle, out.data(), size) != NVML_SUCCESS) return {};
  out.resize(out.find('\0') == std::string::npos ? out.size() : out.find('\0'));
  return out;
}

std::vector<listed> list_devices(const nvml_api& api) {
  std::vector<listed> all;
  unsigned int count = 0;
  if (api.device_count(&count) != NVML_SUCCESS) return all;
  for (unsigned int i = 0; i < count; ++i) {
    listed gpu;
    if (api.handle_by_index(i, &gpu.handle) != NVML_SUCCESS) continue;
    gpu.index = i;
    gpu.uuid = text_of(api.uuid, gpu.handle, NVML_DEVICE_UUID_V2_BUFFER_SIZE);
    gpu.name = text_of(api.name, gpu.handle, NVML_DEVICE_NAME_V2_BUFFER_SIZE);
    const nvmlDevice_t parent = gpu.handle;
    all.push_back(std::move(gpu));
    unsigned int current = 0, pending = 0, slots = 0;
    if (!api.mig_mode || !api.max_mig_count || !api.mig_handle) continue;
    if (api.mig_mode(parent, &current, &pending) != NVML_SUCCESS || current != NVML_DEVICE_MIG_ENABLE) continue;
    if (api.max_mig_count(parent, &slots) != NVML_SUCCESS) continue;
    for (unsigned int slot = 0; slot < slots; ++slot) {
      listed mig;
      // Unpopulated slots answer NVML_ERROR_NOT_FOUND: MIG devices are listed as NVML has them.
      if (api.mig_handle(parent, slot, &mig.handle) != NVML_SUCCESS) continue;
      mig.index = i;
      mig.mig = true;
      mig.uuid = text_of(api.uuid, mig.handle, NVML_DEVICE_UUID_V2_BUFFER_SIZE);
      mig.name = text_of(api.name, mig.handle, NVML_DEVICE_NAME_V2_BUFFER_SIZE);
      all.push_back(std::move(mig));
    }
  }
  return all;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Marks what a $CUDA_VISIBLE_DEVICES value selects among `all`. Like CUDA, the list ends at the
// first entry that names no device. An index or a GPU UUID selects that GPU and its MIG devices;
// a MIG UUID that MIG device alone.
std::vector<bool> select(const std::vector<listed>& all, std::string_view visible) {
  std::vector<bool> chosen(all.size(), false);
  auto choose_gpu = [&](unsigned int index) {
    for (std::size_t k = 0; k < all.size(); ++k) chosen[k] = chosen[k] || all[k].index == index;
  };
  while (true) {
    const std::size_t comma = visible.find(',');
    const std::string_view entry = trim(visible.substr(0, comma));
    bool matched = false;
    if (!entry.empty() && std::isdigit(static_cast<unsigned char>(entry.front()))) {
      char* end = nullptr;
      const std::string digits(entry);
      const unsigned long index = std::strtoul(digits.c_str(), &end, 10);
      if (*end == '\0') {
        for (const listed& d : all) matched = matched || (!d.mig && d.index == index);
        if (matched) choose_gpu(static_cast<unsigned int>(index));
      }
    } else if (entry.size() > 4 && (entry.substr(0, 4) == "GPU-" || entry.substr(0, 4) == "MIG-")) {
      // A unique prefix is enough, as for CUDA; the first match is taken.
      for (std::size_t k = 0; k < all.size() && !matched; ++k) {
        if (all[k].uuid.compare(0, entry.size(), entry) != 0) continue;
        matched = true;
        if (all[k].mig) {
          chosen[k] = true;
        } else {
          choose_gpu(all[k].index);
        }
      }
    }
    if (!matched || comma == std::string_view::npos) break;
    visible.remove_prefix(comma + 1);
  }
  return chosen;
}

}  // namespace

const nvml_api* nvml() noexcept {
  std::lock_guard<std::mutex> lock(nvml_mutex);
  if (!load_tried) {
    load_tried = true;
    pthread_atfork(lock_for_fork, unlock_after_fork, unlock_after_fork);
    loaded_api = load_nvml();
  }
  return loaded_api;
}

nvml_gpus::nvml_gpus(const std::optional<std::string>& visible) : api_(nvml()) {
  if (api_ == nullptr) return;
  std::vector<listed> all;
  {
    std::lock_guard<std::mutex> lock(nvml_mutex);
    all = list_devices(*api_);
  }
  const std::vector<bool> chosen = visible ? select(all, *visible) : std::vector<bool>(all.size(), true);
  for (std::size_t k = 0; k < all.size(); ++k) {
    if (!chosen[k]) continue;
    device d;
    d.handle = all[k].handle;
    d.index = all[k].index;
    d.name = all[k].name;
    d.util = api_->utilization != nullptr;
    d.temperature = api_->temperature != nullptr;
    d.power = api_->power_mw != nullptr;
    devices_.push_back(std::move(d));
  }
}

void nvml_gpus::read(std::vector<gpu_sample>& out) noexcept {
  out.clear();
  if (devices_.empty()) return;
  std::lock_guard<std::mutex> lock(nvml_mutex);
  for (device& d : devices_) {
    const auto handle = static_cast<nvmlDevice_t>(d.handle);
    nvmlMemory_t memory{};
    if (api_->memory(handle, &memory) != NVML_SUCCESS) continue;
    gpu_sample g;
    g.index = d.index;
    g.name = d.name;
    g.mem_used_bytes = static_cast<std::int64_t>(memory.used);
    g.mem_total_bytes = static_cast<std::int64_t>(memory.total);
    // Each reading on its own: one the device refuses leaves out that field, not the device.
    if (d.util) {
      nvmlUtilization_t util{};
      const nvmlReturn_t rc = api_->utilization(handle, &util);
      if (rc == NVML_SUCCESS) g.util_pct = util.gpu;
      d.util = rc != NVML_ERROR_NOT_SUPPORTED;
    }
    if (d.temperature) {
      unsigned int celsius = 0;
      const nvmlReturn_t rc = api_->temperature(handle, NVML_TEMPERATURE_GPU, &celsius);
      if (rc == NVML_SUCCESS) g.temperature_c = celsius;
      d.temperature = rc != NVML_ERROR_NOT_SUPPORTED;
    }
    if (d.power) {
      unsigned int milliwatts = 0;
      const nvmlReturn_t rc = api_->power_mw(handle, &milliwatts);
      if (rc == NVML_SUCCESS) g.power_w = milliwatts / 1000.0;
      d.power = rc != NVML_ERROR_NOT_SUPPORTED;
    }
    out.push_back(g);  // capacity reserved by the caller: no allocation
  }
}

}  // namespace foxml::events::detail
