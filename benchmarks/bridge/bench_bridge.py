"""events-bridge under load, side by side with seed 004's polling bridge (reimplemented here as the
peer): events/s forwarded to 1, 10 and 50 WebSocket clients while a trainer floods the event file,
emit -> WebSocket-client latency p50/p99 at a training-like rate, and each bridge's peak RSS.

Not a test: numbers depend on the machine. Usage:
  python benchmarks/bridge/bench_bridge.py [--bridge PATH] [--events N] [--clients 1,10,50]
"""

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import List, Optional, Tuple

import websockets

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# Seed 004's bridge as it was: polls the file every 500 ms, keeps the last 50 events for late
# joiners, and hands each new event to ONE shared queue (maxsize 100, put_nowait: a full queue
# drops it) that all WebSocket handlers take from, with a ping after 5 s of silence.
SEED_BRIDGE = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    import websockets

    path, port = Path(sys.argv[1]), int(sys.argv[2])
    queue = asyncio.Queue(maxsize=100)
    recent = []

    async def watch():
        last = 0
        while True:
            if path.exists():
                with open(path) as f:
                    f.seek(last)
                    lines = f.readlines()
                    last = f.tell()
                for line in lines:
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        event = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    recent.append(event)
                    if len(recent) > 50:
                        recent.pop(0)
                    try:
                        queue.put_nowait(event)
                    except asyncio.QueueFull:
                        pass
            await asyncio.sleep(0.5)

    async def handler(ws):
        for event in list(recent):
            await ws.send(json.dumps(event))
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), timeout=5.0)
                await ws.send(json.dumps(event))
            except asyncio.TimeoutError:
                await ws.send(json.dumps({"type": "ping"}))

    async def main():
        asyncio.create_task(watch())
        async with websockets.serve(handler, "127.0.0.1", port, compression=None):
            print("ready", flush=True)
            await asyncio.Future()

    asyncio.run(main())
    """
)

# The trainer: `flood N` writes N log events (blocking, never dropping); `paced N` writes N events 20 ms apart, each carrying its emit time.
TRAINER = textwrap.dedent(
    """
    import sys, time
    import foxml_events as fe

    mode, count, path, run_id = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    e = fe.TrainingEventEmitter(run_id, path, overflow="block", block_timeout=10.0, control_endpoint="off",
                                signal_hook=False)
    if mode == "flood":
        for i in range(count):
            e.log("info", f"flood {i}")
    else:
        for i in range(count):
            e.log("info", f"t={time.time_ns()}")
            e.flush(1.0)
            time.sleep(0.02)
    e.emit_run_complete("success")
    e.close()
    """
)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    def __init__(self, kind: str, bridge: str, path: Path, work: Path) -> None:
        self.kind = kind
        if kind == "events-bridge":
            # Default ring and queues: the figures are what a user gets (a client too slow for
            # the flood would be disconnected or told what it missed, and the table shows it).
            self.proc = subprocess.Popen([bridge, str(path), "--port", "0", "--ws-history", "0"],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            line = self.proc.stdout.readline()  # type: ignore[union-attr]
            self.port = int(line.rsplit(":", 1)[1].strip("/\n"))
        else:
            script = work / "seed_bridge.py"
            script.write_text(SEED_BRIDGE)
            import socket

            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = s.getsockname()[1]
            self.proc = subprocess.Popen([sys.executable, str(script), str(path), str(self.port)],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            assert self.proc.stdout.readline().strip() == "ready"  # type: ignore[union-attr]
        self.url = f"ws://127.0.0.1:{self.port}/ws/training"

    def disconnects(self) -> str:
        """Clients cut off as too slow so far (the seed has no such count)."""
        if self.kind != "events-bridge":
            return "-"
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/health", timeout=30) as res:
            return str(json.load(res)["bridge"]["slow_client_disconnects"])

    def stop(self) -> float:
        rss = peak_rss_mib(self.proc.pid)
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()  # type: ignore[union-attr]
        return rss


def trainer(work: Path, mode: str, count: int, path: Path, run_id: str) -> subprocess.Popen:
    script = work / "trainer.py"
    script.write_text(TRAINER)
    return subprocess.Popen([sys.executable, str(script), mode, str(count), str(path), run_id])


async def client(url: str, run_id: str, deadline: float, latencies: Optional[List[float]] = None
                 ) -> Tuple[int, float, float]:
    """Counts the run's events until its run_complete, the deadline, or 4 s without one of them (the
    seed's shared queue gives each event to one client only, and drops some: run_complete may never
    come); returns count, first, last."""
    count, first, last = 0, 0.0, 0.0
    idle_until = time.monotonic() + 8.0
    mine = f'"{run_id}"'  # the seed re-serialises with spaces: match the value only
    async with websockets.connect(url, compression=None, max_queue=None, max_size=None,
                                  proxy=None) as ws:
        while True:
            left = min(deadline, idle_until) - time.monotonic()
            if left <= 0:
                return count, first, last
            try:
                text = await asyncio.wait_for(ws.recv(), timeout=left)
            except (asyncio.TimeoutError, websockets.ConnectionClosed):
                return count, first, last
            now = time.monotonic()
            # Cheap checks first: the clients, not the bridge, should be the last thing to saturate.
            if mine not in text:
                continue
            if '"run_complete"' in text:
                return count, first, now
            count += 1
            idle_until = now + 4.0
            first = first or now
            last = now
            if latencies is not None:
                event = json.loads(text)
                if event.get("message", "").startswith("t="):
                    latencies.append((time.time_ns() - int(event["message"][2:])) / 1e6)


async def throughput(server: "Server", work: Path, path: Path, clients: int, events: int, run_id: str
                     ) -> Tuple[float, float, float]:
    url = server.url
    deadline = time.monotonic() + 300
    tasks = [asyncio.create_task(client(url, run_id, deadline)) for _ in range(clients)]
    # The trainer's events are written first to a staging file, then appended at once: the
    # reader takes a flood at the speed of the disk, not of a Python emitter.
    staging = work / f"{run_id}.jsonl"
    proc = trainer(work, "flood", events, staging, run_id)
    await asyncio.get_running_loop().run_in_executor(None, proc.wait)
    await asyncio.sleep(0.5)  # the clients have connected before the flood starts (load shaping)
    start = time.monotonic()
    cpu_before = cpu_seconds(server.proc.pid)
    with open(path, "ab") as out:
        out.write(staging.read_bytes())
    results = await asyncio.gather(*tasks)
    end = max(r[2] for r in results) or time.monotonic()
    end = max(end, start + 1e-3)
    delivered = sum(r[0] for r in results) / (clients * events)
    # The server's own CPU per message: where the clients (Python, on the same cores) saturate
    # first, this shows how far the server is from its own limit.
    cpu_us = (cpu_seconds(server.proc.pid) - cpu_before) * 1e6 / max(1, sum(r[0] for r in results))
    return sum(r[0] for r in results) / (end - start), delivered, cpu_us, server.disconnects()


async def latency(url: str, work: Path, path: Path, count: int, run_id: str) -> Tuple[float, float, int]:
    latencies: List[float] = []
    deadline = time.monotonic() + 60 + count * 0.05
    task = asyncio.create_task(client(url, run_id, deadline, latencies))
    await asyncio.sleep(0.5)
    proc = trainer(work, "paced", count, path, run_id)
    await task
    await asyncio.get_running_loop().run_in_executor(None, proc.wait)
    if not latencies:
        return float("nan"), float("nan"), 0
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return statistics.median(latencies), p99, len(latencies)


async def run(bridge: str, events: int, client_counts: List[int], paced: int) -> None:
    rows = []
    for kind in ("events-bridge", "seed 004 (500 ms poll)"):
        work = Path(tempfile.mkdtemp(prefix="fe-bench-bridge-"))
        try:
            path = work / "events.jsonl"
            path.touch()
            server = Server(kind, bridge, path, work)
            row = {"kind": kind}
            for n in client_counts:
                row[f"{n}"] = await throughput(server, work, path, n, events, f"flood-{n}")
            p50, p99, samples = await latency(server.url, work, path, paced, "paced")
            row["latency"] = (p50, p99, samples)
            row["rss"] = server.stop()
            rows.append(row)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"## events-bridge (default ring and queues) vs seed 004's polling bridge: {events} events appended at "
          f"once per client count\n")
    header = "| bridge | " + " | ".join(f"{n} client{'s' if n > 1 else ''}: msgs/s (delivered; server CPU/msg; cut off)"
                                        for n in client_counts)
    print(header + " | emit -> client p50 / p99 | peak RSS |")
    print("|---" * (len(client_counts) + 3) + "|")
    for row in rows:
        cells = [f"{row[str(n)][0]:,.0f} ({row[str(n)][1]:.0%}; {row[str(n)][2]:.1f} µs; {row[str(n)][3]})"
             for n in client_counts]
        p50, p99, samples = row["latency"]
        print(f"| {row['kind']} | " + " | ".join(cells) +
              f" | {p50:.1f} ms / {p99:.1f} ms ({samples} events) | {row['rss']:.1f} MiB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = REPO / "build/release/cli/events_bridge/events-bridge"
    parser.add_argument("--bridge", default=str(default) if default.exists() else shutil.which("events-bridge"))
    parser.add_argument("--events", type=int, default=8000, help="events per flood (the default ring holds 10000)")
    parser.add_argument("--clients", default="1,10,50")
    parser.add_argument("--paced", type=int, default=200, help="events for the latency phase (20 ms apart)")
    args = parser.parse_args()
    if not args.bridge:
        sys.exit("events-bridge not found: build it or pass --bridge")
    asyncio.run(run(args.bridge, args.events, [int(n) for n in args.clients.split(",")], args.paced))


if __name__ == "__main__":
    main()
