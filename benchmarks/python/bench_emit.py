"""Python cost per event: foxml_events against what a training script would use instead.

Every case logs the same content: a progress event, or one step of 4 scalars. Peers run in the same
process, interleaved with ours, so drift of a shared machine hits all alike. Peers that are not
installed are reported as such (see benchmarks/run_all.sh for the environment that has them).

    python benchmarks/python/bench_emit.py [--calls N] [--no-peers]
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional

import foxml_events as fe

BATCH = 100  # calls timed together; the per-call figure is the batch time / BATCH


def time_per_call(call: Callable[[int], None], calls: int) -> List[float]:
    """Returns per-call nanoseconds for each batch of BATCH calls."""
    samples = []
    clock = time.perf_counter_ns
    for start in range(0, calls, BATCH):
        t0 = clock()
        for i in range(start, start + BATCH):
            call(i)
        samples.append((clock() - t0) / BATCH)
    return samples


def summarize(samples: List[float]) -> Dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
    }


class SeedEmitter:
    """The seed's emitter (seed 004): json.dumps and an open/append per event."""

    def __init__(self, run_id: str, path: str) -> None:
        self.run_id = run_id
        self.path = path

    def _emit(self, event: dict) -> None:
        event["run_id"] = self.run_id
        event["timestamp"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
        line = json.dumps(event) + "\n"
        with open(self.path, "a") as f:
            f.write(line)

    def emit_progress(self, stage, progress_pct, step, total_steps):
        self._emit({"event_type": "progress", "stage": stage, "progress_pct": progress_pct, "current_target": None,
                    "targets_complete": 0, "targets_total": 0, "step": step, "total_steps": total_steps})

    def log_metrics(self, metrics, step):
        self._emit({"event_type": "metrics", "step": step, "metrics": metrics})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = dict(record.__dict__.get("event", {}))
        payload["timestamp"] = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc).isoformat()
        return json.dumps(payload)


def build_cases(workdir: str, with_peers: bool) -> Dict[str, Dict[str, Optional[Callable[[int], None]]]]:
    """Returns {case: {implementation: call or None when unavailable}}."""
    ours = fe.TrainingEventEmitter("bench-run", path=os.path.join(workdir, "ours.jsonl"))
    metrics = {"loss": 0.25, "accuracy": 0.9, "lr": 1e-3, "grad_norm": 0.5}
    seed = SeedEmitter("bench-run", os.path.join(workdir, "seed.jsonl"))

    logger = logging.getLogger("bench-json")
    logger.propagate = False
    handler = logging.FileHandler(os.path.join(workdir, "logging.jsonl"))
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    progress: Dict[str, Optional[Callable[[int], None]]] = {
        "foxml_events": lambda i: ours.emit_progress("training", i * 1e-3, step=i, total_steps=1_000_000),
        "seed emitter (json.dumps + append)": lambda i: seed.emit_progress("training", i * 1e-3, i, 1_000_000),
        "logging + JSON formatter": lambda i: logger.info(
            "progress", extra={"event": {"event_type": "progress", "stage": "training", "progress_pct": i * 1e-3,
                                         "step": i, "total_steps": 1_000_000}}),
    }
    step: Dict[str, Optional[Callable[[int], None]]] = {
        "foxml_events": lambda i: ours.log_metrics(metrics, step=i),
        "seed emitter (json.dumps + append)": lambda i: seed.log_metrics(metrics, i),
        "logging + JSON formatter": lambda i: logger.info(
            "metrics", extra={"event": {"event_type": "metrics", "step": i, "metrics": metrics}}),
    }

    try:
        import zmq

        context = zmq.Context.instance()
        publisher = context.socket(zmq.PUB)
        publisher.bind("ipc://" + os.path.join(workdir, "bench.ipc"))
        progress["pyzmq send_json"] = lambda i: publisher.send_json(
            {"event_type": "progress", "stage": "training", "progress_pct": i * 1e-3, "step": i})
        step["pyzmq send_json"] = lambda i: publisher.send_json({"event_type": "metrics", "step": i, "metrics": metrics})
    except ImportError:
        progress["pyzmq send_json"] = step["pyzmq send_json"] = None

    if with_peers:
        add_ml_loggers(step, workdir, metrics)
    return {"emit_progress(...) with keywords": progress, "one step of 4 scalars": step}


