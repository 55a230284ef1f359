#pragma once
/// Who is emitting: the rank identity every event carries and the run id all ranks of a job share.
/// The one place the launcher's environment variables are read (torchrun, Slurm).

#include <cstdint>
#include <optional>
#include <string>

namespace foxml::events {

/// A process's place in a distributed job.
struct rank_identity {
  std::int64_t rank = 0;        ///< global rank, in [0, world_size)
  std::int64_t local_rank = 0;  ///< rank among the job's processes on this host
  std::int64_t world_size = 1;
};

/// Resolves the rank identity. Each explicit value wins; the others come from one launcher's set
/// of variables, never mixed (torchrun inside a Slurm allocation sets both, and only torchrun's
/// describe the processes that emit): `RANK`/`LOCAL_RANK`/`WORLD_SIZE` when `RANK` or `WORLD_SIZE`
/// is set, else `SLURM_PROCID`/`SLURM_LOCALID`/`SLURM_NTASKS` when `SLURM_PROCID` or
/// `SLURM_NTASKS` is set; what the chosen set lacks is 0 (ranks) or 1 (world size). Throws
/// std::invalid_argument naming the variable for a value that is not an integer, and for a
/// world size below 1, a rank outside [0, world_size) or a negative local rank.
rank_identity resolve_rank_identity(std::optional<std::int64_t> rank = std::nullopt,
                                    std::optional<std::int64_t> local_rank = std::nullopt,
                                    std::optional<std::int64_t> world_size = std::nullopt);

/// The run id all ranks of a job share when the user names none: `$TORCHELASTIC_RUN_ID` (torchrun's
/// rendezvous id; its placeholder `none`, which every non-standalone torchrun job without
/// `--rdzv-id` gets, is skipped), else `$SLURM_JOB_ID` (with `-<SLURM_STEP_ID>` when that is set:
/// the steps of one allocation are separate runs). Empty when neither is set: the emitter then
/// refuses the empty run id as before, so a job without a launcher must name its run.
std::string default_run_id();

}  // namespace foxml::events
