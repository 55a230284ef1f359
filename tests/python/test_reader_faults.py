"""The Python EventReader under faults, through the C++ reader (bindings/python/reader_live.cpp):
dropped reports that interleave with written events, a FIFO at a followed path, and Ctrl-C while
a ZeroMQ reader waits."""

import json
import os
import subprocess
import sys

import pytest

import foxml_events as fe
from foxml_events import _core
from test_live_reader import interrupted_by_ctrl_c

DEADLINE = 30.0  # seconds; a loaded 2-core machine, never a measure of speed


def _line(seq, event_type="heartbeat", **extra):
    event = {"event_type": event_type, "run_id": "r1", "timestamp": "2026-01-21T10:00:00.000000+00:00",
             "seq": seq, "pid": 7, "host": "h", "rank": 0, "world_size": 1}
    event.update(extra)
    return json.dumps(event, separators=(",", ":")) + "\n"


def test_a_dropped_report_never_turns_later_events_into_duplicates(tmp_path):
    # Seqs 10, 20 and 30 were dropped; the report (seq 100) covers 10..30, and threads that took
    # seqs 21..29 wrote them only after it. Every written event is new.
    dropped = {10, 20, 30}
    early = [s for s in range(0, 20) if s not in dropped]
    late = [s for s in range(21, 100) if s not in dropped]
    path = tmp_path / "events.jsonl"
    with open(path, "w") as f:
        for s in early:
            f.write(_line(s))
        f.write(_line(100, "dropped", count=3, first_seq=10, last_seq=30))
        for s in late:
            f.write(_line(s))
    reader = fe.EventReader(path, follow=False)
    seqs = [e["seq"] for e in reader]
    assert sorted(seqs) == sorted(early + late + [100])
    stats = reader.stats()
    assert stats["duplicates"] == 0
    assert stats["reported_drops"] == 3
    assert stats["gaps"] == 0
    assert stats["missing"] == 0


FOLLOW_FIFO = """
import sys, foxml_events as fe
n = sum(1 for _ in fe.follow(sys.argv[1], idle_timeout=1.0))
print("returned", n, flush=True)
"""


def test_follow_with_idle_timeout_returns_when_the_path_is_a_fifo(tmp_path):
    fifo = tmp_path / "events.jsonl"
    os.mkfifo(fifo)
    # A child, so a reader stuck in open() cannot hang the suite.
    proc = subprocess.run([sys.executable, "-c", FOLLOW_FIFO, str(fifo)], capture_output=True, text=True,
                          timeout=DEADLINE)
    assert proc.stdout.strip() == "returned 0", proc.stderr


def test_without_follow_a_fifo_is_a_clear_error(tmp_path):
    fifo = tmp_path / "events.jsonl"
    os.mkfifo(fifo)
    code = "import sys, foxml_events as fe\ntry:\n    fe.EventReader(sys.argv[1], follow=False)\nexcept OSError as e:\n    print('error', e)\n"
    proc = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True, text=True, timeout=DEADLINE)
    assert proc.stdout.startswith("error") and "not a regular file" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.skipif(not _core._zmq_reader_available, reason="built without the ZeroMQ reader")
def test_ctrl_c_interrupts_a_zmq_reader_with_keyboard_interrupt(tmp_path):
    interrupted_by_ctrl_c(f"zmq+ipc://{tmp_path / 'nobody.ipc'}", "next(iter(reader))")
