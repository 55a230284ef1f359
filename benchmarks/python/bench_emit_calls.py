"""Measures the cost of the Python emit calls (ns per call), with every event queued (none dropped).

    python benchmarks/python/bench_emit_calls.py [--calls 20000] [--repeat 7]
"""

import argparse
import os
import tempfile
import timeit

import foxml_events as fe

CASES = {
    "emit_progress(stage, pct, step=, total_steps=, epoch=, total_epochs=)": (
        "e.emit_progress('training', 50.0, step=3, total_steps=10, epoch=1, total_epochs=3)"
    ),
    "emit_progress(stage, pct)": "e.emit_progress('training', 50.0)",
    "log_metrics({3 metrics}, step=, epoch=) incl. building the dict": (
        "e.log_metrics({'loss': 0.5, 'accuracy': 0.9, 'lr': 1e-3}, step=3, epoch=1)"
    ),
    "log_metrics(prebuilt 3-metric dict, step=)": "e.log_metrics(d, step=3)",
    "foxml_events.emit_progress(...) (global, 2 keywords)": "fe.emit_progress('training', 50.0, step=3, total_steps=10)",
    "emit_stage_change(a, b)": "e.emit_stage_change('a', 'b')",
    "log(level, message)": "e.log('info', 'hello')",
    "(baseline) building a 3-entry dict": "{'loss': 0.5, 'accuracy': 0.9, 'lr': 1e-3}",
    # The control back-channel: what a loop asks every step.
    "should_stop()": "e.should_stop()",
    "paused()": "e.paused()",
    "poll_command(), none waiting": "e.poll_command()",
    "(baseline) a bound method call that returns None": "n()",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        e = fe.init_training_events("bench", os.path.join(tmp, "events.jsonl"), queue_capacity=1 << 16)
        g = {"e": e, "fe": fe, "d": {"loss": 0.5, "accuracy": 0.9, "lr": 1e-3}, "n": [].clear}
        for name, stmt in CASES.items():
            best = float("inf")
            for _ in range(args.repeat):
                e.flush(5.0)
                best = min(best, timeit.timeit(stmt, globals=g, number=args.calls))
            print(f"{best / args.calls * 1e9:7.0f} ns  {name}")
        stats = e.stats()
        e.close()
        print(f"emitted {stats['emitted']}, dropped {stats['dropped']}")


if __name__ == "__main__":
    main()
