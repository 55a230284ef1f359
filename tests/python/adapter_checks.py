"""What the framework adapter tests (test_adapters_*.py) check in every stream: run_start with the
hyperparameters, stages, progress reaching 100 %, run_complete; and a cancel sent with the real
events-ctl from inside a training step."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

import foxml_events as fe
from test_control_e2e import check_cancelled, ctl  # noqa: F401 - re-exported for the adapter tests

# No hub: every model and tokenizer-free config is built in the test.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture
def run_dir():
    # Unix socket paths (the control endpoint) hold at most 107 bytes; pytest's tmp_path can be longer.
    path = tempfile.mkdtemp(prefix="fe-adp-")
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


def sink_options(run_dir: Path) -> Dict[str, Any]:
    """An event file and a control directory of the test's own."""
    return {"sink": str(run_dir / "events.jsonl"), "control_directory": str(run_dir / "control")}


def events_of(run_dir: Path, run_id: Optional[str] = None) -> List[Dict[str, Any]]:
    events = list(fe.read_events(str(run_dir / "events.jsonl")))
    return [e for e in events if run_id is None or e["run_id"] == run_id]


def of_type(events: List[Dict[str, Any]], kind: str) -> List[Dict[str, Any]]:
    return [e for e in events if e["event_type"] == kind]


def stages(events: List[Dict[str, Any]]) -> List[str]:
    return [e["new_stage"] for e in of_type(events, "stage_change")]


def check_lifecycle(events: List[Dict[str, Any]], status: str = "success") -> Dict[str, Any]:
    """run_start first, run_complete last with ``status``; returns run_start's config."""
    assert events, "no events"
    assert events[0]["event_type"] == "run_start", events[0]
    assert events[-1]["event_type"] == "run_complete" and events[-1]["status"] == status, events[-1]
    assert len(of_type(events, "run_start")) == 1 and len(of_type(events, "run_complete")) == 1
    assert [e["seq"] for e in events] == list(range(len(events))), "a gap or a repeat in the stream"
    return events[0].get("config") or {}


def final_progress(events: List[Dict[str, Any]]) -> float:
    return max(e["progress_pct"] for e in of_type(events, "progress"))


def cancel(run_id: str, run_dir: Path) -> None:
    """``events-ctl cancel`` (the installed program): returns once the run's emitter took it."""
    result = ctl("cancel", run_id, "--control-dir", str(run_dir / "control"))
    assert result.returncode == 0, result.stderr
    assert "acknowledged" in result.stdout, result.stdout
