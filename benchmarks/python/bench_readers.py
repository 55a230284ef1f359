"""Python reader throughput: foxml_events against what a script would write instead.

One JSONL file written by the real emitter (progress, a 4-scalar metrics step and a log line, in
turn) is read to the end, events as dicts, by: ``fe.read_events`` (the C++ decoder, a plain file),
``fe.follow`` (the C++ reader following the file: event stream, dedup, tracker; timed until the
last event arrives), a ``json.loads`` loop and an ``orjson.loads`` loop (orjson is skipped when not
installed). Rounds interleave the readers so drift of a shared machine hits all alike; the table
gives the median events/s, the spread (min-max) and each ratio to the json.loads loop.

    python benchmarks/python/bench_readers.py [--events N] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, List

import foxml_events as fe

try:
    import orjson
except ImportError:  # the peer is optional: the row says so
    orjson = None


def write_events(path: str, events: int) -> int:
    emitter = fe.TrainingEventEmitter("bench-readers", path=path)
    for i in range(events):
        kind = i % 3
        if kind == 0:
            emitter.emit_progress("training", 100.0 * i / events, step=i, total_steps=events)
        elif kind == 1:
            emitter.log_metrics({"loss": 1.0 / (i + 1), "accuracy": 0.5, "lr": 0.05, "grad_norm": 2.5}, step=i)
        else:
            emitter.emit_log("info", f"step {i} done, loss went down nicely")
        if i % 1000 == 999:
            emitter.flush()  # the Python loop can outrun nothing, but a flood must not drop
    emitter.close()
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def loop_loads(loads: Callable[[bytes], object]) -> Callable[[str, int], int]:
    def read(path: str, expected: int) -> int:
        n = 0
        with open(path, "rb") as f:
            for line in f:
                if line.strip():
                    loads(line)
                    n += 1
        return n

    return read


def read_events(path: str, expected: int) -> int:
    n = 0
    for _ in fe.read_events(path):
        n += 1
    return n


def follow(path: str, expected: int) -> int:
    n = 0
    # Dedup is on (the default): every emitter line has its own seq, so none is dropped.
    with fe.follow(path, idle_timeout=5.0) as reader:
        for _ in reader:
            n += 1
            if n == expected:
                break
    return n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    readers: Dict[str, Callable[[str, int], int]] = {
        "json.loads loop": loop_loads(json.loads),
        "fe.read_events": read_events,
        "fe.follow": follow,
    }
    if orjson is not None:
        readers["orjson.loads loop"] = loop_loads(orjson.loads)

    with tempfile.TemporaryDirectory(prefix="foxml-bench-readers-") as workdir:
        path = os.path.join(workdir, "events.jsonl")
        lines = write_events(path, args.events)
        size = os.path.getsize(path)
        rates: Dict[str, List[float]] = {name: [] for name in readers}
        for _ in range(args.rounds):
            for name, read in readers.items():
                t0 = time.perf_counter()
                n = read(path, lines)
                seconds = time.perf_counter() - t0
                if n != lines:
                    print(f"{name}: read {n} of {lines} lines", file=sys.stderr)
                    return 1
                rates[name].append(n / seconds)

    base = statistics.median(rates["json.loads loop"])
    print(f"Python readers: {lines} events ({size / lines:.0f} B/line), events as dicts, "
          f"median of {args.rounds} interleaved rounds\n")
    print(f"| {'reader':<20} | {'events/s':>10} | {'spread (min-max)':>21} | {'vs json.loads':>13} |")
    print(f"|{'-' * 76}|")
    names = list(readers) + ([] if orjson is not None else ["orjson.loads loop"])
    for name in names:
        if name not in rates:
            print(f"| {name:<20} | {'not installed':>10} | {'':>21} | {'':>13} |")
            continue
        r = rates[name]
        print(f"| {name:<20} | {statistics.median(r):>10.0f} | {min(r):>10.0f}-{max(r):<10.0f} | "
              f"{statistics.median(r) / base:>12.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
