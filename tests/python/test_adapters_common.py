"""Issue 14, what the three adapters share (foxml_events._adapters): no framework is imported with
foxml_events, a missing framework is a clear ImportError, metric values (numbers, numpy scalars,
CPU tensors; the rest named once and left out), the status words, the run id a DDP launcher's
ranks share, and the commands a loop obeys."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import numpy as np
import pytest

import foxml_events as fe
from adapter_checks import run_dir
from conftest import memory_lines
from foxml_events import _adapters

_ = run_dir  # the fixture, used by name
FRAMEWORKS = {"lightning": "lightning", "transformers": "transformers", "accelerate": "accelerate"}


def test_importing_foxml_events_imports_no_framework():
    code = ("import sys, foxml_events; "
            "print(sorted(m for m in ('lightning', 'pytorch_lightning', 'transformers', 'accelerate', 'torch') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("adapter", sorted(FRAMEWORKS))
def test_an_adapter_without_its_framework_is_a_clear_import_error(adapter):
    # sys.modules[name] = None makes `import name` fail as if the package were not installed.
    code = (f"import sys; sys.modules[{FRAMEWORKS[adapter]!r}] = None\n"
            f"try:\n    import foxml_events.{adapter}\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith(f"foxml_events.{adapter} needs {FRAMEWORKS[adapter]}, which is not importable here")
    assert f"pip install {FRAMEWORKS[adapter]}" in out


def test_metric_values_numbers_numpy_and_cpu_tensors(emitter):
    torch = pytest.importorskip("torch")
    sender = _adapters.MetricSender(emitter)
    assert sender.send({"a": 1, "b": 0.5, "c": True, "d": np.float32(0.25), "e": torch.tensor(2.5),
                        "f": torch.tensor([3.0]), "g": "text", "h": torch.ones(3)}, step=4, epoch=1)
    assert sender.send({"g": "again", "h": torch.ones(2), "a": 2}, step=5)
    assert not sender.send({"g": "only text"})  # nothing numeric: no event
    lines = [json.loads(line) for line in memory_lines(emitter)]
    metrics = [(e["step"], e["metrics"]) for e in lines if e["event_type"] == "metrics"]
    assert metrics == [(4, {"a": 1, "b": 0.5, "c": 1, "d": 0.25, "e": 2.5, "f": 3.0}), (5, {"a": 2})]
    warned = [e["message"] for e in lines if e["event_type"] == "log"]
    assert warned == ["foxml_events: metric 'g' is str, not a number; left out",
                      "foxml_events: metric 'h' is a tensor of 3 elements, not a number; left out"]


def test_status_words():
    assert [_adapters.map_status(s) for s in ("success", "finished", None, "failed", "interrupted", "killed",
                                              "something else")] == [
        "success", "success", "success", "failed", "cancelled", "killed", "failed"]


def test_run_id_explicit_then_launcher_then_inherited_by_launched_ranks(monkeypatch):
    for name in ("TORCHELASTIC_RUN_ID", "SLURM_JOB_ID", "LOCAL_RANK", _adapters.RUN_ID_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    assert _adapters.resolve_run_id("mine", "x") == "mine"
    first = _adapters.resolve_run_id(None, "lightning")
    second = _adapters.resolve_run_id(None, "lightning")
    assert first.startswith("lightning-") and first != second  # two runs in one script are two runs
    monkeypatch.setenv("LOCAL_RANK", "1")  # a process Lightning's DDP launcher started from this one
    assert _adapters.resolve_run_id(None, "lightning") == second
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "elastic-9")
    assert _adapters.resolve_run_id(None, "lightning") == "elastic-9"


def test_pause_holds_the_loop_until_resume(run_dir):
    control = str(run_dir / "control")
    e = fe.TrainingEventEmitter("ctl-pause", "memory://", control_endpoint="on", control_directory=control)
    obey = _adapters.Control(e)
    fe.send_command("ctl-pause", "pause", control_dir=control)
    held = threading.Event()
    resumer = threading.Thread(target=lambda: (held.wait(60), fe.send_command("ctl-pause", "resume",
                                                                              control_dir=control)))
    resumer.start()
    try:
        assert e.paused()
        held.set()  # check() now waits in wait_while_paused() until the resume arrives
        assert not obey.check()
        assert not e.paused()
        done = [(ev["command"], ev["outcome"]) for ev in map(json.loads, memory_lines(e))
                if ev["event_type"] == "command_done"]
    finally:
        resumer.join(60)
        e.close()
    assert done == [("pause", "ok"), ("resume", "ok")]  # each answered once


def test_commands_cancel_unknown_and_checkpoint(run_dir):
    control = str(run_dir / "control")
    e = fe.TrainingEventEmitter("ctl-adp", "memory://", control_endpoint="on", control_directory=control)
    saved = []
    obey = _adapters.Control(e, on_checkpoint=lambda c: saved.append(c.arg) or "saved")
    try:
        assert not obey.check()
        for name, arg in (("frobnicate", None), ("checkpoint", {"tag": "x"}), ("cancel", None), ("cancel", None)):
            fe.send_command("ctl-adp", name, arg, control_dir=control)
        assert obey.check() and obey.stop_requested
        obey.finish("at step 7")
        assert saved == [{"tag": "x"}]
        done = [(ev["command"], ev["outcome"], ev.get("message")) for ev in map(json.loads, memory_lines(e))
                if ev["event_type"] == "command_done"]
    finally:
        e.close()
    assert done == [("frobnicate", "ignored", "the adapter knows no command 'frobnicate'"),
                    ("checkpoint", "ok", "saved"),
                    ("cancel", "ignored", "already cancelling"), ("cancel", "ok", "stopped at step 7")]


def test_emitter_and_sink_options_together_are_refused():
    with fe.TrainingEventEmitter("r", "memory://") as e:
        with pytest.raises(TypeError, match="pass emitter= or sink/emitter options, not both"):
            _adapters.emitter_for("accelerate", None, "memory://", e, {}, False)


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.skipif(not _cuda(), reason="no CUDA device here")
def test_cuda_values_are_read_after_the_step_without_a_sync(emitter):
    import torch

    sender = _adapters.MetricSender(emitter)
    loss = torch.tensor(1.5, device="cuda")
    torch.cuda._sleep(1 << 31)  # the device is busy for a second or so: a sync would wait for it
    sender.send({"loss": loss, "lr": 0.1}, step=3)
    assert not torch.cuda.current_stream().query()  # send returned while the device still works
    assert not [line for line in memory_lines(emitter) if '"metrics"' in line]  # deferred, not lost
    sender.flush()
    (event,) = [json.loads(line) for line in memory_lines(emitter) if '"event_type":"metrics"' in line]
    assert (event["step"], event["metrics"]) == (3, {"loss": 1.5, "lr": 0.1})
