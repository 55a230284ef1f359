"""The control back-channel end to end: events-ctl (and foxml_events.send_command) against a
running Python trainer over a listener's relay, ZeroMQ and the control endpoint next to the event
file; pause/resume; an unknown run; another user's process refused."""

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

import foxml_events as fe
from conftest import installed_program

# A trainer that checks for commands once per step: `cancel` ends it `cancelled` (command_done
# first), `pause` holds it in wait_while_paused() until `resume`.
TRAINER = textwrap.dedent(
    """
    import sys, time
    import foxml_events as fe

    run_id, sink, control = sys.argv[1], sys.argv[2], sys.argv[3]
    events = fe.TrainingEventEmitter(run_id, sink, control_endpoint=control, signal_hook=False)
    events.emit_run_start(total_steps=100000)
    print("ready", flush=True)
    step, stop = 0, None
    while stop is None and step < 3000:
        while True:
            cmd = events.poll_command()
            if cmd is None:
                break
            if cmd.name == "cancel":
                stop = cmd
            elif cmd.name == "pause":
                print("paused", flush=True)
                events.wait_while_paused()
                print("resumed", flush=True)
            elif cmd.name == "resume":
                pass  # wait_while_paused() took it and acknowledged it with command_done
            else:
                events.command_done(cmd, "ignored")
        if stop is not None:
            break
        step += 1
        events.emit_progress("train", step / 30.0, step=step)
        time.sleep(0.01)
    if stop is not None:
        events.command_done(stop, "ok", f"cancelled at step {step}")
        events.emit_run_complete("cancelled")
    else:
        events.emit_run_complete("success")
    events.close()
    print(f"done {step}", flush=True)
    """
)


def events_ctl() -> str:
    found = installed_program("events-ctl")
    if found is None:
        pytest.skip("events-ctl is not installed next to this interpreter (pip install . puts it there)")
    return found


@pytest.fixture
def short_dir():
    # Unix socket paths hold at most 107 bytes; pytest's tmp_path can be longer.
    path = tempfile.mkdtemp(prefix="fe-ctl-")
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


