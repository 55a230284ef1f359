"""events-bridge end to end: the real program (installed by pip) reading a real emitter's file or
socket, driven by a real WebSocket client (`websockets`) and raw HTTP: history then live with
every seq once across the seam, resume with ?since=, the ping after 5 s, a stalled client
disconnected while two others get everything, bad requests and oversize frames answered while the
server stays up, seed 004's consumer logic, and POST cancel reaching a real trainer."""

import base64
import datetime
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

import foxml_events as fe
from conftest import installed_program
from test_control_e2e import Trainer, check_cancelled, short_dir  # noqa: F401 (short_dir: a fixture)

websockets = pytest.importorskip("websockets")
from websockets.sync.client import connect  # noqa: E402

BRIDGE = installed_program("events-bridge")
pytestmark = pytest.mark.skipif(BRIDGE is None, reason="events-bridge is not built (no Boost.Beast or Chart.js)")

DEADLINE = 30.0  # liveness only: generous on a shared machine


class Bridge:
    """An events-bridge on a free port; its stderr goes to a file (never a full pipe)."""

    def __init__(self, directory: Path, *args: str, env: Optional[Dict[str, str]] = None) -> None:
        self.stderr_path = directory / f"bridge-{time.monotonic_ns()}.err"
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen([BRIDGE, "--port", "0", *args], stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, env=env)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        match = re.fullmatch(r"events-bridge: serving http://([^/]+):(\d+)/\n", line)
        assert match, (line, self.errors())
        self.host, self.port = match.group(1), int(match.group(2))
        self.url = f"http://{self.host}:{self.port}"
        self.ws_url = f"ws://{self.host}:{self.port}/ws/training"

    def errors(self) -> str:
        self.stderr.flush()
        return self.stderr_path.read_text()

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=DEADLINE)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            res = conn.getresponse()
            return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
        finally:
            conn.close()

    def get_json(self, path: str, **kwargs: Any) -> Any:
        status, headers, body = self.request("GET", path, **kwargs)
        assert status == 200, (status, body)
        assert headers["content-type"] == "application/json"
        return json.loads(body)

    def ws(self, query: str = "", **kwargs: Any):
        # max_queue=None: a client that leaves with messages unread still reads the bridge's close
        # frame behind them (a bounded queue stops reading, and its close waits out close_timeout).
        return connect(self.ws_url + query, proxy=None, open_timeout=DEADLINE, compression=None, max_queue=None,
                       **kwargs)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=DEADLINE)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.stderr.close()
            self.proc.stdout.close()  # type: ignore[union-attr]
        return code


@pytest.fixture
def bridges(short_dir):
    started: List[Bridge] = []

    def start(*args: str, env: Optional[Dict[str, str]] = None) -> Bridge:
        b = Bridge(short_dir, *args, env=env)
        started.append(b)
        return b

    yield start
    for b in started:
        assert b.stop() == 0, b.errors()  # SIGTERM: a clean exit


def recv_json(ws, timeout: float = DEADLINE) -> Dict[str, Any]:
    return json.loads(ws.recv(timeout=timeout))


