"""Overhead of the framework adapters per logged step, against each framework's own logging.

Two tables, both measured in this one run (CPU; variants interleaved, medians, so machine drift
hits all alike):

1. The hook: what the framework calls per logged step, timed alone. Lightning: ``log_metrics`` +
   ``save()`` of FoxmlLogger against CSVLogger (its own file logger). Transformers: FoxmlCallback's ``on_log`` +
   ``on_step_end`` (transformers keeps ``state.log_history`` either way; nothing else to compare
   with). Accelerate: FoxmlTracker's ``log`` with tensor values (+ ``should_stop()``).
2. Whole training steps: a small model trained with the framework, logging every step, without a
   logger, with the framework's CSV logger (Lightning), and with the adapter; the ratio of their
   median per-step times (set-up excluded), with an A/A row (no logger twice) for the noise floor.

    python benchmarks/python/bench_adapters.py [--quick]

Not a CI check: the figures depend on the machine (the events go to a file, as with the default
sink when no listener runs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from typing import Any, Callable, Dict, List

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
warnings.filterwarnings("ignore")

import torch  # noqa: E402


def per_call_us(fn: Callable[[int], Any], calls: int, repeats: int) -> float:
    """Median over ``repeats`` of the mean time of ``calls`` calls, in microseconds."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(calls):
            fn(i)
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)


def interleaved(variants: Dict[str, Callable[[], float]], repeats: int) -> Dict[str, float]:
    """Median of each variant's per-step seconds, the variants taking turns (the order rotating, so
    none always runs first or right after the same one)."""
    samples: Dict[str, List[float]] = {name: [] for name in variants}
    names = list(variants)
    for turn in range(repeats):
        for name in names[turn % len(names):] + names[:turn % len(names)]:
            samples[name].append(variants[name]())
    return {name: statistics.median(values) for name, values in samples.items()}


def row(name: str, baseline_name: str, baseline: float, ours: float, unit: str = "us") -> str:
    ratio = f"{ours / baseline:.2f}" if baseline > 0 else "-"
    return (f"| {name} | {baseline_name} | {baseline:.2f} {unit} | {ours:.2f} {unit} | {ratio} "
            f"| {ours - baseline:+.2f} {unit} |")


def lightning_tables(workdir: str, calls: int, repeats: int, steps: int) -> List[str]:
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger

    from foxml_events.lightning import FoxmlLogger

    rows = []
    metrics = {"train_loss": 0.5, "train_acc": 0.9, "epoch": 0}
    csv_logger = CSVLogger(os.path.join(workdir, "csv"))
    ours = FoxmlLogger("bench-pl", os.path.join(workdir, "pl.jsonl"))

    def with_csv(i: int) -> None:
        csv_logger.log_metrics(dict(metrics), step=i)
        csv_logger.save()

    def with_ours(i: int) -> None:
        ours.log_metrics(dict(metrics), step=i)
        ours.save()

    csv_us = per_call_us(with_csv, calls, repeats)
    ours_us = per_call_us(with_ours, calls, repeats)
    rows.append(row("Lightning log_metrics + save", "CSVLogger", csv_us, ours_us))
    ours.finalize("success")

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(16, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    class Clock(pl.Callback):
        """The training steps alone: set-up (the emitter's, Lightning's) is not per step."""

        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            self.start = time.perf_counter()

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            self.seconds = time.perf_counter() - self.start

    x = torch.randn(steps * 4, 16)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4)
    runs = [0]

    def fit(kind: str) -> float:
        runs[0] += 1
        if kind == "none":
            loggers: Any = False
            callbacks: List[Any] = []
        elif kind == "csv":
            loggers, callbacks = CSVLogger(os.path.join(workdir, "csv-fit")), []
        else:
            logger = FoxmlLogger(f"bench-pl-fit-{runs[0]}", os.path.join(workdir, "pl-fit.jsonl"))
            loggers, callbacks = logger, [logger]
        clock = Clock()
        trainer = pl.Trainer(max_epochs=1, logger=loggers, callbacks=[clock, *callbacks], log_every_n_steps=1,
                             accelerator="cpu", enable_progress_bar=False, enable_model_summary=False,
                             enable_checkpointing=False, default_root_dir=workdir)
        trainer.fit(Tiny(), loader)
        return clock.seconds / steps

    fits = interleaved({"none": lambda: fit("none"), "none again": lambda: fit("none"), "csv": lambda: fit("csv"),
                        "ours": lambda: fit("ours")}, repeats)
    whole = [row("Lightning Trainer.fit step (A/A: no logger twice)", "no logger", fits["none"] * 1e6,
                 fits["none again"] * 1e6),
             row("Lightning Trainer.fit step", "no logger", fits["none"] * 1e6, fits["ours"] * 1e6),
             row("Lightning Trainer.fit step", "CSVLogger", fits["csv"] * 1e6, fits["ours"] * 1e6)]
    return rows + ["--"] + whole