class Trainer:
    def __init__(self, directory: Path, run_id: str, sink: str, control: str = "auto") -> None:
        script = directory / "trainer.py"
        script.write_text(TRAINER)
        self.run_id = run_id
        self.proc = subprocess.Popen(
            [sys.executable, str(script), run_id, sink, control],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.expect("ready")

    def expect(self, word: str) -> bool:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        return line.strip() == word

    def finish(self) -> str:
        out, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, err
        return out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()  # reaps and closes the pipes, also of a trainer that exited by itself


def ctl(*args: str, timeout: float = 10.0, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run([events_ctl(), *args, "--timeout", str(timeout)], capture_output=True, text=True, **kwargs)


def check_cancelled(events: List[Dict[str, Any]], run_id: str) -> None:
    """command_received, then at most one step, command_done, run_complete cancelled."""
    mine = [e for e in events if e["run_id"] == run_id]
    types = [e["event_type"] for e in mine]
    received = next(i for i, e in enumerate(mine) if e["event_type"] == "command_received" and e["command"] == "cancel")
    cancel_id = mine[received]["command_id"]
    done = next(i for i, e in enumerate(mine) if e["event_type"] == "command_done" and e["command_id"] == cancel_id)
    assert mine[done]["command"] == "cancel" and mine[done]["outcome"] == "ok" and done > received
    # Within one step: the loop checks once per step, so at most one progress event in between.
    assert types[received:done].count("progress") <= 1, types[received:done]
    assert mine[-1]["event_type"] == "run_complete" and mine[-1]["status"] == "cancelled"


def wait_for(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_cancel_through_the_control_endpoint_with_no_listener(short_dir):
    file = short_dir / "events.jsonl"
    trainer = Trainer(short_dir, "ctl-file", str(file))
    try:
        listed = ctl("list", "--control-dir", str(short_dir / "control"), "--json")
        assert listed.returncode == 0, listed.stderr
        runs = [json.loads(line) for line in listed.stdout.splitlines()]
        assert [(r["run_id"], r["state"], r["pid"]) for r in runs] == [("ctl-file", "running", trainer.proc.pid)]

        result = ctl("cancel", "ctl-file", "--control-dir", str(short_dir / "control"))
        assert result.returncode == 0, result.stderr
        assert "cancel ctl-file: acknowledged" in result.stdout and "via control" in result.stdout
        assert trainer.finish().startswith("done")
    finally:
        trainer.kill()
    check_cancelled(list(fe.read_events(file)), "ctl-file")
    # The endpoint went with the process: the run is unknown now.
    gone = ctl("cancel", "ctl-file", "--control-dir", str(short_dir / "control"), timeout=2)
    assert gone.returncode == 1 and "unknown run ctl-file" in gone.stderr


def test_cancel_relayed_by_a_listener(short_dir):
    sock = str(short_dir / "events.sock")
    with fe.EventReader(f"unix://{sock}") as reader:
        reader.start()
        trainer = Trainer(short_dir, "ctl-sock", f"unix://{sock}", control="off")
        try:
            assert wait_for(lambda: reader.tracker.run("ctl-sock") is not None)
            result = ctl("cancel", "ctl-sock", "--socket", sock, "--json")
            assert result.returncode == 0, result.stderr
            ack = json.loads(result.stdout)
            assert ack["acknowledged"] and ack["via"] == "relay" and ack["delivered"] == 1
            assert ack["received"][0]["event_type"] == "command_received"
            assert ack["received"][0]["command_id"] == ack["id"]
            assert trainer.finish().startswith("done")
        finally:
            trainer.kill()
        assert wait_for(lambda: (reader.tracker.run("ctl-sock") or {}).get("status") == "cancelled")
        events = list(reader.buffer.since(0).events)
    check_cancelled(events, "ctl-sock")


@pytest.mark.skipif(not fe._core._zmq_reader_available, reason="built without ZeroMQ")
def test_cancel_over_zeromq(short_dir):
    endpoint = f"ipc://{short_dir}/ev"
    with fe.EventReader(f"zmq+{endpoint}") as reader:
        reader.start()
        trainer = Trainer(short_dir, "ctl-zmq", f"zmq+{endpoint}")
        try:
            # The subscriber joins a publisher that binds after it (ZeroMQ reconnects by itself).
            assert wait_for(lambda: reader.tracker.run("ctl-zmq") is not None)
            result = ctl("cancel", "ctl-zmq", "--zmq", endpoint)
            assert result.returncode == 0, result.stderr
            assert "via zmq" in result.stdout and "command_received" in result.stdout
            assert trainer.finish().startswith("done")
        finally:
            trainer.kill()
        ok = wait_for(lambda: (reader.tracker.run("ctl-zmq") or {}).get("status") == "cancelled")
        assert ok, ([e["event_type"] for e in reader.buffer.since(0).events][-8:], reader.tracker.run("ctl-zmq"))
        events = list(reader.buffer.since(0).events)
    check_cancelled(events, "ctl-zmq")


def test_pause_then_resume_then_cancel_from_python(short_dir):
    file = short_dir / "events.jsonl"
    control = str(short_dir / "control")
    trainer = Trainer(short_dir, "ctl-pause", str(file))
    try:
        assert ctl("pause", "ctl-pause", "--control-dir", control).returncode == 0
        assert trainer.expect("paused")
        listed = fe.list_control_endpoints(control)
        assert listed[0]["run_id"] == "ctl-pause" and listed[0]["status"]["paused"] is True
        text = ctl("list", "--control-dir", control).stdout
        assert "ctl-pause" in text and "paused" in text
        # Held: no progress while paused.
        before = sum(1 for e in fe.read_events(file) if e["event_type"] == "progress")
        time.sleep(0.3)
        assert sum(1 for e in fe.read_events(file) if e["event_type"] == "progress") == before
        ack = fe.send_command("ctl-pause", "resume", control_dir=control)
        assert ack["via"] == "control" and not ack["duplicate"]
        assert trainer.expect("resumed")
        assert wait_for(lambda: sum(1 for e in fe.read_events(file) if e["event_type"] == "progress") > before + 2)
        ack = fe.send_command("ctl-pause", "cancel", control_dir=control)
        assert trainer.finish().startswith("done")
    finally:
        trainer.kill()
    events = list(fe.read_events(file))
    done = [(e["command"], e["outcome"]) for e in events if e["event_type"] == "command_done"]
    assert done == [("pause", "ok"), ("resume", "ok"), ("cancel", "ok")]
    check_cancelled(events, "ctl-pause")


def test_unknown_run_and_bad_usage_exit_1(short_dir):
    result = ctl("cancel", "no-such-run", "--control-dir", str(short_dir / "control"), timeout=2)
    assert result.returncode == 1
    assert "unknown run no-such-run" in result.stderr
    result = ctl("send", "r", "bad name!", "--control-dir", str(short_dir))
    assert result.returncode == 1 and "command name" in result.stderr
    assert ctl("frobnicate", "r").returncode == 1
    with pytest.raises(fe.CommandError) as raised:
        fe.send_command("no-such-run", "cancel", control_dir=str(short_dir / "control"), timeout=1)
    assert raised.value.unknown_run and "unknown run no-such-run" in str(raised.value)
    with pytest.raises(ValueError):
        fe.send_command("r", "bad name!", control_dir=str(short_dir))


def test_event_reader_send_command_relays_to_its_emitters(short_dir):
    sock = str(short_dir / "events.sock")
    with fe.EventReader(f"unix://{sock}") as reader:
        with fe.TrainingEventEmitter("py-relay", f"unix://{sock}", control_endpoint="off", signal_hook=False) as em:
            em.emit_heartbeat()
            assert wait_for(lambda: bool(reader.poll(0.05)) or reader.tracker.run("py-relay") is not None)
            got: List[Any] = []
            em.on_command(got.append)
            ack = reader.send_command("py-relay", "checkpoint", {"tag": "best"})
            assert ack["via"] == "relay" and ack["received"][0]["arg"] == {"tag": "best"}
            assert wait_for(lambda: em.emit_heartbeat() and bool(got))
            assert got[0].name == "checkpoint" and got[0].id == ack["id"]
            with pytest.raises(fe.CommandError):
                reader.send_command("nobody", "cancel", timeout=2)


def nobody_uid() -> int:
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        pytest.skip("no user 'nobody' to run the other-user client as")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another uid (setuid to nobody)")
def test_another_user_cannot_send(short_dir):
    file = short_dir / "events.jsonl"
    control = short_dir / "control"
    uid = nobody_uid()
    trainer = Trainer(short_dir, "ctl-perm", str(file))
    # The installed events-ctl may lie where nobody cannot exec it (CI installs into /root's pyenv):
    # nobody runs a copy from a directory it can read.
    bin_dir = Path(tempfile.mkdtemp(prefix="fe-ctl-bin-"))
    try:
        os.chmod(bin_dir, 0o755)
        nobody_ctl = bin_dir / "events-ctl"
        shutil.copy2(events_ctl(), nobody_ctl)
        os.chmod(nobody_ctl, 0o755)

        def ctl_as_nobody(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([str(nobody_ctl), *args, "--timeout", "2"], capture_output=True, text=True,
                                  preexec_fn=lambda: os.setuid(uid))

        # The directory is 0700 and the socket 0600: nobody cannot even reach the endpoint.
        os.chmod(short_dir, 0o755)
        refused = ctl_as_nobody("cancel", "ctl-perm", "--control-dir", str(control))
        assert refused.returncode != 0, refused.stdout
        assert refused.stderr.startswith("events-ctl:"), refused.stderr  # it ran, and refused
        # With the file modes opened up, the emitter's SO_PEERCRED check still refuses the peer.
        os.chmod(control, 0o755)
        for sock in control.glob("*.sock"):
            os.chmod(sock, 0o777)
        refused = ctl_as_nobody("cancel", "ctl-perm", "--control-dir", str(control))
        assert refused.returncode == 2, refused.stderr
        # The trainer's own user still gets through.
        assert ctl("cancel", "ctl-perm", "--control-dir", str(control)).returncode == 0
        assert trainer.finish().startswith("done")
    finally:
        trainer.kill()
        shutil.rmtree(bin_dir, ignore_errors=True)
    received = [e for e in fe.read_events(file) if e["event_type"] == "command_received"]
    assert len(received) == 1  # only the owner's cancel