def collect_until(ws, done, timeout: float = DEADLINE) -> List[Dict[str, Any]]:
    """Messages until done(message) is true (that one included)."""
    got: List[Dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"timed out after {len(got)} messages; last {got[-3:]}"
        message = recv_json(ws, left)
        got.append(message)
        if done(message):
            return got


def is_end(run_id: str):
    return lambda m: m.get("event_type") == "run_complete" and m.get("run_id") == run_id


def wait_for(predicate, timeout: float = DEADLINE) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def emit_steps(e, first: int, last: int) -> None:
    for step in range(first, last + 1):
        e.emit_progress("train", min(100.0, step / 10), step=step, total_steps=1000)
        e.log_metrics({"loss": 1.0 / step}, step=step)


def seqs_of(messages: List[Dict[str, Any]], run_id: str) -> List[int]:
    return [m["seq"] for m in messages if m.get("run_id") == run_id and "seq" in m]


# ---- history, live, the seam, resume, ping


def test_history_then_live_every_seq_once_across_the_seam(short_dir, bridges):
    path = short_dir / "events.jsonl"
    e = fe.TrainingEventEmitter("seam", str(path))
    e.emit_run_start(total_steps=1000)
    emit_steps(e, 1, 150)
    e.flush(5.0)
    bridge = bridges(str(path), "--ws-history", "100000")
    writer_done, midway = threading.Event(), threading.Event()

    def write_live() -> None:
        # Paced (load shaping, not synchronisation), so the clients join while events flow.
        for step in range(151, 601):
            emit_steps(e, step, step)
            if step % 10 == 0:
                e.flush(5.0)
                time.sleep(0.005)
            if step == 250:
                midway.set()
        e.emit_run_complete("success")
        e.flush(5.0)
        writer_done.set()

    writer = threading.Thread(target=write_live)
    writer.start()
    assert midway.wait(DEADLINE)
    with bridge.ws() as full, bridge.ws() as recent:
        assert not writer_done.is_set(), "the writer ended before the clients joined: no seam tested"
        everything = collect_until(full, is_end("seam"))
        tail = collect_until(recent, is_end("seam"))
    writer.join()
    e.close()
    assert writer_done.is_set()
    seqs = seqs_of(everything, "seam")
    # Every event the emitter wrote, each once, in order (run_start is seq 1 or 0).
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) and len(seqs) == 1 + 2 * 600 + 1
    cursors = [m["cursor"] for m in everything]
    assert cursors == list(range(cursors[0], cursors[0] + len(cursors)))
    # The default history (last 100 events) then live: contiguous too, ending at the same event.
    tail_seqs = seqs_of(tail, "seam")
    assert tail_seqs == list(range(tail_seqs[0], seqs[-1] + 1))
    assert all(json.dumps(m).startswith('{"cursor"') for m in everything[:3])


def test_resume_with_since_and_missed_report(short_dir, bridges):
    path = short_dir / "events.jsonl"
    e = fe.TrainingEventEmitter("resume", str(path))
    e.emit_run_start(total_steps=1000)
    emit_steps(e, 1, 20)
    e.flush(5.0)
    bridge = bridges(str(path), "--ring-size", "100")
    with bridge.ws("?since=0") as first:
        got = collect_until(first, lambda m: m.get("step") == 20 and m.get("event_type") == "metrics")
    last = got[-1]["cursor"]
    assert [m["cursor"] for m in got] == list(range(0, last + 1))
    # Disconnected meanwhile: the run goes on, then the client resumes after its last cursor.
    emit_steps(e, 21, 30)
    e.emit_run_complete("success")
    e.flush(5.0)
    with bridge.ws(f"?since={last + 1}") as again:
        rest = collect_until(again, is_end("resume"))
    assert [m["cursor"] for m in rest] == list(range(last + 1, last + 1 + len(rest)))
    assert seqs_of(got + rest, "resume") == list(range(got[0]["seq"], got[0]["seq"] + len(got) + len(rest)))
    # A cursor older than the ring holds: flood past the ring's 100 events, then resume from 0.
    e2 = fe.TrainingEventEmitter("flood", str(path))
    emit_steps(e2, 1, 100)
    e2.emit_run_complete("success")
    e2.close()
    e.close()
    written = len(path.read_text().splitlines())
    assert wait_for(lambda: bridge.get_json("/api/health")["events"] == written)
    with bridge.ws("?since=0") as late:
        first_message = recv_json(late)
        assert first_message["type"] == "missed" and first_message["count"] > 0
        following = recv_json(late)
        assert following["cursor"] == first_message["cursor"] == first_message["count"]


def test_a_backlog_larger_than_the_queue_waits_in_the_ring(short_dir, bridges):
    path = short_dir / "events.jsonl"
    e = fe.TrainingEventEmitter("backlog", str(path))
    e.emit_run_start()
    emit_steps(e, 1, 1000)
    e.emit_run_complete("success")
    e.close()
    bridge = bridges(str(path), "--client-queue", "50", "--ring-size", "5000")
    # 2002 events to resume, 50 queued at a time: the rest wait in the ring, nobody is cut off.
    assert wait_for(lambda: bridge.get_json("/api/health")["events"] == 2002)
    with bridge.ws("?since=0") as ws:
        got = collect_until(ws, is_end("backlog"))
    assert [m["cursor"] for m in got] == list(range(2002))
    assert bridge.get_json("/api/health")["bridge"]["slow_client_disconnects"] == 0