def transformers_tables(workdir: str, calls: int, repeats: int, steps: int) -> List[str]:
    import transformers

    from foxml_events.transformers import FoxmlCallback

    callback = FoxmlCallback("bench-hf", os.path.join(workdir, "hf.jsonl"))
    state = transformers.TrainerState(global_step=0, max_steps=calls, epoch=0.0, num_train_epochs=1)
    control = transformers.TrainerControl()
    logs = {"loss": 0.5, "grad_norm": 1.0, "learning_rate": 1e-3, "epoch": 0.1}

    def hooks(i: int) -> None:
        state.global_step = i
        callback.on_step_end(None, state, control)
        callback.on_log(None, state, control, logs=dict(logs))

    hook_us = per_call_us(hooks, calls, repeats)
    rows = [row("Transformers on_step_end + on_log", "nothing", 0.0, hook_us)]

    config = transformers.BertConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, num_labels=2)
    ids = torch.randint(0, 32, (steps * 4, 8))
    data = [{"input_ids": ids[i], "labels": int(ids[i, 0] % 2)} for i in range(len(ids))]
    runs = [0]

    class Clock(transformers.TrainerCallback):
        def on_train_begin(self, *args: Any, **kwargs: Any) -> None:
            self.start = time.perf_counter()

        def on_train_end(self, *args: Any, **kwargs: Any) -> None:
            self.seconds = time.perf_counter() - self.start

    def train(with_callback: bool) -> float:
        runs[0] += 1
        args = transformers.TrainingArguments(
            output_dir=os.path.join(workdir, "hf-out"), per_device_train_batch_size=4, num_train_epochs=1,
            logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True)
        callbacks = ([FoxmlCallback(f"bench-hf-{runs[0]}", os.path.join(workdir, "hf-fit.jsonl"))]
                     if with_callback else [])
        clock = Clock()
        trainer = transformers.Trainer(model=transformers.BertForSequenceClassification(config), args=args,
                                       train_dataset=data, callbacks=[clock, *callbacks])
        trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # no log lines on stdout
        trainer.train()
        elapsed = clock.seconds / steps
        if callbacks:
            callbacks[0].emitter.close()
        return elapsed

    fits = interleaved({"none": lambda: train(False), "none again": lambda: train(False),
                        "ours": lambda: train(True)}, repeats)
    return rows + ["--", row("Transformers Trainer.train step (A/A)", "no callback", fits["none"] * 1e6,
                             fits["none again"] * 1e6),
                   row("Transformers Trainer.train step", "no callback", fits["none"] * 1e6, fits["ours"] * 1e6)]


def accelerate_tables(workdir: str, calls: int, repeats: int, steps: int) -> List[str]:
    import accelerate

    from foxml_events.accelerate import FoxmlTracker

    tracker = FoxmlTracker("bench-acc", os.path.join(workdir, "acc.jsonl"), total_steps=calls)
    loss = torch.tensor(0.5)

    def log(i: int) -> None:
        tracker.log({"loss": loss, "lr": 1e-3}, step=i)
        tracker.should_stop()

    rows = [row("Accelerate tracker.log (a tensor) + should_stop", "nothing", 0.0, per_call_us(log, calls, repeats))]
    tracker.finish()

    x = torch.randn(steps * 4, 16)
    runs = [0]

    def loop(with_tracker: bool) -> float:
        runs[0] += 1
        tracker = FoxmlTracker(f"bench-acc-{runs[0]}", os.path.join(workdir, "acc-fit.jsonl"), total_steps=steps) \
            if with_tracker else None
        accelerator = accelerate.Accelerator(cpu=True, log_with=tracker)
        accelerator.init_trackers("bench")
        model = torch.nn.Linear(16, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        model, optimizer = accelerator.prepare(model, optimizer)
        start = time.perf_counter()
        for step in range(steps):
            batch = x[step * 4:(step + 1) * 4]
            out = torch.nn.functional.mse_loss(model(batch), batch.sum(1, keepdim=True))
            accelerator.backward(out)
            optimizer.step()
            optimizer.zero_grad()
            accelerator.log({"loss": out.detach()}, step=step + 1)
            if tracker is not None and tracker.should_stop():
                break
        elapsed = (time.perf_counter() - start) / steps
        accelerator.end_training()
        return elapsed

    fits = interleaved({"none": lambda: loop(False), "none again": lambda: loop(False),
                        "ours": lambda: loop(True)}, repeats)
    return rows + ["--", row("Accelerate loop step (A/A)", "no tracker", fits["none"] * 1e6, fits["none again"] * 1e6),
                   row("Accelerate loop step", "no tracker", fits["none"] * 1e6, fits["ours"] * 1e6)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and repetitions (a smoke run)")
    args = parser.parse_args()
    calls, repeats, steps = (200, 3, 20) if args.quick else (5000, 7, 100)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    header = ("| per logged step | baseline | baseline | with the adapter | ratio | overhead |\n"
              "|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="foxml-bench-adapters-") as workdir:
        os.environ["FOXML_EVENTS_CONTROL"] = os.environ.get("FOXML_EVENTS_CONTROL", "1")
        hooks: List[str] = []
        whole: List[str] = []
        for tables in (lightning_tables, transformers_tables, accelerate_tables):
            made = tables(workdir, calls, repeats, steps)
            cut = made.index("--")
            hooks += made[:cut]
            whole += made[cut + 1:]
    print(f"## Adapter overhead ({calls} hook calls x {repeats}; {steps} training steps x {repeats}, interleaved)\n")
    print("Hook cost per logged step (the framework's call into its logger):\n")
    print(header)
    print("\n".join(hooks))
    print("\nWhole training step, logging every step:\n")
    print(header)
    print("\n".join(whole))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
