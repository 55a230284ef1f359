"""The bound C++ reader (EventReader) against real files, real Unix sockets and real ZeroMQ.

No timing asserts: every wait is bounded by a generous deadline and polls for a condition.
"""

import os
import threading
import time

import pytest

import foxml_events as fe
from foxml_events import _core

DEADLINE = 30.0  # seconds; a loaded 2-core machine, never a measure of speed


def wait_until(condition, what, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.01)


def drain(reader, until, deadline=DEADLINE):
    """Pulls events from a pull-mode reader until `until(events)` holds."""
    events = []
    end = time.monotonic() + deadline
    while not until(events):
        assert time.monotonic() < end, f"timed out; got {len(events)} events"
        event = reader.next(timeout=0.1)
        if event is not None:
            events.append(event)
    return events


def short_sock_dir(tmp_path):
    # A Unix socket path holds at most 107 bytes; pytest's tmp_path can be longer.
    path = tmp_path if len(str(tmp_path)) < 80 else None
    if path is None:
        import tempfile

        path = tempfile.mkdtemp(prefix="fe-")
    return str(path)


def emit_paced(reader, emitters, start, stop, lines_per_step, chunk=50):
    """log_metrics steps [start, stop) on every emitter, a chunk at a time, waiting after each chunk
    for the reader to have read every line so far. A socket sink never blocks the trainer: with no
    fallback, what a full socket buffer refuses is dropped (and reported), so the test keeps the
    listener's buffer from filling on a loaded machine instead of relying on luck."""
    base = reader.stats()["lines"]
    for first in range(start, stop, chunk):
        last = min(first + chunk, stop)
        for step in range(first, last):
            for e in emitters:
                e.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        for e in emitters:
            e.flush(5.0)
        want = base + (last - start) * lines_per_step
        wait_until(lambda: reader.stats()["lines"] >= want, f"{want} lines")


def test_follow_a_file_while_an_emitter_writes_it(events_path):
    e = fe.TrainingEventEmitter("run-follow", str(events_path))
    e.log("info", "before the reader")
    e.flush()
    seen = []
    reader = fe.follow(f"file://{events_path}", idle_timeout=DEADLINE)

    def consume():
        for event in reader:
            seen.append(event)
            if event["event_type"] == "run_complete":
                break

    thread = threading.Thread(target=consume)
    thread.start()  # the reader waits without the GIL, so this thread keeps emitting
    for i in range(200):
        e.emit_progress("training", i / 2, step=i, total_steps=200)
        if i % 50 == 0:
            e.flush()
    e.emit_run_complete()
    e.close()
    thread.join(DEADLINE)
    assert not thread.is_alive()
    reader.close()
    assert [ev["seq"] for ev in seen] == list(range(202))
    assert seen[0]["message"] == "before the reader" and seen[-1]["status"] == "success"
    assert reader.stats()["events"] == 202 and reader.stats()["malformed"] == 0
    assert reader.source == f"file://{events_path}"


def test_stop_ends_a_blocked_iteration(tmp_path):
    reader = fe.EventReader(tmp_path / "never.jsonl")  # follows a file that does not exist yet
    done = threading.Event()

    def consume():
        assert list(reader) == []
        done.set()

    thread = threading.Thread(target=consume)
    thread.start()
    time.sleep(0.2)
    reader.stop()
    thread.join(DEADLINE)
    assert done.is_set()
    reader.close()


def test_source_counters_are_there_before_the_first_poll(tmp_path):
    # stats()["source"] was {} until the pump's first poll: a caller reading a counter right after
    # start() raced it (KeyError 'accepted' under load).
    sock = f"{short_sock_dir(tmp_path)}/early.sock"
    with fe.EventReader(f"unix://{sock}") as reader:
        assert reader.stats()["source"]["accepted"] == 0
    events = tmp_path / "early.jsonl"
    events.write_text("")
    with fe.EventReader(str(events), follow=True) as reader:
        assert reader.stats()["source"]["bytes"] == 0


