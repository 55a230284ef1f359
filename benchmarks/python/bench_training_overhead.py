"""Training overhead of per-step emission: the digits PyTorch loop with and without foxml_events.

Blocks of steps (an epoch by default) run in triples (without, with, without again: an A/A control), their order
rotated from triple to triple, so the machine's drift and any position effect hit all alike; The overhead is the
median over triples of (with - without) / without; the A/A noise floor, the median of
(control - without) / without, is printed beside it: a difference below it is not a measured cost. The loop without events
makes the same `.item()` calls a logging loop makes (log_metrics converts tensors the same way),
so only emitting differs. The worker thread's CPU time and wake-ups per step come from
/proc/self/task/<tid>/schedstat.

    python benchmarks/python/bench_training_overhead.py [--epochs-per-variant N] [--settle S] [--reader]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

import foxml_events as fe
from digits_step import digits_loop


def thread_schedstat(name: str) -> tuple[int, int] | None:
    """(on-CPU ns, times run) of this process's thread called `name`, or None."""
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                if f.read().strip() != name:
                    continue
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                run_ns, _wait_ns, slices = f.read().split()
            return int(run_ns), int(slices)
        except OSError:
            continue
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs-per-variant", type=int, default=15,
                        help="epochs' worth of steps per variant (cut into blocks)")
    parser.add_argument("--block-steps", type=int, default=0,
                        help="steps per timed block (default: one epoch; much shorter blocks time the "
                             "emit path's cold start after each switch, which a loop emitting every step never pays)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--settle", type=float, default=6.0,
                        help="seconds of emitting before timing (the emitter's unwatched_after is 5 s)")
    parser.add_argument("--reader", action="store_true",
                        help="another process follows the event file throughout (fe.follow), as events-tail would")
    args = parser.parse_args()

    loop = digits_loop()
    x = loop.x
    steps_per_epoch = (len(x) + args.batch_size - 1) // args.batch_size
    args.block_steps = args.block_steps or steps_per_epoch
    total_steps = steps_per_epoch * args.epochs_per_variant * 2

    with tempfile.TemporaryDirectory(prefix="foxml-bench-") as workdir:
        path = os.path.join(workdir, "events.jsonl")
        events = fe.TrainingEventEmitter("bench-overhead", path=path)
        follower = None
        if args.reader:
            # Another process, as a terminal or dashboard would be (a thread here would take the GIL).
            follower = subprocess.Popen([sys.executable, "-c",
                                         "import sys, foxml_events as fe\nfor _ in fe.follow(sys.argv[1]): pass", path])
        step = 0

        order = torch.randperm(len(x))
        cursor = 0

        cpu_times: dict[str, list[float]] = {"without": [], "with": [], "control": []}

        def block(emit: bool) -> float:
            nonlocal step, order, cursor
            start_cpu = time.thread_time()
            start = time.perf_counter()
            for _ in range(args.block_steps):
                if cursor >= steps_per_epoch:
                    order, cursor = torch.randperm(len(x)), 0
                index = order[cursor * args.batch_size:(cursor + 1) * args.batch_size]
                cursor += 1
                loss, accuracy = loop.step(index)
                if emit:
                    events.log_metrics({"loss": loss, "accuracy": accuracy, "lr": 0.05}, step=step)
                    events.emit_progress("training", 100.0 * step / total_steps, step=step, total_steps=total_steps)
                else:
                    # What any logging loop computes: the two tensors' values (log_metrics calls .item()).
                    loss.item()
                    accuracy.item()
                step += 1
            elapsed = time.perf_counter() - start
            block.cpu = time.thread_time() - start_cpu
            return elapsed

        # Warm-up, emitting for at least --settle seconds: an emitter whose file nobody reads
        # keeps the short idle wait for its first 5 s (unwatched_after), then settles on the long
        # one. A training run spends nearly all its time settled, so that is what is timed.
        settle_until = time.perf_counter() + args.settle
        for _ in range(3 * steps_per_epoch // args.block_steps):
            block(False)
            block(True)
        while time.perf_counter() < settle_until:
            block(True)
        triples = max(1, steps_per_epoch * args.epochs_per_variant // args.block_steps)
        without, control, with_events = [], [], []
        worker_ns = worker_runs = 0
        for t in range(triples):
            # Rotated order: without / with / control, then with / control / without, ...
            times = {}
            for variant in [("without", "with", "control"), ("with", "control", "without"),
                            ("control", "without", "with")][t % 3]:
                before = thread_schedstat("foxml-events") if variant == "with" else None
                times[variant] = block(variant == "with")
                cpu_times[variant].append(block.cpu)
                if before:
                    after = thread_schedstat("foxml-events")
                    if after:
                        worker_ns += after[0] - before[0]
                        worker_runs += after[1] - before[1]
            without.append(times["without"])
            with_events.append(times["with"])
            control.append(times["control"])
        report = events.close()
        if follower is not None:
            follower.terminate()
            follower.wait()
        overhead = statistics.median((w - b) / b for w, b in zip(with_events, without))
        floor = statistics.median((c - b) / b for c, b in zip(control, without))
        a, b, c = statistics.median(with_events), statistics.median(without), statistics.median(control)
        steps = triples * args.block_steps
        per_step = 1e6 / args.block_steps
        print(f"digits MLP, batch {args.batch_size}, {triples} block triples of {args.block_steps} steps "
              f"(without / with / without, order rotated), 1 torch thread, "
              f"{'a follower process reading the file' if args.reader else 'nobody reading the file'}")
        print("| variant | median per step us |\n|---|---|")
        print(f"| without events (same .item() calls) | {per_step * b:.1f} |")
        print(f"| without events (A/A control) | {per_step * c:.1f} |")
        print(f"| log_metrics(3 values, 2 of them tensors) + emit_progress per step | {per_step * a:.1f} |")
        print(f"\noverhead (median of paired epochs): {100.0 * overhead:+.2f}% of step time; "
              f"noise floor (A/A, same pairing): {100.0 * floor:+.2f}%")
        cpu = statistics.median((w - b) / b for w, b in zip(cpu_times["with"], cpu_times["without"]))
        cpu_floor = statistics.median((c - b) / b for c, b in zip(cpu_times["control"], cpu_times["without"]))
        print(f"training thread's own CPU time (blind to preemption): overhead {100.0 * cpu:+.2f}%, "
              f"A/A floor {100.0 * cpu_floor:+.2f}%")
        print(f"worker thread while emitting: {worker_ns / 1e3 / steps:.2f} us CPU and {worker_runs / steps:.3f} runs per step"
              f"  (events: {report})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
