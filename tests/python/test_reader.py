"""Round trip emitter -> file -> Python reader, and following a growing file."""

import math
import threading

import pytest

import foxml_events as fe


def test_round_trip(events_path):
    with fe.TrainingEventEmitter("run-rt", str(events_path), host="h") as e:
        e.emit_run_start(config={"lr": 0.1, "nested": {"a": [1, 2]}}, name="n", tags=["x"], total_steps=3)
        with e.stage("training"):
            for step in range(3):
                e.log_metrics({"loss": 1.0 / (step + 1), "bad": math.nan}, step=step, epoch=0)
                e.emit_progress("training", 100 * (step + 1) / 3, step=step + 1, total_steps=3)
        e.emit_target_complete("digits", "success", models_trained=1, best_auc=0.99, metrics={"acc": 0.9})
    events = list(fe.read_events(events_path))
    assert [ev["seq"] for ev in events] == list(range(len(events)))
    assert events[0]["config"] == {"lr": 0.1, "nested": {"a": [1, 2]}}
    assert events[0]["tags"] == ["x"] and events[0]["name"] == "n"
    metrics = [ev for ev in events if ev["event_type"] == "metrics"]
    assert [m["metrics"]["loss"] for m in metrics] == [1.0, 0.5, 1.0 / 3]
    assert all(math.isnan(m["metrics"]["bad"]) for m in metrics)
    assert events[-1]["event_type"] == "run_complete" and events[-1]["status"] == "success"
    assert all(ev["host"] == "h" and ev["run_id"] == "run-rt" for ev in events)


def test_bad_lines(tmp_path):
    path = tmp_path / "mixed.jsonl"
    good = '{"event_type":"log","run_id":"r","timestamp":"2026-01-21T10:00:00.123456+00:00","seq":0,' \
           '"pid":1,"host":"h","rank":0,"world_size":1,"level":"info","message":"m"}'
    path.write_text(good + "\nnot json\n\n" + good.replace('"seq":0', '"seq":1'))  # no final newline
    with pytest.raises(ValueError, match="line 2"):
        list(fe.read_events(path))
    reader = fe.read_events(path, errors="skip")
    assert [ev["seq"] for ev in reader] == [0, 1]
    assert reader.skipped == 1
    with pytest.raises(ValueError):
        fe.decode_line("{}")
    assert fe.decode_line(good.encode())["message"] == "m"
    with pytest.raises(FileNotFoundError):
        fe.read_events(tmp_path / "missing.jsonl")


def test_follow_sees_events_written_later(events_path):
    e = fe.TrainingEventEmitter("run-follow", str(events_path))
    e.log("info", "before")
    e.flush()
    seen = []
    reader = fe.follow_events(events_path, poll_interval=0.01, idle_timeout=30)

    def consume():
        for ev in reader:
            seen.append(ev)
            if ev["event_type"] == "run_complete":
                break

    thread = threading.Thread(target=consume)
    thread.start()  # the reader waits without the GIL, so this thread keeps emitting
    for i in range(50):
        e.emit_progress("training", float(i), step=i)
    e.emit_run_complete()
    e.close()
    thread.join(30)
    assert not thread.is_alive()
    assert [ev["seq"] for ev in seen] == list(range(52))


def test_follow_waits_for_the_file_and_stops(tmp_path):
    path = tmp_path / "later.jsonl"
    reader = fe.follow_events(path, poll_interval=0.01, idle_timeout=0.05)
    assert list(reader) == []  # no file: ends after the idle timeout
    reader = fe.follow_events(path, poll_interval=0.01)
    reader.stop()
    assert list(reader) == []