def test_ping_after_five_seconds_of_silence(short_dir, bridges):
    path = short_dir / "events.jsonl"
    e = fe.TrainingEventEmitter("quiet", str(path))
    e.emit_run_start()
    e.close()
    bridge = bridges(str(path))
    with bridge.ws() as ws:
        history = collect_until(ws, lambda m: m.get("event_type") == "run_start")
        started = time.monotonic()
        ping = recv_json(ws, timeout=DEADLINE)
        waited = time.monotonic() - started
    assert ping == {"type": "ping", "cursor": history[-1]["cursor"] + 1}
    assert waited >= 4.0  # not before the 5 s of silence (a lower bound, not a speed check)


# ---- slow clients


def stalled_client(host: str, port: int) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads: its receive buffer
    is as small as the kernel allows, so the bridge's writes to it stall at once."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws/training HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += s.recv(1)  # one byte at a time: nothing past the handshake is taken
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return s


def test_a_stalled_client_is_disconnected_while_two_others_get_every_event(short_dir, bridges):
    path = short_dir / "events.jsonl"
    # The stalled client is disconnected once its queue is full and the ring has moved past its
    # cursor: 500 + 2000 events behind.
    bridge = bridges(str(path), "--client-queue", "500", "--ring-size", "2000", "--ws-history", "0")
    stalled = stalled_client(bridge.host, bridge.port)
    received: List[List[int]] = [[], []]
    ends = [threading.Event(), threading.Event()]
    errors: List[BaseException] = []

    def reader(index: int) -> None:
        try:
            with bridge.ws() as ws:
                while True:
                    m = recv_json(ws)
                    if m.get("run_id") == "flood":
                        received[index].append(m["seq"])
                    if is_end("flood")(m):
                        ends[index].set()
                        return
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    assert wait_for(lambda: bridge.get_json("/api/health")["clients"] == 3)
    e = fe.TrainingEventEmitter("flood", str(path), queue_capacity=1 << 16)
    e.emit_run_start()
    padding = "x" * 200  # about 400 bytes an event: the stalled client's buffers fill quickly
    sent = 1
    for batch in range(40):
        for i in range(250):
            e.log("info", f"{batch}-{i} {padding}")
        sent += 250
        e.flush(5.0)
        # The readers keep up (the load is shaped, not timed): only the stalled client falls behind.
        assert wait_for(lambda: min(len(r) for r in received) >= sent or errors), errors
    e.emit_run_complete("success")
    e.close()
    for t in threads:
        t.join(DEADLINE)
    assert not errors, errors
    assert all(ev.is_set() for ev in ends)
    for seqs in received:
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) and len(seqs) == sent + 1
    health = bridge.get_json("/api/health")
    assert health["bridge"]["slow_client_disconnects"] == 1
    assert "fell behind" in bridge.errors() and "disconnected (1008)" in bridge.errors()
    metrics = bridge.request("GET", "/metrics")[2].decode()
    assert "foxml_bridge_slow_client_disconnects_total 1" in metrics
    # The stalled client's connection is gone: reading it now ends (close frame or reset) soon.
    stalled.settimeout(DEADLINE)
    try:
        while stalled.recv(1 << 16):
            pass
    except ConnectionResetError:
        pass
    stalled.close()


# ---- bad input


