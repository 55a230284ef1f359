"""Issue 12 from Python: rank identity, the default run id, the rank policy, and an emitter whose
events-proxy is down or comes up late; the torchrun example through a real events-proxy."""

from __future__ import annotations

import pytest

import foxml_events as fe
from conftest import json_lines

LAUNCHER_VARIABLES = ["RANK", "LOCAL_RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS",
                      "TORCHELASTIC_RUN_ID", "SLURM_JOB_ID", "SLURM_STEP_ID"]


@pytest.fixture
def clean_env(monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_local_rank_is_on_every_event_from_torchrun_variables(events_path, clean_env):
    clean_env.setenv("RANK", "5")
    clean_env.setenv("LOCAL_RANK", "1")
    clean_env.setenv("WORLD_SIZE", "8")
    e = fe.TrainingEventEmitter("r", str(events_path))
    e.emit_heartbeat()
    e.log_metrics({"loss": 1.0}, step=0)
    e.close()
    lines = json_lines(events_path)
    assert [(ev["rank"], ev["local_rank"], ev["world_size"]) for ev in lines] == [(5, 1, 8)] * 2
    decoded = list(fe.read_events(str(events_path)))
    assert [ev["local_rank"] for ev in decoded] == [1, 1]


def test_slurm_variables_and_explicit_local_rank(events_path, clean_env):
    clean_env.setenv("SLURM_PROCID", "3")
    clean_env.setenv("SLURM_LOCALID", "0")
    clean_env.setenv("SLURM_NTASKS", "4")
    e = fe.TrainingEventEmitter("r", str(events_path), local_rank=2)
    e.emit_heartbeat()
    e.close()
    (ev,) = json_lines(events_path)
    assert (ev["rank"], ev["local_rank"], ev["world_size"]) == (3, 2, 4)


def test_malformed_launcher_value_is_a_clear_error(clean_env):
    clean_env.setenv("RANK", "0")
    clean_env.setenv("WORLD_SIZE", "2")
    clean_env.setenv("LOCAL_RANK", "one")
    with pytest.raises(ValueError, match=r"\$LOCAL_RANK='one' is not an integer"):
        fe.TrainingEventEmitter("r", "memory://")


def test_init_training_events_takes_the_run_id_from_the_launcher(clean_env, events_path):
    clean_env.setenv("SLURM_JOB_ID", "4242")
    assert fe.default_run_id() == "4242"
    clean_env.setenv("TORCHELASTIC_RUN_ID", "elastic-7")
    e = fe.init_training_events(sink=str(events_path), signal_hook=False, resources_interval=0)
    assert e.run_id == "elastic-7"
    fe.close_training_events()


def test_init_training_events_without_any_run_id_is_a_clear_error(clean_env):
    with pytest.raises(ValueError, match="no run_id given"):
        fe.init_training_events(sink="memory://", signal_hook=False)


def test_rank_policy_keeps_metrics_on_rank_zero_only(clean_env):
    for rank in (0, 2):
        e = fe.TrainingEventEmitter("r", "memory://", rank=rank, world_size=4, rank_zero_only=["metrics"])
        assert e.log_metrics({"loss": 0.5}, step=0) == (rank == 0)
        assert e.emit_progress("train", 50.0)
        e.flush()
        lines = [line for line in e._memory_lines()]
        stats = e.stats()
        e.close()
        assert stats["dropped_by_policy"] == (0 if rank == 0 else 1)
        assert stats["dropped"] == 0
        assert len(lines) == (2 if rank == 0 else 1)


def test_rank_policy_refuses_lifecycle_and_unknown_types(clean_env):
    with pytest.raises(ValueError, match="rank_zero_only cannot hold run_complete"):
        fe.TrainingEventEmitter("r", "memory://", rank_zero_only=["run_complete"])
    with pytest.raises(ValueError, match="unknown event type 'metric'"):
        fe.TrainingEventEmitter("r", "memory://", rank_zero_only=["metric"])
