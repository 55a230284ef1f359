"""Where the per-step emit cost goes in a small PyTorch loop: the training thread's own CPU time
per step for variants of the same step, interleaved block by block (order rotated), medians.

- base: the step, plus the two `.item()` calls any logging loop makes
- noop / noop_f: a no-op Python function called with the same arguments (tensors / floats)
- metrics / metrics_f: `log_metrics` with the tensors / with floats the loop took with `.item()`
- metrics_f2: `log_metrics` with floats twice in a row: the second call runs with warm caches
- progress: `emit_progress`; both: `log_metrics` (tensors) + `emit_progress`, as the digits demo

    python benchmarks/python/bench_step_breakdown.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch

import foxml_events as fe
from digits_step import digits_loop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=80, help="blocks of 57 steps per variant")
    parser.add_argument("--settle", type=float, default=6.0, help="seconds of emitting before timing")
    args = parser.parse_args()

    loop = digits_loop()
    x = loop.x

    def noop(metrics, step=None):
        pass

    def noop_progress(stage, pct, step=None, total_steps=None):
        pass

    with tempfile.TemporaryDirectory(prefix="foxml-bench-") as workdir:
        events = fe.TrainingEventEmitter("bench-breakdown", path=os.path.join(workdir, "events.jsonl"))
        step = 0

        def block(kind: str, steps: int = 57) -> float:
            nonlocal step
            start = time.thread_time()
            for _ in range(steps):
                index = torch.randint(0, len(x), (32,))
                loss, accuracy = loop.step(index)
                if kind == "base":
                    loss.item()
                    accuracy.item()
                elif kind == "noop":
                    loss.item()
                    accuracy.item()
                    noop({"loss": loss, "accuracy": accuracy, "lr": 0.05}, step=step)
                    noop_progress("training", 1.0, step=step, total_steps=1000)
                elif kind == "noop_f":
                    noop({"loss": loss.item(), "accuracy": accuracy.item(), "lr": 0.05}, step=step)
                elif kind == "metrics":
                    events.log_metrics({"loss": loss, "accuracy": accuracy, "lr": 0.05}, step=step)
                elif kind == "metrics_f":
                    events.log_metrics({"loss": loss.item(), "accuracy": accuracy.item(), "lr": 0.05}, step=step)
                elif kind == "metrics_f2":
                    values = {"loss": loss.item(), "accuracy": accuracy.item(), "lr": 0.05}
                    events.log_metrics(values, step=step)
                    events.log_metrics(values, step=step)
                elif kind == "progress":
                    loss.item()
                    accuracy.item()
                    events.emit_progress("training", 1.0, step=step, total_steps=1000)
                elif kind == "both":
                    events.log_metrics({"loss": loss, "accuracy": accuracy, "lr": 0.05}, step=step)
                    events.emit_progress("training", 1.0, step=step, total_steps=1000)
                step += 1
            return (time.thread_time() - start) / steps * 1e6

        kinds = ["base", "noop", "noop_f", "metrics", "metrics_f", "metrics_f2", "progress", "both"]
        settle_until = time.perf_counter() + args.settle
        while time.perf_counter() < settle_until:
            for kind in kinds:
                block(kind)
        per_step: dict[str, list[float]] = {kind: [] for kind in kinds}
        for r in range(args.rounds):
            for kind in kinds[r % len(kinds):] + kinds[:r % len(kinds)]:
                per_step[kind].append(block(kind))
        events.close()

    base = statistics.median(per_step["base"])
    print(f"Training thread CPU per step, digits MLP at batch 32, 1 torch thread, median of {args.rounds} blocks")
    print("| variant | us per step | vs base |\n|---|---|---|")
    for kind in kinds:
        m = statistics.median(per_step[kind])
        print(f"| {kind} | {m:.2f} | {m - base:+.2f} us ({100 * (m - base) / base:+.2f}%) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
