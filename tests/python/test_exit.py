"""Interpreter exit delivers with a deadline and never hangs, even when the consumer never reads."""

import os
import socket
import subprocess
import sys
import textwrap
import time

from conftest import json_lines

EXIT_TIMEOUT = 1.0
# Generous: start-up of a fresh interpreter on a loaded 2-core machine, plus the exit deadline. A hang
# (a close without a deadline, or a second full wait at finalization) blows through it.
LIMIT = 30.0

CHILD = textwrap.dedent("""
    import sys, foxml_events as fe
    e = fe.init_training_events("run-exit", sys.argv[1])
    for i in range(200000):                  # far more than a pipe or socket buffer holds
        e.log_metrics({"loss": 0.5, "acc": 0.25}, step=i)
    # `emitted` counts these calls alone; the library's own `dropped` reports are `generated`.
    print("emitted", e.stats()["emitted"], flush=True)
    # no close(): interpreter exit must deliver what it can within FOXML_EVENTS_EXIT_TIMEOUT
""")


def run_child(sink):
    env = {**os.environ, "FOXML_EVENTS_EXIT_TIMEOUT": str(EXIT_TIMEOUT)}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", CHILD, sink], capture_output=True, text=True, timeout=LIMIT,
                            env=env)
    return result, time.monotonic() - started


def test_a_fifo_at_the_event_file_path_is_refused_at_init(tmp_path):
    # A FIFO (a bad FOXML_TRAINING_EVENT_FILE, or a planted one) used to block the emitter's
    # constructor forever when nobody read it, and the worker's write() when its reader stalled.
    # It is refused at set-up, naming the path; the never-reading consumer's exit deadline is
    # covered by the Unix socket test below. Run in a child: the old code hangs in open().
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    child = textwrap.dedent("""
        import sys, foxml_events as fe
        try:
            fe.init_training_events("run-fifo", sys.argv[1])
        except OSError as e:
            print("refused", e, flush=True)
    """)
    result = subprocess.run([sys.executable, "-c", child, str(fifo)], capture_output=True, text=True, timeout=LIMIT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("refused"), result.stdout
    assert "not a regular file" in result.stdout and str(fifo) in result.stdout


def test_exit_delivers_everything_to_a_file(events_path):
    result, _ = run_child(str(events_path))
    assert result.returncode == 0, result.stderr
    events = json_lines(events_path)
    # The queue (16384 slots) overflows at this rate, so some events are dropped; every seq must be
    # either written or inside a `dropped` report, and the last events are delivered at exit.
    written = [ev["seq"] for ev in events if ev["event_type"] == "metrics"]
    assert written == sorted(set(written)) and written[0] == 0
    dropped = [ev for ev in events if ev["event_type"] == "dropped"]
    for ev in dropped:
        assert ev["first_seq"] <= ev["last_seq"] and ev["last_seq"] - ev["first_seq"] + 1 >= ev["count"]
    assert len(written) + sum(ev["count"] for ev in dropped) == 200000


def test_exit_with_a_unix_socket_listener_that_never_reads(tmp_path):
    # A real listener accepts the connection and never reads (nor acknowledges): the socket buffer
    # fills, and the trainer's interpreter must still exit within the deadline.
    path = tmp_path / "events.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(8)
    listener.settimeout(0.05)
    accepted = []
    proc = subprocess.Popen([sys.executable, "-c", CHILD, f"unix://{path}"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "FOXML_EVENTS_EXIT_TIMEOUT": str(EXIT_TIMEOUT)})
    deadline = time.monotonic() + LIMIT
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                connection, _ = listener.accept()
                accepted.append(connection)  # held open, never read
            except socket.timeout:
                pass
        exited = proc.poll() is not None
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate()
        for connection in accepted:
            connection.close()
        listener.close()
    assert exited, "the trainer did not exit"
    assert proc.returncode == 0, err
    assert out.split() == ["emitted", "200000"]
    assert accepted, "the trainer never connected"