def test_socket_source_two_emitters_with_acks_and_dedup(tmp_path):
    sock = f"{short_sock_dir(tmp_path)}/x.sock"
    per_emitter = 500
    with fe.EventReader(f"unix://{sock}") as reader:
        reader.start()
        # Written counts are compared exactly: no heartbeats (on by default with a socket sink).
        a = fe.TrainingEventEmitter("run-a", f"unix://{sock}", heartbeat_interval=0)
        b = fe.TrainingEventEmitter("run-b", f"unix://{sock}", heartbeat_interval=0)
        # The same emitter through two connections (a tee): every line arrives twice, once kept.
        c = fe.TrainingEventEmitter("run-c", f"unix://{sock} | unix://{sock}", heartbeat_interval=0)
        # Sockets connect lazily, at a first write they may refuse: warm up until all four are open.
        end = time.monotonic() + DEADLINE
        while reader.stats()["source"]["accepted"] < 4:
            assert time.monotonic() < end, "the emitters never connected"
            for e in (a, b, c):
                e.emit_heartbeat()
                e.flush(1.0)
            time.sleep(0.02)
        before = {e.run_id: e.stats()["written"] for e in (a, b, c)}
        emit_paced(reader, (a, b, c), 0, per_emitter, lines_per_step=4)
        reports = [e.close(5.0) for e in (a, b, c)]
        assert all(r.ok for r in reports)
        for e in (a, b, c):
            assert e.stats()["written"] - before[e.run_id] == per_emitter
        wait_until(lambda: reader.stats()["duplicates"] >= per_emitter, "run-c's second copies")
        stats = reader.stats()
        assert stats["emitters"] == 3 and stats["gaps"] == 0 and stats["malformed"] == 0
        assert stats["source"]["accepted"] == 4 and stats["source"]["acks"] > 0
        events, _, missed = reader.buffer.since(0)
        assert missed == 0
        assert len({(ev["run_id"], ev["pid"], ev["seq"]) for ev in events}) == len(events)  # no doubles
        for run in ("run-a", "run-b", "run-c"):
            assert [ev["step"] for ev in events if ev["run_id"] == run and ev["event_type"] == "metrics"] == list(
                range(per_emitter))
        assert {r["run_id"] for r in reader.tracker.runs()} == {"run-a", "run-b", "run-c"}
    assert not os.path.exists(sock)  # the server removes its socket file at close


@pytest.mark.skipif(not (_core._zmq_sinks_available() and _core._zmq_reader_available),
                    reason="this build has no ZeroMQ component")
def test_zmq_subscribe_with_a_run_filter():
    zmq = pytest.importorskip("zmq")
    ctx = zmq.Context()
    # The documented multi-host layout: emitters connect to an XSUB/XPUB proxy, readers subscribe.
    xsub, xpub = ctx.socket(zmq.XSUB), ctx.socket(zmq.XPUB)
    xsub.bind("tcp://127.0.0.1:*")
    xpub.bind("tcp://127.0.0.1:*")
    up, down = xsub.last_endpoint.decode(), xpub.last_endpoint.decode()
    running = threading.Event()
    running.set()

    def proxy():
        poller = zmq.Poller()
        poller.register(xsub, zmq.POLLIN)
        poller.register(xpub, zmq.POLLIN)
        while running.is_set():
            for sock, _ in poller.poll(20):
                if sock is xsub:
                    xpub.send_multipart(xsub.recv_multipart())
                else:
                    xsub.send_multipart(xpub.recv_multipart())

    thread = threading.Thread(target=proxy)
    thread.start()
    want = fe.TrainingEventEmitter("want", "zmq+" + up)
    other = fe.TrainingEventEmitter("other", "zmq+" + up)
    everything = fe.EventReader("zmq+" + down)
    filtered = fe.EventReader(down, runs=["want"], types=["heartbeat", "metrics"])
    try:
        # PUB/SUB joins late: send heartbeats until each path is known to be open.
        for emitter, reader, run in ((want, filtered, "want"), (other, everything, "other"),
                                     (want, everything, "want")):
            end = time.monotonic() + DEADLINE
            while True:
                assert time.monotonic() < end, f"no heartbeat of {run} reached the subscriber"
                emitter.emit_heartbeat()
                event = reader.next(timeout=0.05)
                if event is not None and event["run_id"] == run:
                    break
        for i in range(50):
            want.log_metrics({"x": float(i)}, step=i)
            other.log_metrics({"x": float(i)}, step=i)
            want.log("info", "not subscribed")
        got = drain(filtered, lambda evs: sum(ev["event_type"] == "metrics" for ev in evs) == 50)
        all_runs = drain(everything, lambda evs: {ev["run_id"] for ev in evs if ev["event_type"] == "metrics"}
                         == {"want", "other"} and len([ev for ev in evs if ev["event_type"] == "metrics"]) == 100)
        assert {ev["run_id"] for ev in got} == {"want"}
        assert {ev["event_type"] for ev in got} <= {"heartbeat", "metrics"}
        assert [ev["step"] for ev in got if ev["event_type"] == "metrics"] == list(range(50))
        assert {ev["run_id"] for ev in all_runs} == {"want", "other"}
        # The filter is a subscription: the other run's messages never reached the filtered reader.
        messages = filtered.stats()["source"]["messages"]
        assert messages == filtered.stats()["lines"]
        assert filtered.tracker.run("other") is None
    finally:
        for e in (want, other):
            e.close(2.0)
        everything.close()
        filtered.close()
        running.clear()
        thread.join(DEADLINE)
        xsub.close(0)
        xpub.close(0)
        ctx.term()


