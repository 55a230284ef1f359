"""Every emit call of the Python API and the JSON line it produces."""

import math
import os

import pytest

import foxml_events as fe
from conftest import json_lines
import event_schema


def emit_all(e):
    assert e.emit_run_start(config={"lr": 0.001, "layers": [64, 32], "nan": float("nan")}, name="digits",
                            tags=["a", "b"], total_steps=100, total_epochs=2) is True
    assert e.emit_stage_change(None, "training") is True
    assert e.emit_progress("training", 12.5, "ret_5m", 1, 4, step=5, total_steps=40, epoch=1, total_epochs=2) is True
    assert e.log_metrics({"loss": 0.25, "accuracy": 0.9, "lr": 1e-3}, step=5, epoch=1) is True
    assert e.emit_target_complete("ret_5m", "success", models_trained=3, best_auc=0.65, metrics={"auc": 0.65}) is True
    assert e.log("warning", "loss plateaued") is True
    assert e.emit_error("disk almost full", "ResourceWarning", recoverable=True) is True
    assert e.emit_heartbeat() is True
    assert e.emit_run_complete("success", duration_s=12.0) is True


def test_every_call_writes_its_json_line(events_path):
    e = fe.TrainingEventEmitter("run-api", path=str(events_path), rank=1, world_size=4, host="hostA")
    emit_all(e)
    report = e.close()
    assert report.ok and report.status == "ok" and report.pending == 0

    events = json_lines(events_path)
    event_schema.check(events)
    assert [ev["event_type"] for ev in events] == [
        "run_start", "stage_change", "progress", "metrics", "target_complete", "log", "error", "heartbeat",
        "run_complete"]
    assert [ev["seq"] for ev in events] == list(range(9))
    for ev in events:
        assert ev["run_id"] == "run-api"
        assert ev["pid"] == os.getpid()
        assert (ev["host"], ev["rank"], ev["world_size"]) == ("hostA", 1, 4)
        assert ev["timestamp"].endswith("+00:00") and "." in ev["timestamp"]
    start, change, progress, metrics, target, log, error, _, complete = events
    assert start["config"] == {"lr": 0.001, "layers": [64, 32], "nan": "NaN"}
    assert (start["name"], start["tags"], start["total_steps"], start["total_epochs"]) == ("digits", ["a", "b"], 100, 2)
    assert (change["previous_stage"], change["new_stage"]) == (None, "training")
    assert progress == {**progress, "stage": "training", "progress_pct": 12.5, "current_target": "ret_5m",
                        "targets_complete": 1, "targets_total": 4, "step": 5, "total_steps": 40, "epoch": 1,
                        "total_epochs": 2}
    assert (metrics["step"], metrics["epoch"]) == (5, 1)
    assert metrics["metrics"] == {"loss": 0.25, "accuracy": 0.9, "lr": 1e-3}
    assert (target["target"], target["status"], target["models_trained"], target["best_auc"]) == (
        "ret_5m", "success", 3, 0.65)
    assert target["metrics"] == {"auc": 0.65}
    assert (log["level"], log["message"]) == ("warning", "loss plateaued")
    assert (error["error_message"], error["error_type"], error["recoverable"]) == (
        "disk almost full", "ResourceWarning", True)
    assert (complete["status"], complete["duration_s"]) == ("success", 12.0)


def test_seed_defaults(events_path):
    e = fe.TrainingEventEmitter("run-seed", str(events_path))
    e.emit_progress("ranking", 0)
    e.emit_target_complete("t", "skipped")
    e.emit_error("oops")
    e.emit_run_complete()
    e.close()
    progress, target, error, complete = json_lines(events_path)
    assert (progress["current_target"], progress["targets_complete"], progress["targets_total"]) == (None, 0, 0)
    assert "step" not in progress and "epoch" not in progress
    assert (target["models_trained"], target["best_auc"]) == (0, None)
    assert (error["error_type"], error["recoverable"]) == ("unknown", True)
    assert complete["status"] == "success" and complete["duration_s"] >= 0


def test_log_metrics_step_counts_on_when_not_given(events_path):
    e = fe.TrainingEventEmitter("run-steps", str(events_path))
    e.log_metrics({"loss": 1.0})
    e.log_metrics({"loss": 0.9})
    e.log_metrics({"loss": 0.8}, step=10)
    e.log_metrics({"loss": 0.7})
    e.close()
    assert [ev["step"] for ev in json_lines(events_path)] == [0, 1, 10, 11]


