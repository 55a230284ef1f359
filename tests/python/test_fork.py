"""fork(): DataLoader workers (fork start method) emit through the inherited global emitter; each
child gets its own worker thread and its own gap-free seq run starting at 0."""

import os
import threading
import time
from collections import defaultdict

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import foxml_events as fe
from conftest import json_lines
import event_schema

ITEMS = 64

pytestmark = [
    # 4 workers on a 2-core machine is the point of the test, not a mistake.
    pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning"),
    # Python >= 3.12 warns on fork() in a process with threads; forking with the worker running is the case tested.
    pytest.mark.filterwarnings("ignore:.*use of fork\\(\\) may lead to deadlocks:DeprecationWarning"),
]


class EmittingDataset(Dataset):
    def __len__(self):
        return ITEMS

    def __getitem__(self, index):
        fe.log_metrics({"item": float(index)}, step=index)
        fe.emit_progress("loading", 100.0 * index / ITEMS, current_target=f"item-{index}")
        return torch.tensor([float(index)])


def by_pid(events):
    groups = defaultdict(list)
    for ev in events:
        groups[ev["pid"]].append(ev)
    return groups


def test_dataloader_fork_workers_emit(events_path):
    e = fe.init_training_events("run-fork", str(events_path))
    e.emit_run_start(config={"num_workers": 4})
    e.emit_stage_change(None, "training")
    stop = threading.Event()

    def chatter():  # keeps the parent's worker busy while the DataLoader forks
        while not stop.is_set():
            e.log("debug", "parent busy")
            time.sleep(0.0005)

    thread = threading.Thread(target=chatter)
    thread.start()
    try:
        loader = DataLoader(EmittingDataset(), batch_size=4, num_workers=4, multiprocessing_context="fork")
        seen = sorted(int(x) for batch in loader for x in batch.flatten())
    finally:
        stop.set()
        thread.join()
    assert seen == list(range(ITEMS))
    e.emit_run_complete()
    assert e.close(5.0).ok

    events = json_lines(events_path)
    event_schema.check(events)
    groups = by_pid(events)
    parent = groups.pop(os.getpid())
    assert [ev["seq"] for ev in parent] == list(range(len(parent)))
    assert parent[0]["event_type"] == "run_start" and parent[-1]["event_type"] == "run_complete"
    assert e.stats()["emitted"] == len(parent) and e.stats()["dropped"] == 0

    assert len(groups) == 4, f"expected 4 worker pids, got {sorted(groups)}"
    items = []
    for pid, evs in groups.items():
        assert [ev["seq"] for ev in evs] == list(range(len(evs))), f"worker {pid}: seq not gap-free from 0"
        assert {ev["run_id"] for ev in evs} == {"run-fork"}
        assert {ev["event_type"] for ev in evs} == {"metrics", "progress"}
        items += [ev["step"] for ev in evs if ev["event_type"] == "metrics"]
    assert sorted(items) == list(range(ITEMS))


def run_child(body, timeout=20.0):
    """Forks, runs body() in the child and returns its exit status (a hang fails the test)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = body()
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung")


def test_os_fork_child_with_flush(events_path):
    e = fe.TrainingEventEmitter("run-osfork", str(events_path))
    for i in range(1000):  # the parent's worker is mid-flight when the fork happens
        e.emit_progress("training", float(i), step=i)

    def child():
        for i in range(10):
            e.log("info", f"child {i}")
        return 0 if e.flush(5.0).ok else 3

    assert run_child(child) == 0
    e.close()
    groups = by_pid(json_lines(events_path))
    parent = groups.pop(os.getpid())
    assert [ev["seq"] for ev in parent] == list(range(1000))
    (child_events,) = groups.values()
    assert [ev["seq"] for ev in child_events] == list(range(10))
    assert [ev["message"] for ev in child_events] == [f"child {i}" for i in range(10)]


def test_child_of_memory_sink_drops(tmp_path):
    e = fe.TrainingEventEmitter("run-mem-fork", "memory://")
    e.log("info", "parent")

    def child():
        queued = e.log("info", "child")
        return 0 if (not queued and e.stats()["dropped"] == 1) else 4

    assert run_child(child) == 0
    e.flush()
    assert [fe.decode_line(line)["message"] for line in e._memory_lines()] == ["parent"]
    e.close()


def test_after_fork_disable(events_path):
    e = fe.TrainingEventEmitter("run-disable", str(events_path), after_fork="disable")
    e.log("info", "parent")

    def child():
        return 0 if e.log("info", "child") is False else 5

    assert run_child(child) == 0
    e.close()
    assert [ev["message"] for ev in json_lines(events_path)] == ["parent"]


def emit_burst_and_return(count):
    for i in range(count):
        fe.log_metrics({"i": float(i)}, step=i)


def test_multiprocessing_child_delivers_before_os_exit(events_path):
    # multiprocessing children end in os._exit(), which skips atexit; the package's multiprocessing
    # exit hook must close the child's emitter so nothing queued is lost.
    import multiprocessing

    fe.init_training_events("run-mp", str(events_path), queue_capacity=1 << 16)
    fe.log("info", "parent")
    process = multiprocessing.get_context("fork").Process(target=emit_burst_and_return, args=(20000,))
    process.start()
    process.join(60)
    assert process.exitcode == 0
    fe.close_training_events()
    groups = by_pid(json_lines(events_path))
    assert [ev["message"] for ev in groups.pop(os.getpid())] == ["parent"]
    (child,) = groups.values()
    assert [ev["seq"] for ev in child] == list(range(20000))
