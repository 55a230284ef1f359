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


# ---- events-proxy: the real program, found where pip installed it (next to the interpreter's
# scripts) or on PATH.

import collections  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import selectors  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from conftest import REPO, installed_program  # noqa: E402
from foxml_events import _core  # noqa: E402


def _proxy_program():
    return installed_program("events-proxy")


needs_proxy = pytest.mark.skipif(
    not (_core._zmq_sinks_available() and _core._zmq_reader_available and _proxy_program()),
    reason="events-proxy and the ZeroMQ sink/reader are not built (no libzmq/cppzmq)")


class Proxy:
    """An events-proxy on four consecutive loopback ports (emitters, +1, subscribers, +1)."""

    def __init__(self, base: int, capture: Optional[Path] = None, *, bind_host: str = "127.0.0.1",
                 wrap: Sequence[str] = (), extra: Sequence[str] = ()) -> None:
        # wrap: a prefix that execs the proxy elsewhere (`ip netns exec NS`), keeping its pid.
        self.base = base
        self.emitters = f"tcp://{bind_host}:{base}"
        self.subscribers = f"tcp://{bind_host}:{base + 2}"
        command = [*wrap, _proxy_program(), "--emitters", self.emitters, "--subscribers", self.subscribers,
                   "--stats-interval", "0", *extra]
        if capture is not None:
            command += ["--capture", str(capture)]
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        self.lines: List[str] = []
        line = self._readline(timeout=20)
        if "emitters" not in line:
            # Reaped and its pipe closed: a Popen dropped unreaped warns (ResourceWarning) inside
            # whichever test the garbage collector happens to run in, and fails it.
            self.process.kill()
            self.process.communicate()
            raise OSError(f"events-proxy did not start: {line!r}")

    def _readline(self, timeout: float) -> str:
        with selectors.DefaultSelector() as sel:
            sel.register(self.process.stderr, selectors.EVENT_READ)
            if not sel.select(timeout):
                return ""
        line = self.process.stderr.readline()
        self.lines.append(line)
        return line

    def statistics(self) -> Dict[str, Any]:
        self.process.send_signal(signal.SIGUSR1)
        line = self._readline(timeout=20)
        assert line.startswith("events-proxy: {"), line
        return json.loads(line.split(": ", 1)[1])

    def stop(self) -> Tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        out = self.process.communicate(timeout=20)[1]
        return self.process.returncode, "".join(self.lines) + out


def start_proxy(capture: Optional[Path] = None, extra: Sequence[str] = ()) -> Proxy:
    for _ in range(20):
        try:
            # Below Linux's ephemeral range (32768-60999), where no client connection takes a port.
            return Proxy(random.randrange(20000, 32764, 4), capture, extra=extra)
        except OSError:
            continue  # a port in use: another base
    raise RuntimeError("no four free consecutive ports for events-proxy")


from typing import Any, Dict, List, Optional, Sequence, Tuple  # noqa: E402


def wait_until_subscribed(proxy: Proxy, reader: fe.EventReader) -> None:
    """Returns once the reader's subscription has reached the proxy's XPUB: until then the proxy
    forwards to nobody (PUB/SUB's slow joiner; CI once lost seqs 0-34 that way). A probe run emits
    until the reader sees it; callers measure the proxy's counters from after the probe."""
    probe = fe.TrainingEventEmitter("probe", "zmq+" + proxy.emitters)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            probe.log("info", "probe")
            ev = reader.next(0.1)
            while ev is not None and ev["run_id"] != "probe":
                ev = reader.next(0.1)
            if ev is not None:
                return
        raise AssertionError("the reader's subscription never reached events-proxy")
    finally:
        assert probe.close(10.0).ok
        while reader.next(0.3) is not None:  # the probe's later lines
            pass


@needs_proxy
def test_proxy_forwards_counts_captures_and_stops_cleanly(tmp_path):
    capture = tmp_path / "capture.jsonl"
    proxy = start_proxy(capture)
    try:
        # The emitter's close() only says libzmq took the lines; the proxy forwards them later, so
        # the reader waits up to 5 s for each.
        reader = fe.EventReader(proxy.subscribers, idle_timeout=5.0)
        wait_until_subscribed(proxy, reader)
        before = proxy.statistics()
        e = fe.TrainingEventEmitter("via-proxy", "zmq+" + proxy.emitters, rank=1, world_size=2)
        e.emit_run_start()
        for step in range(50):
            e.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        e.emit_run_complete()
        assert e.close(10.0).ok
        got = []
        for ev in reader:
            got.append(ev)
            if len(got) == 52:
                break
        assert [ev["run_id"] for ev in got] == ["via-proxy"] * 52
        assert [ev["seq"] for ev in got] == list(range(52))
        stats = proxy.statistics()
        for side, counter in (("emitters", "msg_in"), ("subscribers", "msg_out")):
            assert stats["events"][side][counter] - before["events"][side][counter] == 52
        assert stats["captured"] - before["captured"] == 52
    finally:
        rc, err = proxy.stop()
    assert rc == 0, err
    assert oct(capture.stat().st_mode & 0o777) == "0o600"
    captured = [ev for ev in json_lines(capture) if ev["run_id"] == "via-proxy"]
    assert [ev["seq"] for ev in captured] == list(range(52))


