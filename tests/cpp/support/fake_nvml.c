/* A stand-in for libnvidia-ml.so.1 with the entry points the resource sampler uses, so the NVML
 * code path runs on machines without a GPU. Built as libnvidia-ml.so.1 into a directory of its
 * own that only test_resources_nvml finds (LD_LIBRARY_PATH).
 *
 * Two GPUs: GPU 0 offers every reading; GPU 1 has no temperature sensor (NOT_SUPPORTED) and MIG
 * on, with one MIG device in its first slot (second slot empty), which offers only memory, as
 * real MIG devices do for utilisation. Values are fixed so the test can check them. */
#include <string.h>

typedef int nvmlReturn_t;
enum { SUCCESS = 0, ERROR_INVALID_ARGUMENT = 2, ERROR_NOT_SUPPORTED = 3, ERROR_INSUFFICIENT_SIZE = 7, ERROR_NOT_FOUND = 6 };

typedef struct {
  unsigned int gpu, memory;
} nvmlUtilization_t;
typedef struct {
  unsigned long long total, free, used;
} nvmlMemory_t;

typedef struct nvmlDevice_st {
  const char* name;
  const char* uuid;
  int util;         /* -1: not supported */
  int temperature;  /* -1: not supported */
  int power_mw;     /* -1: not supported */
  unsigned long long used, total;
  int mig_mode;
  struct nvmlDevice_st* mig[2];
} device;

static device mig_1_0 = {"Stand-in GPU 1 MIG 1g.8gb", "MIG-22222222-2222-2222-2222-222222222222", -1, -1, -1,
                         512ull << 20, 8ull << 30, 0, {0, 0}};
static device gpus[2] = {
    {"Stand-in GPU 0", "GPU-00000000-0000-0000-0000-000000000000", 42, 55, 123456, 1ull << 30, 16ull << 30, 0, {0, 0}},
    {"Stand-in GPU 1", "GPU-11111111-1111-1111-1111-111111111111", 7, -1, 80000, 2ull << 30, 16ull << 30, 1,
     {&mig_1_0, 0}},
};
static int initialised = 0;

static nvmlReturn_t copy_text(const char* text, char* out, unsigned int size) {
  if (out == 0) return ERROR_INVALID_ARGUMENT;
  if (strlen(text) + 1 > size) return ERROR_INSUFFICIENT_SIZE;
  strcpy(out, text);
  return SUCCESS;
}

nvmlReturn_t nvmlInit_v2(void) {
  initialised = 1;
  return SUCCESS;
}
nvmlReturn_t nvmlShutdown(void) { return SUCCESS; }
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count) {
  if (!initialised || count == 0) return ERROR_INVALID_ARGUMENT;
  *count = 2;
  return SUCCESS;
}
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, device** out) {
  if (index >= 2 || out == 0) return ERROR_INVALID_ARGUMENT;
  *out = &gpus[index];
  return SUCCESS;
}
nvmlReturn_t nvmlDeviceGetName(device* d, char* out, unsigned int size) { return copy_text(d->name, out, size); }
nvmlReturn_t nvmlDeviceGetUUID(device* d, char* out, unsigned int size) { return copy_text(d->uuid, out, size); }
nvmlReturn_t nvmlDeviceGetMemoryInfo(device* d, nvmlMemory_t* m) {
  m->total = d->total;
  m->used = d->used;
  m->free = d->total - d->used;
  return SUCCESS;
}
nvmlReturn_t nvmlDeviceGetUtilizationRates(device* d, nvmlUtilization_t* u) {
  if (d->util < 0) return ERROR_NOT_SUPPORTED;
  u->gpu = (unsigned int)d->util;
  u->memory = 0;
  return SUCCESS;
}
nvmlReturn_t nvmlDeviceGetTemperature(device* d, int sensor, unsigned int* celsius) {
  if (sensor != 0) return ERROR_INVALID_ARGUMENT;
  if (d->temperature < 0) return ERROR_NOT_SUPPORTED;
  *celsius = (unsigned int)d->temperature;
  return SUCCESS;
}
nvmlReturn_t nvmlDeviceGetPowerUsage(device* d, unsigned int* milliwatts) {
  if (d->power_mw < 0) return ERROR_NOT_SUPPORTED;
  *milliwatts = (unsigned int)d->power_mw;
  return SUCCESS;
}
nvmlReturn_t nvmlDeviceGetMigMode(device* d, unsigned int* current, unsigned int* pending) {
  if (d == &mig_1_0) return ERROR_NOT_SUPPORTED;
  *current = (unsigned int)d->mig_mode;
  *pending = (unsigned int)d->mig_mode;
  return SUCCESS;
}
nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(device* d, unsigned int* count) {
  *count = d->mig_mode ? 2 : 0;
  return d->mig_mode ? SUCCESS : ERROR_NOT_SUPPORTED;
}
nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(device* d, unsigned int slot, device** out) {
  if (!d->mig_mode || slot >= 2) return ERROR_INVALID_ARGUMENT;
  if (d->mig[slot] == 0) return ERROR_NOT_FOUND;
  *out = d->mig[slot];
  return SUCCESS;
}