def test_non_finite_metrics_stay_valid_json_and_read_back_as_nan(events_path):
    e = fe.TrainingEventEmitter("run-nan", str(events_path))
    e.log_metrics({"loss": float("nan"), "grad": float("inf")}, step=0)
    e.close()
    (raw,) = json_lines(events_path)  # strict parser: no NaN tokens
    assert raw["metrics"] == {"loss": "NaN", "grad": "Infinity"}
    (decoded,) = list(fe.read_events(events_path))
    assert math.isnan(decoded["metrics"]["loss"]) and decoded["metrics"]["grad"] == math.inf


def test_global_functions_are_noops_before_init():
    assert fe.get_training_emitter() is None
    assert fe.emit_progress("training", 1.0, step=1) is False
    assert fe.log_metrics({"loss": 1.0}) is False
    assert fe.emit_stage_change(None, "x") is False
    assert fe.emit_target_complete("t", "success") is False
    assert fe.emit_run_complete() is False
    assert fe.emit_error("e") is False
    assert fe.emit_run_start(config={}) is False
    assert fe.log("info", "m") is False
    with pytest.raises(TypeError, match="unexpected keyword argument 'stepp'"):
        fe.emit_progress("training", 1.0, stepp=1)


def test_global_functions_use_the_initialised_emitter(events_path):
    e = fe.init_training_events("run-global", str(events_path))
    assert fe.get_training_emitter() is e
    assert isinstance(e, fe.TrainingEventEmitter)
    assert fe.emit_run_start(config={"k": 1}, total_epochs=1)
    assert fe.emit_stage_change(None, "training")
    assert fe.emit_progress("training", 50.0, current_target="t", targets_complete=1, targets_total=2, step=1)
    assert fe.log_metrics({"loss": 0.5}, step=1, epoch=0)
    assert fe.emit_target_complete("t", "failed", models_trained=1, best_auc=None)
    assert fe.log("info", "hello")
    assert fe.emit_error("bad", "ValueError", False)
    assert fe.emit_run_complete("failed")
    fe.close_training_events()
    assert fe.get_training_emitter() is None
    events = json_lines(events_path)
    event_schema.check(events)
    assert [ev["event_type"] for ev in events] == ["run_start", "stage_change", "progress", "metrics",
                                                   "target_complete", "log", "error", "run_complete"]
    assert events[2]["current_target"] == "t" and events[4]["status"] == "failed"
    assert events[6]["recoverable"] is False


def test_emits_after_close_are_counted_as_dropped(events_path):
    e = fe.TrainingEventEmitter("run-closed", str(events_path))
    e.emit_progress("a", 1)
    e.close()
    assert e.closed
    assert e.emit_progress("a", 2) is False
    assert e.log_metrics({"x": 1.0}) is False
    assert e.log("info", "late") is False
    assert e.stats()["dropped_closed"] == 3
    assert len(json_lines(events_path)) == 1
    assert e.flush().status == "closed"


def test_flush_delivers_without_close(events_path):
    e = fe.TrainingEventEmitter("run-flush", str(events_path))
    for i in range(100):
        e.emit_progress("training", float(i), step=i)
    report = e.flush(timeout=5.0)
    assert report.ok and report.pending == 0
    assert [ev["step"] for ev in json_lines(events_path)] == list(range(100))
    assert e.stats()["written"] == 100
    e.close()