def raw_exchange(bridge: Bridge, data: bytes) -> bytes:
    with socket.create_connection((bridge.host, bridge.port), timeout=DEADLINE) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def test_bad_requests_get_errors_and_the_server_stays_up(short_dir, bridges):
    path = short_dir / "events.jsonl"
    e = fe.TrainingEventEmitter("sturdy", str(path))
    e.emit_run_start()
    e.close()
    bridge = bridges(str(path))
    assert raw_exchange(bridge, b"NOT HTTP AT ALL\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert raw_exchange(bridge, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 9000 +
                        b"\r\n\r\n").startswith(b"HTTP/1.1 431")
    status, _, body = bridge.request("POST", "/api/runs/sturdy/commands", body=b"{" + b" " * 70000 + b"}",
                                     headers={"X-Foxml-Events": "1", "Content-Type": "application/json"})
    assert status == 413 and "error" in json.loads(body)
    for method, target, expected in [("GET", "/nowhere", 404), ("POST", "/api/runs", 405),
                                     ("GET", "/api/runs/nobody", 404), ("GET", "/api/runs/nobody/events", 404),
                                     ("GET", "/api/runs/sturdy/events?since=abc", 400),
                                     ("GET", "/api/runs/sturdy/events?types=nonsense", 400),
                                     ("DELETE", "/", 405), ("GET", "/api/runs/sturdy/commands", 405)]:
        status, headers, body = bridge.request(method, target)
        assert status == expected, (method, target, status, body)
        assert headers["content-type"] == "application/json" and "error" in json.loads(body)
    # A request addressed to another host name (DNS rebinding) is refused without a token.
    assert bridge.request("GET", "/api/runs", headers={"Host": "evil.example:80"})[0] == 403
    # Bad WebSocket requests: an upgrade elsewhere or with a bad query is an HTTP error.
    for query in ("?since=x", "?types=bogus", "?max_hz=0", "?max_hz=abc"):
        with pytest.raises(websockets.exceptions.InvalidStatus) as info:
            bridge.ws(query)
        assert info.value.response.status_code == 400
    # A frame over 4 KiB closes that client with 1009; the server and other clients go on.
    with bridge.ws() as ws, bridge.ws() as other:
        recv_json(ws)
        ws.send("x" * 5000)
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=DEADLINE)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        other.send('{"type": "pong"}')  # what clients send otherwise is ignored
        assert recv_json(other)["event_type"] == "run_start"
    health = bridge.get_json("/api/health")
    assert health["status"] == "ok" and health["bridge"]["oversize_frames"] == 1
    assert bridge.proc.poll() is None


