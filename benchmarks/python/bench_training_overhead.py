"""Training overhead of per-step emission: the digits PyTorch loop with and without foxml_events.

Epochs alternate between the two variants (same model, data and batch order), so the machine's
drift hits both alike; the overhead is the ratio of their median epoch times.

    python benchmarks/python/bench_training_overhead.py [--epochs-per-variant N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch
from sklearn.datasets import load_digits

import foxml_events as fe


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs-per-variant", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(1)
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    loss_fn = torch.nn.CrossEntropyLoss()
    steps_per_epoch = (len(x) + args.batch_size - 1) // args.batch_size
    total_steps = steps_per_epoch * args.epochs_per_variant * 2

    with tempfile.TemporaryDirectory(prefix="foxml-bench-") as workdir:
        events = fe.TrainingEventEmitter("bench-overhead", path=os.path.join(workdir, "events.jsonl"))
        step = 0

        def epoch(emit: bool) -> float:
            nonlocal step
            order = torch.randperm(len(x))
            start = time.perf_counter()
            for k in range(steps_per_epoch):
                index = order[k * args.batch_size:(k + 1) * args.batch_size]
                logits = model(x[index])
                loss = loss_fn(logits, y[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                # Both variants compute what a loop that logs would compute; only emitting differs.
                accuracy = (logits.argmax(1) == y[index]).float().mean()
                if emit:
                    events.log_metrics({"loss": loss, "accuracy": accuracy, "lr": 0.05}, step=step)
                    events.emit_progress("training", 100.0 * step / total_steps, step=step, total_steps=total_steps)
                step += 1
            return time.perf_counter() - start

        epoch(False)  # warm-up
        # Two identical variants without events (an A/A control) show the noise floor: a
        # difference between "with" and "without" below it is not a measured cost.
        without, control, with_events = [], [], []
        for _ in range(args.epochs_per_variant):
            without.append(epoch(False))
            with_events.append(epoch(True))
            control.append(epoch(False))
        report = events.close()
        a, b, c = statistics.median(with_events), statistics.median(without), statistics.median(control)
        print(f"digits MLP, batch {args.batch_size}, {steps_per_epoch} steps per epoch, "
              f"{args.epochs_per_variant} epochs per variant (interleaved), 1 torch thread")
        print("| variant | median epoch s | per step us |\n|---|---|---|")
        print(f"| without events | {b:.4f} | {1e6 * b / steps_per_epoch:.1f} |")
        print(f"| without events (A/A control) | {c:.4f} | {1e6 * c / steps_per_epoch:.1f} |")
        print(f"| log_metrics(3 values, 2 of them tensors) + emit_progress per step | {a:.4f} | {1e6 * a / steps_per_epoch:.1f} |")
        print(f"\noverhead: {100.0 * (a - b) / b:+.2f}% of step time; noise floor (A/A): {100.0 * (c - b) / b:+.2f}%"
              f"  (events: {report})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