def test_default_sink_is_socket_then_the_default_event_file(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "default.jsonl"
    sock = tmp_path / "sub" / "nobody.sock"
    monkeypatch.delenv("FOXML_EVENTS_SINKS", raising=False)
    monkeypatch.setenv("FOXML_TRAINING_EVENT_FILE", str(target))
    monkeypatch.setenv("FOXML_TRAINING_EVENT_SOCKET", str(sock))
    assert fe.default_event_file() == str(target)
    assert fe.default_event_socket() == str(sock)
    assert fe.default_sink_list() == f"unix://{sock},file://{target}"
    e = fe.TrainingEventEmitter("run-default")
    assert e.sink == f"unix://{sock},file://{target}"
    e.log("info", "x")
    e.close()
    # No listener on the socket: the chain falls back to the file.
    assert json_lines(target)[0]["message"] == "x"
    assert oct(target.stat().st_mode & 0o777) == "0o600"


def test_default_sink_from_foxml_events_sinks(tmp_path, monkeypatch):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    monkeypatch.setenv("FOXML_EVENTS_SINKS", f"file://{a} | file://{b}")
    e = fe.TrainingEventEmitter("run-env")
    assert e.sink == f"file://{a} | file://{b}"
    e.log("info", "both")
    e.close()
    assert json_lines(a) == json_lines(b) and json_lines(a)[0]["message"] == "both"


def test_sink_forms(tmp_path):
    uri = fe.TrainingEventEmitter("r", f"file://{tmp_path}/a.jsonl")
    assert uri.sink == f"file://{tmp_path}/a.jsonl"
    pathlike = fe.TrainingEventEmitter("r", tmp_path / "b.jsonl")
    assert pathlike.sink == f"file://{tmp_path}/b.jsonl"
    memory = fe.TrainingEventEmitter("r", "memory://")
    memory.log("info", "in memory")
    memory.flush()
    assert fe.decode_line(memory._memory_lines()[0])["message"] == "in memory"
    for e in (uri, pathlike, memory):
        e.close()
    with pytest.raises(ValueError, match="carrier-pigeon://x"):
        fe.TrainingEventEmitter("r", "carrier-pigeon://x")
    with pytest.raises(ValueError, match="'file://relative.jsonl'.*absolute"):
        fe.TrainingEventEmitter("r", "file://relative.jsonl")
    with pytest.raises(ValueError, match="zmq\\+tcp://nohost"):
        fe.TrainingEventEmitter("r", "zmq+tcp://nohost")
    with pytest.raises(ValueError, match="empty"):
        fe.TrainingEventEmitter("r", f"file://{tmp_path}/x.jsonl,")
    with pytest.raises(TypeError, match="sink= or path="):
        fe.TrainingEventEmitter("r", "memory://", path="x")
    with pytest.raises(OSError):
        fe.TrainingEventEmitter("r", f"{tmp_path}/a.jsonl/inside")


def test_uri_lists_fallback_and_tee(tmp_path):
    first, second, third = (tmp_path / n for n in ("first.jsonl", "second.jsonl", "third.jsonl"))
    chain = fe.TrainingEventEmitter("r", f"unix://{tmp_path}/nobody.sock,file://{first}")
    tee = fe.TrainingEventEmitter("r", f"file://{second} | file://{third}")
    assert chain.sink == f"unix://{tmp_path}/nobody.sock,file://{first}"
    for e in (chain, tee):
        e.log("info", "m")
        e.close()
    assert [ev["message"] for ev in json_lines(first)] == ["m"]
    assert json_lines(second) == json_lines(third) != []


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="run_id"):
        fe.TrainingEventEmitter("", "memory://")
    with pytest.raises(ValueError, match="overflow"):
        fe.TrainingEventEmitter("r", "memory://", overflow="sometimes")
    with pytest.raises(ValueError, match="rank"):
        fe.TrainingEventEmitter("r", "memory://", rank=4, world_size=2)
    with pytest.raises(ValueError, match="close_timeout"):
        fe.TrainingEventEmitter("r", "memory://", close_timeout=-1)


def test_block_overflow_policy_delivers_everything(events_path):
    e = fe.TrainingEventEmitter("run-block", str(events_path), queue_capacity=8, overflow="block",
                                block_timeout=1.0)
    for i in range(500):
        assert e.log_metrics({"i": float(i)}, step=i)
    e.close()
    assert [ev["step"] for ev in json_lines(events_path)] == list(range(500))


def test_rank_and_world_size_come_from_the_environment(events_path, monkeypatch):
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "3")
    e = fe.TrainingEventEmitter("run-rank", str(events_path))
    e.emit_heartbeat()
    e.close()
    (ev,) = json_lines(events_path)
    assert (ev["rank"], ev["world_size"]) == (2, 3)


def test_public_names():
    assert set(fe.__all__) <= set(dir(fe))
    for name in ["init_training_events", "get_training_emitter", "emit_progress", "emit_stage_change",
                 "emit_target_complete", "emit_run_complete", "emit_error", "TrainingEventEmitter",
                 "read_events", "follow_events", "log_metrics", "log"]:
        assert name in fe.__all__
    from pathlib import Path
    package = Path(fe.__file__).parent
    assert (package / "py.typed").exists() and (package / "_core.pyi").exists()