def test_token_and_same_origin_rules(short_dir, bridges):
    path = short_dir / "events.jsonl"
    guarded = fe.TrainingEventEmitter("guarded", str(path))
    guarded.emit_run_start()
    guarded.close()
    refused = subprocess.run([BRIDGE, str(path), "--host", "0.0.0.0", "--port", "0"], capture_output=True,
                             text=True, timeout=DEADLINE)
    assert refused.returncode == 2 and "--token" in refused.stderr
    token_file = short_dir / "token"
    token_file.write_text("s3cret\n")
    bridge = bridges(str(path), "--token-file", str(token_file))
    assert bridge.request("GET", "/api/runs")[0] == 401
    assert bridge.request("GET", "/api/runs", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert bridge.request("GET", "/api/runs", headers={"Authorization": "Bearer s3cret"})[0] == 200
    assert bridge.request("GET", "/api/runs?token=s3cret")[0] == 200
    status, headers, _ = bridge.request("GET", "/?token=s3cret")
    assert status == 200 and headers["set-cookie"].startswith("foxml_token=s3cret;")
    assert bridge.request("GET", "/api/health", headers={"Cookie": "foxml_token=s3cret"})[0] == 200
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        bridge.ws()
    assert info.value.response.status_code == 401
    with bridge.ws("?token=s3cret") as ws:
        assert recv_json(ws)["event_type"] == "run_start"
    # POST with only the cookie needs the custom header too (a cross-site form cannot set it).
    cookie = {"Cookie": "foxml_token=s3cret", "Content-Type": "application/json"}
    body = b'{"command": "cancel"}'
    assert bridge.request("POST", "/api/runs/guarded/commands", body=body, headers=cookie)[0] == 403
    # No token configured: POST needs X-Foxml-Events and a same-origin Origin.
    open_bridge = bridges(str(path))
    plain = {"Content-Type": "application/json"}
    assert open_bridge.request("POST", "/api/runs/guarded/commands", body=body, headers=plain)[0] == 403
    cross = {**plain, "X-Foxml-Events": "1", "Origin": "http://evil.example"}
    assert open_bridge.request("POST", "/api/runs/guarded/commands", body=body, headers=cross)[0] == 403
    same = {**plain, "X-Foxml-Events": "1", "Origin": f"http://127.0.0.1:{open_bridge.port}",
            "Host": f"127.0.0.1:{open_bridge.port}"}
    assert open_bridge.request("POST", "/api/runs/guarded/commands", body=b"[]", headers=same)[0] == 400
    assert open_bridge.request("POST", "/api/runs/nobody/commands", body=body, headers=same)[0] == 404
    for headers in (cookie, plain, cross, same):
        assert "access-control-allow-origin" not in open_bridge.request("GET", "/api/runs", headers=headers)[1]


# ---- seed 004's consumers


class SeedTrainingView:
    """Seed 004's Rust TrainingView.handle_event, ported as it is."""

    def __init__(self) -> None:
        self.running = False
        self.run_id: Optional[str] = None
        self.stage = ""
        self.progress_pct = 0.0
        self.current_target: Optional[str] = None
        self.targets_complete = 0
        self.targets_total = 0
        self.completed_targets: List[Tuple[str, str, int, Optional[float]]] = []

    def handle_event(self, event: Dict[str, Any]) -> None:
        kind = event.get("event_type")  # serde drops messages without it (the pings)
        if kind == "progress":
            self.running = True
            self.run_id = event["run_id"]
            self.stage = event.get("stage") or ""
            self.progress_pct = event.get("progress_pct") or 0.0
            self.current_target = event.get("current_target")
            self.targets_complete = event.get("targets_complete") or 0
            self.targets_total = event.get("targets_total") or 0
        elif kind == "target_complete":
            if event.get("target") is not None:
                self.completed_targets.append((event["target"], event.get("status") or "",
                                               event.get("models_trained") or 0, event.get("best_auc")))
        elif kind == "run_complete":
            self.running = False
            self.progress_pct = 100.0


def test_seed_004_consumer_logic_ends_in_the_right_state(short_dir, bridges):
    path = short_dir / "events.jsonl"
    bridge = bridges(str(path))
    view = SeedTrainingView()
    with bridge.ws() as ws:
        e = fe.TrainingEventEmitter("seed-run", str(path))
        e.emit_run_start()
        e.emit_stage_change(None, "targets")
        for i, target in enumerate(["fwd_ret_5m", "fwd_ret_1h"]):
            e.emit_progress("targets", 50.0 * i, current_target=target, targets_complete=i, targets_total=2)
            e.emit_target_complete(target, "success", models_trained=3 + i, best_auc=0.6 + i / 10)
        e.emit_progress("targets", 99.0, current_target="fwd_ret_1h", targets_complete=2, targets_total=2)
        mid = bridge.get_json("/api/training/status")
        e.emit_run_complete("success")
        e.close()
        for message in collect_until(ws, is_end("seed-run")):
            view.handle_event(message)
    assert (view.running, view.run_id, view.stage, view.progress_pct) == (False, "seed-run", "targets", 100.0)
    assert (view.current_target, view.targets_complete, view.targets_total) == ("fwd_ret_1h", 2, 2)
    assert view.completed_targets == [("fwd_ret_5m", "success", 3, 0.6), ("fwd_ret_1h", "success", 4, 0.7)]
    status = bridge.get_json("/api/training/status")
    assert set(status) == {"running", "run_id", "stage", "progress_pct", "current_target", "events"}
    assert status["running"] is False and status["run_id"] == "seed-run" and status["progress_pct"] == 100.0
    assert 0 < len(status["events"]) <= 10 and status["events"][-1]["event_type"] == "run_complete"
    assert set(mid) == set(status)


# ---- the REST state


def test_runs_run_events_health_and_metrics(short_dir, bridges):
    path = short_dir / "events.jsonl"
    e = fe.TrainingEventEmitter('odd "run"\nid', str(path))
    e.emit_run_start(total_steps=2000)
    emit_steps(e, 1, 1200)
    e.close()
    other = fe.TrainingEventEmitter("finished", str(path))
    other.emit_run_start()
    other.emit_run_complete("failed")
    other.close()
    bridge = bridges(str(path), "--max-points", "50")
    assert wait_for(lambda: bridge.get_json("/api/health")["events"] == 1 + 2400 + 2)
    listing = bridge.get_json("/api/runs")
    assert [r["run_id"] for r in listing["runs"]] == ['odd "run"\nid', "finished"]
    assert listing["counts"] == {"running": 1, "failed": 1}
    assert not {"metric_history", "resource_history", "logs", "config"} & set(listing["runs"][0])
    run = bridge.get_json("/api/runs/" + "odd%20%22run%22%0Aid")
    assert run["step"] == 1200 and run["metrics"]["loss"] == pytest.approx(1 / 1200)
    assert run["metric_groups"] == {"loss": {"train": "loss", "val": None}} and "logs" in run
    loss = run["metric_history"]["loss"]
    assert len(loss) == 50 and loss[-1] == [1200, pytest.approx(1 / 1200)]  # thinned, ends kept
    page = bridge.get_json("/api/runs/finished/events")
    assert [ev["event_type"] for ev in page["events"]] == ["run_start", "run_complete"]
    assert page["missed"] == 0 and page["next"] == page["events"][-1]["cursor"] + 1
    typed = bridge.get_json("/api/runs/odd%20%22run%22%0Aid/events?types=metrics&limit=5&since=10")
    assert [ev["event_type"] for ev in typed["events"]] == ["metrics"] * 5
    assert typed["events"][0]["cursor"] >= 10
    after = bridge.get_json(f"/api/runs/odd%20%22run%22%0Aid/events?types=metrics&limit=5&since={typed['next']}")
    assert after["events"][0]["step"] == typed["events"][-1]["step"] + 1
    health = bridge.get_json("/api/health")
    assert health["sources"] == [f"file://{path}"] and health["reader"]["events"] == 2403
    status, headers, body = bridge.request("GET", "/metrics")
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    escaped = 'run_id="odd \\"run\\"\\nid"'
    assert f'foxml_run_step{{{escaped}}} 1200' in text
    assert f'foxml_run_metric{{{escaped},metric="loss"}} ' in text
    assert "foxml_reader_events_total 2403" in text and "foxml_bridge_ws_clients 0" in text
    assert "# TYPE foxml_reader_gaps gauge" in text and "foxml_reader_gaps 0" in text
    for line in text.splitlines():
        assert line.startswith("#") or re.fullmatch(r'[a-z_]+(\{.*\})? \S+', line), line
    # The page and Chart.js are served from the binary.
    status, headers, page_body = bridge.request("GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html") and b"<html" in page_body
    status, headers, chart = bridge.request("GET", "/vendor/chart.min.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript") and b"Chart.js" in chart[:200]
    assert bridge.request("GET", "/vendor/chart.min.js", headers={"If-None-Match": headers["etag"]})[0] == 304


def test_max_hz_coalesces_per_step_events_but_never_lifecycle(short_dir, bridges):
    path = short_dir / "events.jsonl"
    bridge = bridges(str(path))
    with bridge.ws("?max_hz=2&run=fast") as ws:
        e = fe.TrainingEventEmitter("fast", str(path))
        e.emit_run_start(total_steps=2000)
        emit_steps(e, 1, 2000)
        e.emit_run_complete("success")
        e.close()
        got = collect_until(ws, is_end("fast"))
    kinds = [m["event_type"] for m in got]
    assert kinds[0] == "run_start" and kinds[-1] == "run_complete"
    progress = [m for m in got if m["event_type"] == "progress"]
    # Folded, never silently: the counts plus the sent ones account for all 2000 steps, and the
    # last step (held back) goes out before run_complete.
    assert len(progress) < 2000 and sum(1 + m.get("coalesced", 0) for m in progress) == 2000
    assert progress[-1]["step"] == 2000 and any(m.get("coalesced", 0) > 0 for m in progress)


# ---- commands and the default sources


def test_post_cancel_reaches_a_real_trainer(short_dir, bridges):
    path = short_dir / "events.jsonl"
    trainer = Trainer(short_dir, "to-cancel", str(path))
    bridge = bridges(str(path))
    post = {"Content-Type": "application/json", "X-Foxml-Events": "1"}
    try:
        assert wait_for(lambda: any(r["run_id"] == "to-cancel" for r in bridge.get_json("/api/runs")["runs"]))
        status, _, body = bridge.request("POST", "/api/runs/to-cancel/commands", body=b'{"command": "cancel"}',
                                         headers=post)
        assert status == 200, body
        ack = json.loads(body)
        assert ack["ok"] and ack["acknowledged"] and ack["via"] == "control"
        assert trainer.finish().startswith("done")
    finally:
        trainer.kill()
    assert wait_for(lambda: bridge.get_json("/api/runs/to-cancel")["status"] == "cancelled")
    check_cancelled(bridge.get_json("/api/runs/to-cancel/events")["events"], "to-cancel")
    status, _, body = bridge.request("POST", "/api/runs/to-cancel/commands", body=b'{"command": "cancel"}',
                                     headers=post)
    assert status == 409 and "ended" in json.loads(body)["error"]


def test_no_arguments_reads_the_default_file_and_socket(short_dir, bridges):
    env = {**os.environ, "FOXML_TRAINING_EVENT_FILE": str(short_dir / "default.jsonl"),
           "FOXML_TRAINING_EVENT_SOCKET": str(short_dir / "default.sock")}
    env.pop("FOXML_EVENTS_SINKS", None)
    old = fe.TrainingEventEmitter("from-the-file", str(short_dir / "default.jsonl"))
    old.emit_run_start()
    old.emit_run_complete("success")
    old.close()
    bridge = bridges(env=env)
    health = bridge.get_json("/api/health")
    assert sorted(health["sources"]) == sorted([f"file://{short_dir}/default.jsonl",
                                                f"unix://{short_dir}/default.sock"])
    # A trainer with default settings writes to the socket (the file only when no one listens):
    # one live_reader sees both runs.
    default_sinks = f"unix://{short_dir}/default.sock,file://{short_dir}/default.jsonl"
    trainer = Trainer(short_dir, "on-the-socket", default_sinks, control="off")
    post = {"Content-Type": "application/json", "X-Foxml-Events": "1"}
    try:
        assert wait_for(lambda: [r["run_id"] for r in bridge.get_json("/api/runs")["runs"]] ==
                        ["from-the-file", "on-the-socket"])
        # The emitter's first lines may go to the file while its socket connection is being made;
        # the relay needs the run's lines on the socket.
        socket_stats = lambda: bridge.get_json("/api/health")["reader"]["source"]["children"][1]["stats"]  # noqa: E731
        assert wait_for(lambda: socket_stats().get("bytes", 0) > 0)
        status, _, body = bridge.request("POST", "/api/runs/on-the-socket/commands",
                                         body=b'{"command": "cancel"}', headers=post)
        assert status == 200 and json.loads(body)["via"] == "relay", body
        assert trainer.finish().startswith("done")
    finally:
        trainer.kill()
    assert wait_for(lambda: bridge.get_json("/api/runs/on-the-socket")["status"] == "cancelled")


def test_a_command_nobody_acknowledges_gets_504(short_dir, bridges):
    sock = short_dir / "events.sock"
    bridge = bridges(f"unix://{sock}", "--command-timeout", "1")
    # An emitter that sends its run_start and then never reads: the relay delivers the command
    # to it, and no acknowledgement ever comes back.
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mute.connect(str(sock))
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")
    mute.sendall(json.dumps({"event_type": "run_start", "run_id": "mute", "timestamp": now, "seq": 1, "pid": 7,
                             "host": "h", "rank": 0, "world_size": 1}, separators=(",", ":")).encode() + b"\n")
    try:
        assert wait_for(lambda: bridge.get_json("/api/runs")["counts"] == {"running": 1})
        status, _, body = bridge.request("POST", "/api/runs/mute/commands", body=b'{"command": "cancel"}',
                                         headers={"Content-Type": "application/json", "X-Foxml-Events": "1"})
        answer = json.loads(body)
        assert status == 504 and answer["ok"] and not answer["acknowledged"] and answer["delivered"] == 1, answer
        # Bad commands are refused before anything is sent.
        status, _, body = bridge.request("POST", "/api/runs/mute/commands", body=b'{"command": "no such!"}',
                                         headers={"Content-Type": "application/json", "X-Foxml-Events": "1"})
        assert status == 400 and "error" in json.loads(body)
    finally:
        mute.close()
