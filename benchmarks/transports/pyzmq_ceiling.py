"""pyzmq's own PUB -> SUB throughput, the subscriber in another process: the ceiling beside
cross_process's ZeroMQ rows, on the same lines (two frames, topic + an emitter-shaped line of
~200 B / 1 KB / 10 KB) over ipc and tcp loopback. Lossless as ours is: the PUB sets XPUB_NODROP
and sends blocking, so a full pipe waits instead of dropping; the subscriber only counts (it
neither decodes nor tracks: the transport alone).

    python benchmarks/transports/pyzmq_ceiling.py [--events N] [--sizes 100,1000,10000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time

import zmq

SMALLEST = 199  # an emitter log line with a short message: cross_process's "100 B" row


def subscriber(endpoint: str, events: int, ready, result) -> None:
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 100000)  # zmq_source's default
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(endpoint)
    n = 0
    last = 0.0
    while n < events:
        topic, _line = sub.recv_multipart()
        if topic == b"w":
            if not ready.is_set():
                ready.set()
            continue
        n += 1
        last = time.monotonic()
    result.put((n, last))
    sub.close(0)
    context.term()


def one_run(endpoint: str, events: int, line_bytes: int) -> tuple:
    context = zmq.Context()
    pub = context.socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, 1000)  # zmq_sink's default
    pub.setsockopt(zmq.XPUB_NODROP, 1)
    pub.bind(endpoint)
    ctx = mp.get_context("spawn")
    ready, result = ctx.Event(), ctx.Queue()
    child = ctx.Process(target=subscriber, args=(endpoint, events, ready, result))
    child.start()
    while not ready.is_set():
        pub.send_multipart([b"w", b"{}"])
        time.sleep(0.01)
    head = b'{"timestamp":"2026-11-24T06:00:00.000000+00:00","seq":1,"event_type":"log","run_id":"bench","message":"'
    # The same length as the emitter's line of this size (without its newline).
    line = head + b"x" * max(0, max(line_bytes, SMALLEST) - 1 - len(head) - 2) + b'"}'

    topic = b"m"
    start = time.monotonic()
    for _ in range(events):
        pub.send_multipart([topic, line])
    n, last = result.get(timeout=120)
    child.join()
    pub.close(0)
    context.term()
    return n, (n / (last - start)) if last > start else 0.0, len(line) + 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--sizes", default="100,1000,10000")
    args = parser.parse_args()
    print("pyzmq PUB -> SUB (subscriber in another process, counting only), lossless (XPUB_NODROP)\n")
    print(f"| {'transport, line size':<36} | {'B/line':>7} | {'events/s':>12} | {'MB/s':>9} | {'received':>15} |")
    print(f"|{'-' * 95}|")
    with tempfile.TemporaryDirectory(prefix="foxml-pyzmq-") as workdir:
        port = 20000 + (os.getpid() + 7) % 20000
        for size in (int(s) for s in args.sizes.split(",")):
            n_events = args.events if size < 1000 else max(args.events // (20 if size >= 10000 else 4), 1000)
            for name, endpoint in (("pyzmq PUB->SUB ipc", f"ipc://{workdir}/p.ipc"),
                                   ("pyzmq PUB->SUB tcp loopback", f"tcp://127.0.0.1:{port}")):
                n, rate, line_bytes = one_run(endpoint, n_events, size)
                label = f"{name}, {size // 1000} KB" if size >= 1000 else f"{name}, {size} B"
                print(f"| {label:<36} | {line_bytes:>7} | {rate:>12.0f} | {rate * line_bytes / 1e6:>9.1f} | "
                      f"{n:>7}/{n_events:<7} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
