"""The emitter side of the control back-channel from Python: should_stop, poll_command, on_command
(callables on the emitting thread), the pause helper, command_done, and the digits demo obeying
cancel / pause / resume sent by a raw client of its control endpoint (docs/protocol.md, "Control")."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import event_schema
import foxml_events as fe
from conftest import REPO, json_lines, memory_lines


def ask(path, line, timeout=10.0):
    """Sends one line to a control endpoint and returns the decoded reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(line.encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    return json.loads(reply)


def command(name, cid, run_id, arg=None):
    body = {"command": name, "id": cid, "run_id": run_id, "sender": "test@host:1"}
    if arg is not None:
        body["arg"] = arg
    return json.dumps(body)


def complete_lines(path):
    """The whole lines of a file another process is still writing."""
    text = Path(path).read_text() if Path(path).exists() else ""
    return [json.loads(line) for line in text.split("\n")[:-1]]


def done_for(path, cid):
    return any(ev["event_type"] == "command_done" and ev["command_id"] == cid for ev in complete_lines(path))


def eventually(condition, limit=60.0):
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def controlled(tmp_path):
    e = fe.TrainingEventEmitter("ctl-run", "memory://", control_endpoint="on",
                                control_directory=str(tmp_path / "control"))
    yield e
    e.close()


def test_commands_reach_the_loop_and_are_acknowledged(controlled):
    e = controlled
    assert e.control_endpoint == str(tmp_endpoint(e))
    assert not e.should_stop() and not e.paused() and e.poll_command() is None
    assert ask(e.control_endpoint, command("checkpoint", "k1", "ctl-run", {"tag": "x"})) == {
        "ok": True, "id": "k1", "duplicate": False}
    assert ask(e.control_endpoint, command("checkpoint", "k1", "ctl-run"))["duplicate"] is True
    assert ask(e.control_endpoint, command("cancel", "c1", "another-run"))["ok"] is False
    assert ask(e.control_endpoint, command("lr", "n1", "ctl-run", 0.5))["ok"] is True
    got = e.poll_command()
    assert got == fe.Command("checkpoint", "k1", "test@host:1", "ctl-run", {"tag": "x"})
    assert e.poll_command().arg == {"value": 0.5}
    assert e.poll_command() is None
    assert e.command_done(got, "ok", "saved") is True
    assert e.command_done("n1", "ignored") is True
    stats = e.stats()
    assert (stats["commands_received"], stats["commands_duplicate"], stats["commands_refused"]) == (2, 1, 1)
    events = [json.loads(line) for line in memory_lines(e)]
    event_schema.check(events)
    received = [ev for ev in events if ev["event_type"] == "command_received"]
    assert [(ev["command"], ev["command_id"], ev.get("arg")) for ev in received] == [
        ("checkpoint", "k1", {"tag": "x"}), ("lr", "n1", {"value": 0.5})]
    done = [ev for ev in events if ev["event_type"] == "command_done"]
    assert [(ev["command_id"], ev["command"], ev["outcome"], ev.get("message")) for ev in done] == [
        ("k1", "checkpoint", "ok", "saved"), ("n1", "lr", "ignored", None)]
    status = ask(e.control_endpoint, '{"query":"status"}')
    assert status["ok"] and status["run_id"] == "ctl-run" and status["pid"] == os.getpid()


def tmp_endpoint(e):
    return Path(e.control_endpoint)


def test_cancel_sets_should_stop(controlled):
    assert ask(controlled.control_endpoint, command("cancel", "c1", "ctl-run"))["ok"]
    assert controlled.should_stop()


def test_callbacks_run_with_the_gil_on_the_emitting_thread(controlled):
    e = controlled
    seen = []
    e.on_command(lambda c: seen.append((c.name, c.id, threading.get_ident())))

    def broken(_c):
        raise RuntimeError("a callback that fails")

    e.on_command(broken)
    assert ask(e.control_endpoint, command("checkpoint", "k1", "ctl-run"))["ok"]
    assert seen == []  # nothing runs until this thread emits or polls
    # An exception in a callback does not come out of the emit call (reported as unraisable).
    unraisable = []
    old_hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        assert e.emit_progress("train", 1.0) is True
    finally:
        sys.unraisablehook = old_hook
    assert seen == [("checkpoint", "k1", threading.get_ident())]
    assert len(unraisable) == 1 and isinstance(unraisable[0].exc_value, RuntimeError)
    assert e.poll_command() is None


def test_wait_while_paused_releases_the_gil_until_resume(controlled):
    e = controlled
    assert e.wait_while_paused(0) is True
    assert ask(e.control_endpoint, command("pause", "p1", "ctl-run"))["ok"]
    assert e.paused()
    assert e.wait_while_paused(0.01) is False
    # A Python thread sends the resume: it can run only because the wait released the GIL.
    sender = threading.Thread(target=lambda: ask(e.control_endpoint, command("resume", "r1", "ctl-run")))
    sender.start()
    assert e.wait_while_paused(30) is True
    sender.join()
    done = [json.loads(line) for line in memory_lines(e) if '"command_done"' in line]
    assert [(ev["command_id"], ev["outcome"]) for ev in done] == [("p1", "ok"), ("r1", "ok")]


def test_the_endpoint_options(tmp_path):
    with pytest.raises(ValueError, match="control_endpoint"):
        fe.TrainingEventEmitter("r", "memory://", control_endpoint="sometimes")
    off = fe.TrainingEventEmitter("r", str(tmp_path / "a.jsonl"), control_endpoint="off")
    assert off.control_endpoint is None
    off.close()
    auto = fe.TrainingEventEmitter("r", str(tmp_path / "b.jsonl"))
    assert auto.control_endpoint == str(tmp_path / "control" / f"r.{os.getpid()}.sock")
    auto.close()
    assert not Path(str(tmp_path / "control" / f"r.{os.getpid()}.sock")).exists()


# --- The digits demo, driven through its control endpoint -----------------------------------------

pytest_slow = pytest.mark.slow


def start_trainer(tmp_path, run_id):
    events_path = tmp_path / "digits.jsonl"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "examples/python/train_digits.py"), "--epochs", "50", "--step-delay", "0.02",
         "--output", str(events_path), "--model-path", str(tmp_path / "model.pt"), "--run-id", run_id],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    endpoint = tmp_path / "control" / f"{run_id}.{proc.pid}.sock"

    def training():
        return endpoint.exists() and any(ev["event_type"] == "progress" for ev in complete_lines(events_path))

    assert eventually(lambda: training() or proc.poll() is not None), "the trainer did not start"
    assert proc.poll() is None, proc.communicate()
    return proc, endpoint, events_path