@needs_proxy
def test_proxy_refuses_a_port_in_use_with_a_clear_error():
    proxy = start_proxy()
    try:
        clash = subprocess.run([_proxy_program(), "--emitters", proxy.emitters, "--subscribers",
                                f"tcp://127.0.0.1:{proxy.base + 2 + 100}"], capture_output=True, text=True, timeout=20)
        assert clash.returncode == 1
        assert f"cannot bind '{proxy.emitters}'" in clash.stderr
    finally:
        proxy.stop()


@needs_proxy
def test_the_proxy_launcher_reaps_a_proxy_that_could_not_bind():
    # CI once failed two later tests on the unreaped Popen of a proxy whose random port was taken.
    proxy = start_proxy()
    try:
        with pytest.raises(OSError, match="cannot bind"):
            Proxy(proxy.base)
        gc.collect()  # an unreaped Popen warns here, and pytest fails this test on it
    finally:
        proxy.stop()


@needs_proxy
def test_proxy_down_for_the_whole_run_costs_no_wait_and_the_tee_file_keeps_everything(tmp_path):
    base = start_proxy()
    base.stop()  # its ports are free now: nothing listens there for the whole run
    path = tmp_path / "run.jsonl"
    started = time.monotonic()
    e = fe.TrainingEventEmitter("down", f"{'zmq+' + base.emitters}|file://{path}", close_timeout=1.0)
    created = time.monotonic() - started
    e.emit_run_start()
    for step in range(300):
        e.log_metrics({"loss": 1.0}, step=step)
    e.emit_run_complete()
    emitted = time.monotonic() - started - created
    closing = time.monotonic()
    e.close()
    closed = time.monotonic() - closing
    # Liveness bounds, generous for a shared machine: no network wait anywhere.
    assert created < 3.0 and emitted < 3.0 and closed < 1.0 + 3.0
    kinds = collections.Counter(ev["event_type"] for ev in json_lines(path))
    assert kinds["metrics"] == 300 and kinds["run_start"] == 1 and kinds["run_complete"] == 1
    stats = e.stats()
    assert stats["emitted"] + stats["generated"] >= stats["written"] + stats["dropped"]


@needs_proxy
def test_process_exit_with_the_proxy_down_is_bounded_by_the_close_deadline(tmp_path):
    base = start_proxy()
    base.stop()
    script = (
        "import foxml_events as fe\n"
        f"fe.init_training_events('exit-down', 'zmq+{base.emitters}', close_timeout=1.0, signal_hook=False)\n"
        "for i in range(1000): fe.log_metrics({'x': 1.0}, step=i)\n")
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert time.monotonic() - started < 20.0  # interpreter start included; the emitter's share is ~1 s


def _torch_ready() -> bool:
    try:
        import sklearn  # noqa: F401
        import torch.distributed  # noqa: F401
    except ImportError:
        return False
    return True


@needs_proxy
@pytest.mark.skipif(not _torch_ready(), reason="torch (with torch.distributed) and scikit-learn are needed")
def test_ddp_digits_four_gloo_ranks_through_the_proxy_to_two_subscribers(tmp_path):
    proxy = start_proxy(tmp_path / "capture.jsonl")
    slow = 2
    readers = [fe.EventReader(proxy.subscribers, idle_timeout=0.2) for _ in range(2)]
    seen: List[set] = [set(), set()]
    slowest: List[int] = []
    runs: List[str] = []
    stop = threading.Event()

    def consume(i: int) -> None:
        while not stop.is_set():
            for ev in readers[i]:
                seen[i].add((ev["rank"], ev["seq"]))
                if i == 0:
                    runs.append(ev["run_id"])
                    state = readers[0].tracker.run(ev["run_id"])
                    steps = {r: st["step"] for r, st in state["ranks"].items()} if state else {}
                    others = {steps.get(r) for r in range(4) if r != slow}
                    # Every other rank has reported step k and the slow one has not: it alone lags.
                    if ev["event_type"] == "progress" and len(others) == 1 and None not in others and \
                            (steps.get(slow) or 0) < others.pop():
                        slowest.append(state["slowest_rank"])

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    try:
        env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}
        env["OMP_NUM_THREADS"] = "1"
        done = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "4",
             str(REPO / "examples/python/ddp_digits.py"), "--events", "zmq+" + proxy.emitters, "--max-steps", "6",
             "--slow-rank", str(slow), "--slow-delay", "0.3", "--stats-dir", str(tmp_path)],
            env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-4000:]
        stats = {r: json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(4)}
        expected = {(r, seq) for r, s in stats.items() for seq in range(s["emitted"] + s["generated"])}
        assert all(s["dropped"] == 0 for s in stats.values())
        assert {s["run_id"] for s in stats.values()} == {runs[0]}  # torchrun's run id, on every rank
        assert all(s["dropped_by_policy"] > 0 for r, s in stats.items() if r != 0)  # metrics: rank 0 only
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (seen[0] >= expected and seen[1] >= expected):
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        rc, err = proxy.stop()
    assert seen[0] == expected and seen[1] == expected
    assert rc == 0, err
    captured = json_lines(tmp_path / "capture.jsonl")
    assert {(ev["rank"], ev["seq"]) for ev in captured} == expected
    assert all(ev["local_rank"] == ev["rank"] and ev["world_size"] == 4 for ev in captured)  # one host
    run = readers[0].tracker.run(runs[0])
    assert run["world_size"] == 4 and sorted(run["ranks"]) == [0, 1, 2, 3]
    assert run["status"] == "completed"
    # Whenever the slow rank alone lagged, the tracker named it the straggler.
    assert len(slowest) >= 3 and set(slowest) == {slow}, slowest
    assert len(set(runs)) == 1
