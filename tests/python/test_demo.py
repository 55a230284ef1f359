"""The PyTorch digits demo end to end; its JSONL output must follow DESIGN.md's schema."""

import os
import subprocess
import sys

import pytest

from conftest import REPO, json_lines
import event_schema

pytestmark = pytest.mark.slow


def test_train_digits_end_to_end(tmp_path):
    events_path = tmp_path / "digits.jsonl"
    model_path = tmp_path / "model.pt"
    result = subprocess.run(
        [sys.executable, "-W", "error", str(REPO / "examples/python/train_digits.py"), "--epochs", "2",
         "--output", str(events_path), "--model-path", str(model_path), "--run-id", "digits-test"],
        capture_output=True, text=True, timeout=150, env={**os.environ, "PYTHONWARNINGS": "error"})
    assert result.returncode == 0, result.stderr
    assert f"events -> file://{events_path}" in result.stdout
    assert model_path.stat().st_size > 0

    events = json_lines(events_path)
    event_schema.check(events)
    assert {ev["run_id"] for ev in events} == {"digits-test"}
    assert [ev["seq"] for ev in events] == list(range(len(events)))
    assert events[0]["event_type"] == "run_start"
    assert events[0]["config"]["epochs"] == 2 and events[0]["total_epochs"] == 2
    assert events[-1]["event_type"] == "run_complete" and events[-1]["status"] == "success"

    entered = [ev["new_stage"] for ev in events if ev["event_type"] == "stage_change" and ev["new_stage"] != "idle"]
    assert entered == ["dataset_loading", "training", "validation", "save_model"]

    steps = [ev for ev in events if ev["event_type"] == "metrics" and "loss" in ev["metrics"]]
    progress = [ev for ev in events if ev["event_type"] == "progress"]
    assert len(steps) == len(progress) > 10
    total = progress[0]["total_steps"]
    assert [p["step"] for p in progress] == list(range(1, total + 1))
    assert progress[-1]["progress_pct"] == pytest.approx(100.0)
    assert {p["epoch"] for p in progress} == {1, 2} and {p["total_epochs"] for p in progress} == {2}
    for m in steps:
        assert set(m["metrics"]) == {"loss", "accuracy", "lr"}
        assert 0.0 <= m["metrics"]["accuracy"] <= 1.0
    assert steps[-1]["metrics"]["loss"] < steps[0]["metrics"]["loss"]  # it learns
    assert steps[0]["metrics"]["lr"] > steps[-1]["metrics"]["lr"]       # cosine schedule

    (target,) = [ev for ev in events if ev["event_type"] == "target_complete"]
    assert target["status"] == "success" and target["models_trained"] == 1
    assert target["best_auc"] > 0.9 and target["metrics"]["val_accuracy"] > 0.5