@pytest_slow
def test_digits_demo_pauses_resumes_and_cancels(tmp_path):
    proc, endpoint, events_path = start_trainer(tmp_path, "digits-ctl")
    try:
        assert ask(endpoint, command("pause", "p1", "digits-ctl"))["ok"]
        # The loop acknowledges the pause when it starts waiting; after that it takes no step.
        assert eventually(lambda: done_for(events_path, "p1"))
        status = ask(endpoint, '{"query":"status"}')
        assert status["status"]["paused"] is True
        assert ask(endpoint, command("resume", "r1", "digits-ctl"))["ok"]
        assert eventually(lambda: done_for(events_path, "r1"))
        assert ask(endpoint, command("cancel", "c1", "digits-ctl", {"reason": "test"}))["ok"]
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "cancelled at step" in out
    events = json_lines(events_path)
    event_schema.check(events)
    pause_done = next(ev for ev in events if ev["event_type"] == "command_done" and ev["command_id"] == "p1")
    resume_done = next(ev for ev in events if ev["event_type"] == "command_done" and ev["command_id"] == "r1")
    paused_steps = [ev for ev in events if ev["event_type"] == "progress" and pause_done["seq"] < ev["seq"] < resume_done["seq"]]
    assert paused_steps == []
    kinds = [(ev["event_type"], ev.get("command_id")) for ev in events if ev["event_type"].startswith("command_")]
    assert kinds == [("command_received", "p1"), ("command_done", "p1"), ("command_received", "r1"),
                     ("command_done", "r1"), ("command_received", "c1"), ("command_done", "c1")]
    cancel_done = [ev for ev in events if ev["event_type"] == "command_done" and ev["command_id"] == "c1"][0]
    assert cancel_done["outcome"] == "ok" and "checkpoint saved" in cancel_done["message"]
    assert events[-1]["event_type"] == "run_complete" and events[-1]["status"] == "cancelled"
    assert [ev for ev in events if ev["event_type"] == "run_complete"] == [events[-1]]
    assert (tmp_path / "model.pt").stat().st_size > 0
    assert not endpoint.exists()  # unlinked at close


def test_a_run_the_loop_ended_gets_no_second_run_complete_from_with():
    # A loop that ends the run itself (cancelled) inside ``with``: the exit adds no "success".
    e = fe.TrainingEventEmitter("r", "memory://", control_endpoint="off")
    with e:
        e.emit_run_complete("cancelled")
    ends = [json.loads(line)["status"] for line in e._memory_lines() if '"run_complete"' in line]
    assert ends == ["cancelled"]