def add_ml_loggers(step: Dict[str, Optional[Callable[[int], None]]], workdir: str, metrics: Dict[str, float]) -> None:
    try:
        os.environ["WANDB_MODE"] = "offline"
        os.environ["WANDB_SILENT"] = "true"
        os.environ["WANDB_DIR"] = workdir
        import wandb

        run = wandb.init(project="foxml-bench", dir=workdir)
        step["W&B wandb.log (offline)"] = lambda i: run.log(metrics, step=i)
    except Exception as error:  # not installed, or cannot start here
        print(f"W&B unavailable: {error}", file=sys.stderr)
        step["W&B wandb.log (offline)"] = None
    try:
        # MLflow 3 keeps the local file store behind this switch; the issue asks for a file store.
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        import mlflow

        mlflow.set_tracking_uri("file://" + os.path.join(workdir, "mlruns"))
        mlflow.start_run()
        step["MLflow log_metric x4 (sync)"] = lambda i: [mlflow.log_metric(k, v, step=i) for k, v in metrics.items()]
        step["MLflow log_metrics (sync)"] = lambda i: mlflow.log_metrics(metrics, step=i)
        step["MLflow log_metrics (async)"] = lambda i: mlflow.log_metrics(metrics, step=i, synchronous=False)
    except Exception as error:
        print(f"MLflow unavailable: {error}", file=sys.stderr)
        for name in ("MLflow log_metric x4 (sync)", "MLflow log_metrics (sync)", "MLflow log_metrics (async)"):
            step[name] = None
    try:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=os.path.join(workdir, "tb"))
        step["TensorBoard add_scalar x4"] = lambda i: [writer.add_scalar(k, v, i) for k, v in metrics.items()]
    except Exception as error:
        print(f"TensorBoard unavailable: {error}", file=sys.stderr)
        step["TensorBoard add_scalar x4"] = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20_000, help="calls per implementation and case")
    parser.add_argument("--no-peers", action="store_true", help="skip W&B, MLflow and TensorBoard")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="foxml-bench-") as workdir:
        cases = build_cases(workdir, with_peers=not args.no_peers)
        for case, impls in cases.items():
            results: Dict[str, List[float]] = {name: [] for name, call in impls.items() if call is not None}
            rounds = 4
            for _ in range(rounds):  # interleave implementations round by round
                for name, call in impls.items():
                    if call is not None:
                        per_round = max(BATCH, args.calls // rounds // BATCH * BATCH)
                        # Slow peers get fewer calls so the whole run stays in minutes.
                        if name != "foxml_events" and not name.startswith(("seed", "logging", "pyzmq")):
                            per_round = max(BATCH, per_round // 20)
                        results[name].extend(time_per_call(call, per_round))
            ours = summarize(results["foxml_events"])
            print(f"\n{case} (ns per call; ratio = peer p50 / foxml_events p50)\n")
            print(f"| {'implementation':<36} | {'p50 ns':>10} | {'p99 ns':>10} | {'ratio':>8} |")
            print(f"|{'-' * 38}|{'-' * 12}|{'-' * 12}|{'-' * 10}|")
            for name, call in impls.items():
                if call is None:
                    print(f"| {name:<36} | {'unavailable':>10} | {'':>10} | {'':>8} |")
                    continue
                s = summarize(results[name])
                print(f"| {name:<36} | {s['p50']:>10.0f} | {s['p99']:>10.0f} | {s['p50'] / ours['p50']:>7.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
