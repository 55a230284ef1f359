"""Dead or slow, from Python: a real trainer process writing to a Unix socket listener; SIGKILL
makes its run `killed` in the tracker, SIGSTOP `stale` and SIGCONT `running` again. Ranks of one
run in the run dicts."""

import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

import foxml_events as fe

DEADLINE = 30.0  # liveness only: generous on a shared machine
INTERVAL = 0.2  # the trainer's heartbeat interval, short so the test takes seconds

TRAINER = """
import sys, time
import foxml_events as fe
e = fe.TrainingEventEmitter("victim", sys.argv[1], heartbeat_interval=float(sys.argv[2]))
e.emit_run_start(name="trainer")
print("ready", flush=True)
step = 0
while True:
    step += 1
    e.emit_progress("training", min(99.0, step / 10), step=step)
    time.sleep(0.05)
"""


@pytest.fixture
def listener():
    # Unix socket paths are limited to 107 bytes: a short directory, not pytest's tmp_path.
    with tempfile.TemporaryDirectory(prefix="fxl-") as d:
        sock = f"{d}/ev.sock"
        with fe.EventReader(f"unix://{sock}") as reader:
            yield reader, sock


@pytest.fixture
def trainer(listener):
    _, sock = listener
    proc = subprocess.Popen([sys.executable, "-c", TRAINER, f"unix://{sock}", str(INTERVAL)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        proc.kill()
        proc.wait(DEADLINE)
        proc.stdout.close()


def poll_until(reader, condition, what):
    end = time.monotonic() + DEADLINE
    while True:
        reader.poll(0.05)
        run = reader.tracker.run("victim")
        if run is not None and condition(run):
            return run
        assert time.monotonic() < end, f"{what}: {run}"


def test_a_trainer_killed_with_sigkill_is_killed_within_two_heartbeat_intervals(listener, trainer):
    reader, _ = listener
    run = poll_until(reader, lambda r: r["ranks"] and r["ranks"][0]["events"] >= 5, "the trainer's events")
    rank = run["ranks"][0]
    assert (rank["pid"], rank["host"]) == (trainer.pid, os.uname().nodename)
    assert rank["heartbeat_interval_s"] == pytest.approx(INTERVAL)
    assert rank["stale_after_heartbeats"] == 3
    assert rank["process_start_time"] == pytest.approx(time.time(), abs=120)
    assert run["status"] == "running"

    trainer.kill()
    trainer.wait(DEADLINE)
    for _ in range(3):
        reader.poll(0.1)  # what it wrote before it died
    last_seen = reader.tracker.run("victim")["last_seen"]
    # Two intervals after its last event, on the reader's clock: killed (stale would take three).
    reader.tracker.check_stale(last_seen + 2 * INTERVAL)
    run = reader.tracker.run("victim")
    assert run["status"] == "killed"
    assert run["ranks"][0]["status"] == "killed"
    assert run["running"] is False


def test_sigstop_makes_the_run_stale_and_sigcont_running_again(listener, trainer):
    reader, _ = listener
    poll_until(reader, lambda r: r["status"] == "running" and r["ranks"][0]["events"] >= 3, "the trainer's events")
    os.kill(trainer.pid, signal.SIGSTOP)
    try:
        run = poll_until(reader, lambda r: r["status"] == "stale", "stale after SIGSTOP")
        assert run["ranks"][0]["status"] == "stale"
        assert run["stale_ranks"] == [0]
        assert run["running"] is True  # stale is still a run in progress, maybe a slow one
    finally:
        os.kill(trainer.pid, signal.SIGCONT)
    poll_until(reader, lambda r: r["status"] == "running", "running after SIGCONT")
    assert reader.tracker.run("victim")["stale_ranks"] == []


def test_ranks_of_one_run_in_the_python_tracker(tmp_path):
    path = tmp_path / "ddp.jsonl"
    # One process stands in for three: a host each, as readers tell emitters apart by (host, pid).
    emitters = [fe.TrainingEventEmitter("ddp", str(path), rank=r, world_size=3, host=f"node{r}") for r in range(3)]
    for r, e in enumerate(emitters):
        e.emit_run_start()
        e.emit_progress("training", 20.0 if r == 1 else 40.0, step=2 if r == 1 else 4)
    for e in emitters:
        assert e.close(5.0).ok
    with fe.EventReader(path, follow=False) as reader:
        list(reader)
        run = reader.tracker.run("ddp")
    assert run["world_size"] == 3
    assert sorted(run["ranks"]) == [0, 1, 2]
    assert run["slowest_rank"] == 1
    assert run["ranks"][1]["step"] == 2 and run["ranks"][1]["progress_pct"] == 20.0
    assert run["stale_ranks"] == []
    assert run["ranks"][2]["host"] == "node2"
