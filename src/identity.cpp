#include "foxml/events/identity.hpp"

#include <cerrno>
#include <cstdlib>
#include <stdexcept>

#include "foxml/events/detail/text.hpp"

namespace foxml::events {
namespace {

[[noreturn]] void reject(const std::string& what) { throw std::invalid_argument("foxml::events: " + what); }

std::optional<std::int64_t> integer_from_env(const char* name) {
  const std::string text = detail::env_value(name);
  if (text.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str() || *end != '\0') {
    reject(std::string("$") + name + "='" + text + "' is not an integer");
  }
  return value;
}

bool env_set(const char* name) { return !detail::env_value(name).empty(); }

struct launcher_variables {
  const char* rank;
  const char* local_rank;
  const char* world_size;
};
constexpr launcher_variables torchrun{"RANK", "LOCAL_RANK", "WORLD_SIZE"};
constexpr launcher_variables slurm{"SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS"};

}  // namespace

rank_identity resolve_rank_identity(std::optional<std::int64_t> rank, std::optional<std::int64_t> local_rank,
                                    std::optional<std::int64_t> world_size) {
  const launcher_variables* from = nullptr;
  if (env_set(torchrun.rank) || env_set(torchrun.world_size)) {
    from = &torchrun;
  } else if (env_set(slurm.rank) || env_set(slurm.world_size)) {
    from = &slurm;
  }
  const auto pick = [&](std::optional<std::int64_t> given, const char* variable, std::int64_t fallback) {
    if (given) return *given;
    if (from == nullptr) return fallback;
    return integer_from_env(variable).value_or(fallback);
  };
  rank_identity id;
  id.rank = pick(rank, from ? from->rank : nullptr, 0);
  id.local_rank = pick(local_rank, from ? from->local_rank : nullptr, 0);
  id.world_size = pick(world_size, from ? from->world_size : nullptr, 1);
  if (id.world_size < 1) reject("world_size must be at least 1, got " + std::to_string(id.world_size));
  if (id.rank < 0 || id.rank >= id.world_size) {
    reject("rank must be in [0, world_size), got rank " + std::to_string(id.rank) + " of " +
           std::to_string(id.world_size));
  }
  if (id.local_rank < 0) reject("local_rank must not be negative, got " + std::to_string(id.local_rank));
  return id;
}

std::string default_run_id() {
  std::string elastic = detail::env_value("TORCHELASTIC_RUN_ID");
  if (!elastic.empty() && elastic != "none") return elastic;
  std::string job = detail::env_value("SLURM_JOB_ID");
  if (job.empty()) return job;
  const std::string step = detail::env_value("SLURM_STEP_ID");
  if (!step.empty()) job += "-" + step;
  return job;
}

}  // namespace foxml::events