def emit_training_sequence(e):
    e.emit_run_start(config={"lr": 0.01}, name="digits", total_steps=4, total_epochs=2)
    with e.stage("dataset_loading"):
        e.emit_progress("dataset_loading", 100.0)
    with e.stage("training"):
        for step in range(1, 5):
            e.log_metrics({"loss": 1.0 / step, "acc": 0.2 * step}, step=step, epoch=(step - 1) // 2)
            e.emit_progress("training", 25.0 * step, current_target="digits", targets_complete=0,
                            targets_total=1, step=step, total_steps=4, epoch=(step - 1) // 2, total_epochs=2)
        e.emit_error("loss spike", "Warning", recoverable=True)
    e.emit_target_complete("digits", "success", models_trained=1, best_auc=0.97, metrics={"val_acc": 0.9})
    e.emit_run_complete("success", duration_s=3.5)


def test_tracker_after_a_training_sequence_and_the_seed_status(events_path):
    e = fe.TrainingEventEmitter("run-track", str(events_path), host="h")
    emit_training_sequence(e)
    e.close()
    reader = fe.EventReader(events_path, follow=False, recent_lines=5)
    events = list(reader)
    assert reader.finished and events[-1]["event_type"] == "run_complete"
    (run,) = reader.tracker.runs()
    assert run == reader.tracker.run("run-track") == reader.tracker.latest()
    assert reader.tracker.run("nope") is None
    assert (run["run_id"], run["name"], run["status"], run["running"]) == ("run-track", "digits", "completed", False)
    assert (run["final_status"], run["duration_s"]) == ("success", 3.5)
    assert [s["name"] for s in run["stages"]] == ["dataset_loading", "idle", "training", "idle"]
    assert run["stage"] == "idle" and all(s["duration_s"] >= 0 for s in run["stages"])
    assert all(s["end"] is not None for s in run["stages"])  # run_complete closes the last stage
    assert (run["progress_pct"], run["step"], run["total_steps"], run["epoch"], run["total_epochs"]) == (
        100.0, 4, 4, 1, 2)
    assert run["metrics"] == {"loss": 0.25, "acc": pytest.approx(0.8)}
    assert run["metric_history"]["loss"] == [(1, 1.0), (2, 0.5), (3, 1 / 3), (4, 0.25)]
    (target,) = run["targets"]
    assert target == {"target": "digits", "status": "success", "models_trained": 1, "best_auc": 0.97,
                      "metrics": {"val_acc": 0.9}}
    (error,) = run["errors"]
    assert (error["error_message"], error["error_type"], error["recoverable"]) == ("loss spike", "Warning", True)
    assert run["first_seen"] <= run["last_seen"] and run["events"] == len(events)
    assert "eta_s" in run and "current_target" in run

    status = reader.tracker.status()
    assert status["running"] is False and status["run_id"] == "run-track"
    assert status["stage"] == "idle" and status["progress_pct"] == 100.0
    assert [ev["seq"] for ev in status["events"]] == [ev["seq"] for ev in events[-5:]]
    assert status["events"][-1]["event_type"] == "run_complete"


def test_late_joiner_reads_history_then_live(tmp_path):
    sock = f"{short_sock_dir(tmp_path)}/late.sock"
    half = 300
    with fe.EventReader(f"unix://{sock}", buffer_size=4 * half) as reader:
        reader.start()
        e = fe.TrainingEventEmitter("run-late", f"unix://{sock}")
        # The socket connects lazily, at a first write it may refuse: warm up until a line arrives.
        end = time.monotonic() + DEADLINE
        while reader.buffer.end == 0:
            assert time.monotonic() < end, "the emitter never connected"
            e.emit_heartbeat()
            e.flush(1.0)
            time.sleep(0.02)
        emit_paced(reader, (e,), 0, half, lines_per_step=1)

        seen = []
        history = reader.buffer.since(0)  # joins late: everything so far
        seen.extend(history.events)
        cursor = history.next
        done = threading.Event()

        def live():
            nonlocal cursor
            end = time.monotonic() + DEADLINE
            while not any(ev["event_type"] == "run_complete" for ev in seen) and time.monotonic() < end:
                batch = reader.buffer.wait(cursor, 0.2)
                assert batch.missed == 0
                seen.extend(batch.events)
                cursor = batch.next
            done.set()

        thread = threading.Thread(target=live)
        thread.start()
        emit_paced(reader, (e,), half, 2 * half, lines_per_step=1)
        e.emit_run_complete()
        e.close(5.0)
        thread.join(DEADLINE)
        assert done.is_set()
    # History then live is exactly what the reader accepted, in the same order: nothing missed or doubled.
    everything = reader.buffer.since(0)
    assert everything.missed == 0 and seen == everything.events
    seqs = [ev["seq"] for ev in seen]
    assert len(seqs) == len(set(seqs))
    assert [ev["step"] for ev in seen if ev["event_type"] == "metrics"] == list(range(2 * half))
    position = reader.buffer.find("run-late", seen[0]["host"], seen[0]["pid"], seqs[-1])
    assert everything.events[position]["seq"] == seqs[-1]


def test_malformed_lines_are_counted_with_positions(tmp_path):
    path = tmp_path / "mixed.jsonl"
    good = ('{"event_type":"log","run_id":"r","timestamp":"2026-01-21T10:00:00.123456+00:00","seq":%d,'
            '"pid":1,"host":"h","rank":0,"world_size":1,"level":"info","message":"m"}')
    lines = [good % 0, "not json", good % 1, '{"event_type":"log"}', good % 1, "[" * 100 + "]" * 100, good % 3]
    path.write_text("\n".join(lines) + "\n")
    reader = fe.EventReader(f"file://{path}", follow=False, max_depth=32)
    assert [ev["seq"] for ev in reader] == [0, 1, 3]
    stats = reader.stats()
    assert (stats["malformed"], stats["duplicates"], stats["events"], stats["lines"]) == (3, 1, 3, 7)
    assert [m["line"] for m in reader.malformed()] == [2, 4, 6]
    assert all(m["origin"] == f"file://{path}" and m["error"] for m in reader.malformed())
    assert reader.malformed()[0]["offset"] == len(lines[0]) + 1
    (gap,) = reader.gaps()  # seq 2 never came (declared at the end of the file)
    assert (gap["run_id"], gap["first_seq"], gap["last_seq"], gap["reported_drop"]) == ("r", 2, 2, False)


def test_bad_sources_raise():
    with pytest.raises(ValueError, match="carrier://x"):
        fe.EventReader("carrier://x")
    with pytest.raises(ValueError, match="file://relative"):
        fe.EventReader("file://relative")
    with pytest.raises(FileNotFoundError):
        fe.EventReader("/nonexistent/dir/events.jsonl", follow=False)
    with pytest.raises(ValueError, match="unknown event type 'nope'"):
        fe.EventReader("/tmp", types=["nope"])


INTERRUPTED = """
import signal, sys, foxml_events as fe
# A child started from a non-interactive shell's background job inherits SIGINT ignored, and Python
# then installs no handler: make Ctrl-C what it is in a terminal, so the test is about our wait.
signal.signal(signal.SIGINT, signal.default_int_handler)
reader = fe.EventReader(sys.argv[1])          # a source that never delivers an event
print("ready", flush=True)
try:
    {wait}
except KeyboardInterrupt:
    print("interrupted", flush=True)
except Exception as e:
    print("raised", type(e).__name__, e, flush=True)
"""


def interrupted_by_ctrl_c(source: str, wait: str) -> None:
    """Runs INTERRUPTED on `source` and sends SIGINT once the child is in `wait`: it must raise
    KeyboardInterrupt there and exit 0."""
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED.format(wait=wait), source],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # inside the wait (if not yet, the signal still lands before or during it)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()  # reaped, pipes closed: no ResourceWarning on a later test
    assert out.strip() == "interrupted", out + err
    assert proc.returncode == 0, err


@pytest.mark.parametrize("wait", ["next(iter(reader))", "reader.start(); reader.buffer.wait(0, 3600)"])
def test_ctrl_c_interrupts_a_wait(tmp_path, wait):
    interrupted_by_ctrl_c(str(tmp_path / "never.jsonl"), wait)  # a file that never appears


def test_stats_carry_every_counter_of_the_cpp_structs(tmp_path):
    """stats() is derived from the C++ stats structs: the stream's `evicted` and each source's own
    counters (a file's `not_regular`, a socket's `refused_no_fds` and `over_budget`) are there."""
    path = tmp_path / "events.jsonl"
    path.write_text("")
    with fe.EventReader(path, follow=False) as reader:
        list(reader)
        stats = reader.stats()
    assert {"lines", "bytes", "events", "malformed", "blank", "duplicates", "gaps", "missing", "reported_drops",
            "late", "emitters", "evicted", "missed"} <= stats.keys()
    assert stats["source"] == {"bytes": 0, "rotations": 0, "truncations": 0, "not_regular": 0}
    sock = f"{short_sock_dir(tmp_path)}/s.sock"
    with fe.EventReader(f"unix://{sock}") as reader:
        reader.poll(0.0)
        assert reader.stats()["source"] == {"accepted": 0, "open": 0, "rejected": 0, "refused_no_fds": 0,
                                            "over_budget": 0, "bytes": 0, "acks": 0, "control_clients": 0,
                                            "commands_relayed": 0, "commands_unknown_run": 0,
                                            "commands_refused": 0, "commands_dropped": 0, "acks_forwarded": 0,
                                            "control_dropped": 0}


def test_evicted_emitters_are_counted(tmp_path):
    path = tmp_path / "many.jsonl"
    good = ('{"event_type":"heartbeat","run_id":"r%d","timestamp":"2026-01-21T10:00:00.123456+00:00","seq":0,'
            '"pid":1,"host":"h","rank":0,"world_size":1}\n')
    path.write_text("".join(good % i for i in range(3)))
    reader = fe.EventReader(path, follow=False)
    # max_emitters is not a Python option; the default (65536) evicts nothing.
    assert [ev["run_id"] for ev in reader] == ["r0", "r1", "r2"]
    assert reader.stats()["evicted"] == 0 and reader.stats()["emitters"] == 3


def test_gaps_carry_the_count_of_a_drop_report(tmp_path):
    path = tmp_path / "gaps.jsonl"
    head = ('"run_id":"g","timestamp":"2026-01-21T10:00:00.123456+00:00","pid":1,"host":"h","rank":0,'
            '"world_size":1')
    lines = ['{"event_type":"heartbeat",%s,"seq":0}' % head,
             '{"event_type":"dropped",%s,"seq":1,"count":2,"first_seq":2,"last_seq":5,"reason":"queue_full"}' % head,
             '{"event_type":"heartbeat",%s,"seq":3}' % head,
             '{"event_type":"heartbeat",%s,"seq":6}' % head,
             '{"event_type":"heartbeat",%s,"seq":9}' % head]
    path.write_text("\n".join(lines) + "\n")
    reader = fe.EventReader(path, follow=False)
    list(reader)
    gaps = reader.gaps()
    assert all("count" in g for g in gaps)
    losses = [g for g in gaps if not g["reported_drop"]]
    # Missing: 2, 4, 5 (the report explains two of them) and 7, 8.
    assert [(g["first_seq"], g["last_seq"], g["count"]) for g in losses] == [(5, 5, 1), (7, 8, 2)]
    reports = [g for g in gaps if g["reported_drop"]]
    assert [(g["first_seq"], g["last_seq"], g["count"]) for g in reports] == [(2, 5, 2)]


def test_reader_defaults_come_from_the_cpp_reader():
    import inspect

    defaults = _core.reader_defaults
    params = inspect.signature(fe.EventReader).parameters
    assert params["buffer_size"].default == defaults["ring_size"] == 10000
    assert params["max_line_bytes"].default == defaults["max_line_bytes"] == (1 << 20) + 4096
    assert params["reorder_window"].default == defaults["reorder_window"]
    assert params["max_depth"].default == defaults["max_depth"]
    assert params["stale_after"].default == defaults["stale_after"]


def test_zmq_uris_and_bad_ones_raise_value_errors_naming_the_rule():
    with pytest.raises(ValueError, match="bad source URI 'tcp://localhost:99999': port '99999' is out of range"):
        fe.EventReader("tcp://localhost:99999")
    with pytest.raises(ValueError, match="always connects"):
        fe.EventReader("zmq+tcp://localhost:5555?bind=1")
    with pytest.raises(ValueError, match="unknown scheme 'carrier'"):
        fe.EventReader("carrier://x")


def test_run_dicts_carry_tags_config_logs_resources_throughput_and_metric_groups(events_path):
    e = fe.TrainingEventEmitter("run-rich", str(events_path), host="h", resources_interval=0.05)
    e.emit_run_start(config={"lr": 0.01, "price_per_hour": 2.5}, name="digits", tags=["cpu", "smoke"], total_steps=4)
    for step in range(1, 5):
        e.log_metrics({"train_loss": 1.0 / step, "val_loss": 1.5 / step, "lr": 0.01}, step=step)
        e.log("info", f"step {step}")

    def read_run():
        reader = fe.EventReader(events_path, follow=False)
        list(reader)
        return reader.tracker.run("run-rich")

    e.flush(5.0)
    run = read_run()
    end = time.monotonic() + DEADLINE
    while run is None or run["resources"] is None:  # the sampler thread's first sample
        assert time.monotonic() < end, "no resources sample"
        time.sleep(0.02)
        run = read_run()
    e.emit_run_complete("success")
    e.close()
    run = read_run()
    assert run["tags"] == ["cpu", "smoke"]
    assert run["config"] == {"lr": 0.01, "price_per_hour": 2.5}
    assert run["host"] == "h"
    assert run["started"] is not None and run["started"] <= run["last_seen"]
    assert 0 < run["elapsed_s"] <= run["last_seen"] - run["started"] + 1e-3  # ended: up to its run_complete
    assert "steps_per_s" in run
    assert [(log["level"], log["message"]) for log in run["logs"]] == [("info", f"step {s}") for s in range(1, 5)]
    assert set(run["logs"][0]) == {"time", "level", "message", "rank"}
    assert run["resources"]["cpu_pct"] is not None and run["resources"]["rss_bytes"] > 0
    assert isinstance(run["resources"]["gpus"], list)
    assert run["resource_history"]["rss_bytes"] and all(len(p) == 2 for p in run["resource_history"]["rss_bytes"])
    assert run["metric_groups"] == {"loss": {"train": "train_loss", "val": "val_loss"}, "lr": {"train": "lr", "val": None}}
