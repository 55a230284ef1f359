"""events-proxy across "hosts": the proxy, two emitters and a subscriber each in their own network
namespace, joined to the proxy's by veth pairs (10.77.<i>.1 the proxy's end, 10.77.<i>.2 the
host's). Every (host, pid, seq) reaches the subscriber, and a cancel sent from the subscriber's host
reaches both emitters through the proxy's command path. Needs root and `ip netns`; skipped
elsewhere."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import sys
import textwrap
import time
from typing import Dict, Iterator, List

import pytest

from test_distributed import Proxy, needs_proxy

RUN = "netns-run"
EVENTS_PER_HOST = 300
DEADLINE_S = 20.0

# One rank on its own host: EVENTS_PER_HOST progress events, then it polls for a command until
# cancel arrives (or the deadline: then it completes "success", which the test reports).
EMITTER = textwrap.dedent(
    f"""
    import sys, time
    import foxml_events as fe

    proxy, host, rank = sys.argv[1], sys.argv[2], int(sys.argv[3])
    e = fe.TrainingEventEmitter({RUN!r}, "zmq+tcp://" + proxy + ":5556", host=host, rank=rank,
                                world_size=2, signal_hook=False)
    e.emit_run_start(total_steps={EVENTS_PER_HOST})
    for step in range({EVENTS_PER_HOST}):
        e.emit_progress("train", step / {EVENTS_PER_HOST}, step=step)
    print("emitted", flush=True)
    deadline = time.monotonic() + {DEADLINE_S}
    while not e.should_stop() and time.monotonic() < deadline:
        time.sleep(0.01)
    e.emit_run_complete("cancelled" if e.should_stop() else "success")
    result = e.close(10.0)
    print("stopped" if e.should_stop() else "deadline", result.ok, e.stats()["dropped"], flush=True)
    """
)

# The subscriber's host: every event of the run as one JSON line on stdout, until both ranks'
# run_complete (or the deadline).
SUBSCRIBER = textwrap.dedent(
    f"""
    import json, sys, time
    import foxml_events as fe

    reader = fe.EventReader("zmq+tcp://" + sys.argv[1] + ":5558", idle_timeout=0.2)
    print("ready", flush=True)
    complete, deadline = set(), time.monotonic() + {DEADLINE_S}
    while len(complete) < 2 and time.monotonic() < deadline:
        for ev in reader:
            if ev.get("run_id") != {RUN!r}:
                continue
            print(json.dumps(ev), flush=True)
            if ev["event_type"] == "run_complete":
                complete.add(ev["host"])
    """
)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


def _netns_unavailable() -> str:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "needs the `ip` command (iproute2)"
    return ""


@pytest.fixture
def hosts() -> Iterator[Dict[str, str]]:
    """Four namespaces: 'proxy', and 'a', 'b', 'sub', each on its own veth pair to 'proxy'
    (subnet 10.77.<i>.0/24). Names carry the pid so parallel runs do not clash; all are deleted
    afterwards (deleting a namespace deletes the veth ends in it, and with them their peers)."""
    reason = _netns_unavailable()
    if reason:
        pytest.skip(reason)
    pid = os.getpid()
    names = {role: f"fx{role}{pid}" for role in ("proxy", "a", "b", "sub")}
    created: List[str] = []
    try:
        for name in names.values():
            try:
                _ip("netns", "add", name)
            except subprocess.CalledProcessError as err:
                pytest.skip(f"cannot create a network namespace ({err.stderr.strip()})")
            created.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
        for i, role in enumerate(("a", "b", "sub"), start=1):
            host_end, proxy_end = f"fxh{i}_{pid}"[:15], f"fxp{i}_{pid}"[:15]
            _ip("link", "add", host_end, "netns", names[role], "type", "veth",
                "peer", "name", proxy_end, "netns", names["proxy"])
            _ip("-n", names["proxy"], "addr", "add", f"10.77.{i}.1/24", "dev", proxy_end)
            _ip("-n", names["proxy"], "link", "set", proxy_end, "up")
            _ip("-n", names[role], "addr", "add", f"10.77.{i}.2/24", "dev", host_end)
            _ip("-n", names[role], "link", "set", host_end, "up")
        yield names
    finally:
        for name in created:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


def _in(ns: str, *command: str, **kwargs) -> subprocess.Popen:
    # `ip netns exec` execs the command after entering the namespace: the pid is the program's, so
    # signals reach it.
    return subprocess.Popen(["ip", "netns", "exec", ns, *command], text=True, **kwargs)


def _readline(process: subprocess.Popen, timeout: float) -> str:
    with selectors.DefaultSelector() as sel:
        sel.register(process.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
    return process.stdout.readline()


@needs_proxy
def test_events_and_a_cancel_cross_network_namespaces_through_the_proxy(hosts):
    proxy = Proxy(5556, wrap=["ip", "netns", "exec", hosts["proxy"]], bind_host="*")
    processes: List[subprocess.Popen] = []
    try:
        sub = _in(hosts["sub"], sys.executable, "-c", SUBSCRIBER, "10.77.3.1", stdout=subprocess.PIPE)
        processes.append(sub)
        assert _readline(sub, DEADLINE_S) == "ready\n"
        # The subscriber's subscription must be at the proxy before the first event, or the proxy
        # has nobody to forward it to.
        deadline = time.monotonic() + DEADLINE_S
        while proxy.statistics()["events"]["subscribers"]["msg_in"] < 1:
            assert time.monotonic() < deadline, "the subscriber never subscribed at the proxy"
            time.sleep(0.05)

        emitters = {}
        for rank, (role, subnet) in enumerate((("a", 1), ("b", 2))):
            p = _in(hosts[role], sys.executable, "-c", EMITTER, f"10.77.{subnet}.1", f"host-{role}", str(rank),
                    stdout=subprocess.PIPE)
            processes.append(p)
            emitters[f"host-{role}"] = p
        for host, p in emitters.items():
            assert _readline(p, DEADLINE_S) == "emitted\n", host

        # The sender runs on the subscriber's host, not in this test's namespace.
        sender = _in(hosts["sub"], sys.executable, "-c",
                     "import json, foxml_events as fe; "
                     f"print(json.dumps(fe.send_command({RUN!r}, 'cancel', zmq='tcp://10.77.3.1:5558', timeout=10)))",
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        processes.append(sender)
        out, err = sender.communicate(timeout=DEADLINE_S)
        assert sender.returncode == 0, err
        assert json.loads(out)["delivered"], out

        for host, p in emitters.items():
            out = p.communicate(timeout=DEADLINE_S)[0]
            assert p.returncode == 0 and out.startswith("stopped True 0"), (host, out)
        events = [json.loads(line) for line in sub.communicate(timeout=DEADLINE_S)[0].splitlines()]
        assert sub.returncode == 0
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        rc, proxy_err = proxy.stop()
    assert rc == 0, proxy_err

    by_stream: Dict[tuple, List[int]] = {}
    for ev in events:
        by_stream.setdefault((ev["host"], ev["pid"]), []).append(ev["seq"])
    assert sorted(host for host, _ in by_stream) == ["host-a", "host-b"], by_stream.keys()
    for (host, pid), seqs in by_stream.items():
        # run_start, the progress events, command_received, command_done (if the loop sent one),
        # run_complete: whatever the rank sent, every seq from 0 without a gap or duplicate.
        assert seqs == list(range(len(seqs))), (host, pid)
        assert len(seqs) >= EVENTS_PER_HOST + 2, (host, len(seqs))
        mine = [ev for ev in events if ev["host"] == host and ev["pid"] == pid]
        assert sum(ev["event_type"] == "progress" for ev in mine) == EVENTS_PER_HOST
        assert any(ev["event_type"] == "command_received" for ev in mine), host
        assert mine[-1]["event_type"] == "run_complete" and mine[-1]["status"] == "cancelled", mine[-1]
