"""Issue 14, Lightning: FoxmlLogger (logger and callback) on a real Trainer.fit of a small module built
here (CPU): its metrics equal CSVLogger's, run_start has the hyperparameters, stages and progress
to 100 %, run_complete; events-ctl cancel stops the fit within one step; an exception ends it
failed; DDP with 2 CPU processes (gloo) is one run with 2 ranks, and a cancel one rank took stops
both at the same step."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

pl = pytest.importorskip("lightning.pytorch")
torch = pytest.importorskip("torch")

import foxml_events as fe  # noqa: E402
from adapter_checks import (  # noqa: E402
    cancel, check_cancelled, check_lifecycle, events_of, final_progress, of_type, run_dir, sink_options, stages)
from foxml_events.lightning import FoxmlLogger  # noqa: E402
from test_control_e2e import wait_for  # noqa: E402
from lightning.pytorch.loggers import CSVLogger  # noqa: E402

_ = run_dir  # the fixture, used by name

# Lightning's own warnings (its torch pytree deprecation, few dataloader workers) say nothing about us.
pytestmark = [pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning"),
              pytest.mark.filterwarnings("ignore::lightning.fabric.utilities.warnings.PossibleUserWarning")]


class Regression(pl.LightningModule):
    def __init__(self, lr: float = 0.05, hidden: int = 8, fail_at: int = -1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if self.global_step == self.hparams.fail_at:
            raise RuntimeError("a broken batch")
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        self.log("train_mae", (self.net(x) - y).abs().mean())
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loader(n: int = 64) -> Any:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)


def trainer(loggers: List[Any], callbacks: List[Any], root: Path, **kw: Any) -> Any:
    return pl.Trainer(max_epochs=2, logger=loggers, callbacks=callbacks, log_every_n_steps=1, accelerator="cpu",
                      enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                      default_root_dir=str(root), **kw)


def csv_rows(path: Path) -> List[Tuple[int, int, Dict[str, float]]]:
    with open(path, newline="") as f:
        return [(int(row.pop("step")), int(row.pop("epoch")), {k: float(v) for k, v in row.items() if v != ""})
                for row in csv.DictReader(f)]


def test_fit_reports_what_csvlogger_logged(run_dir):
    torch.manual_seed(0)
    logger = FoxmlLogger("pl-fit", name="regression", tags=["test"], **sink_options(run_dir))
    csv_logger = CSVLogger(str(run_dir / "csv"))
    t = trainer([csv_logger, logger], [logger], run_dir)
    t.fit(Regression(), loader(), loader(16))
    assert t.global_step == 16

    events = events_of(run_dir, "pl-fit")
    config = check_lifecycle(events, "success")
    assert config == {"lr": 0.05, "hidden": 8, "fail_at": -1}
    assert events[0]["name"] == "regression" and events[0]["total_steps"] == 16 and events[0]["total_epochs"] == 2
    assert stages(events) == ["sanity_check", "idle", "training", "validation", "training", "validation",
                              "training", "idle"]
    assert final_progress(events) == 100.0
    progress = of_type(events, "progress")
    assert [(p["step"], p["epoch"]) for p in progress] == [(s, 1 + (s - 1) // 8) for s in range(1, 17)]

    ours = [(e["step"], e["epoch"], e["metrics"]) for e in of_type(events, "metrics")]
    theirs = csv_rows(Path(csv_logger.log_dir) / "metrics.csv")
    assert len(theirs) == 16 + 2  # a row per training step, one per validation
    assert ours == theirs
    assert {"val_loss"} == set(ours[8][2])  # validation's own event, in the validation stage


def test_events_ctl_cancel_stops_the_fit_within_one_step(run_dir):
    class CancelAt(pl.Callback):
        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            if trainer.global_step == 3:
                cancel("pl-cancel", run_dir)

    logger = FoxmlLogger("pl-cancel", **sink_options(run_dir))
    t = trainer([logger], [CancelAt(), logger], run_dir)
    t.fit(Regression(), loader(), loader(16))
    assert t.global_step == 3  # the step that saw the cancel was the last
    events = events_of(run_dir, "pl-cancel")
    check_lifecycle(events, "cancelled")
    check_cancelled(events, "pl-cancel")
    assert max(e["step"] for e in of_type(events, "progress")) == 3


def test_an_exception_ends_the_run_failed_with_its_error(run_dir):
    logger = FoxmlLogger("pl-fail", **sink_options(run_dir))
    with pytest.raises(RuntimeError, match="a broken batch"):
        trainer([logger], [logger], run_dir).fit(Regression(fail_at=2), loader(), loader(16))
    events = events_of(run_dir, "pl-fail")
    check_lifecycle(events, "failed")
    (error,) = of_type(events, "error")
    assert error["error_message"] == "a broken batch" and error["error_type"] == "RuntimeError"
    assert not error["recoverable"]


def test_a_later_validate_starts_the_run_again(run_dir):
    logger = FoxmlLogger("pl-again", **sink_options(run_dir))
    t = trainer([logger], [logger], run_dir, max_steps=2)
    module = Regression()
    t.fit(module, loader(), loader(16))
    t.validate(module, loader(16), verbose=False)
    events = events_of(run_dir, "pl-again")
    kinds = [e["event_type"] for e in events]
    assert kinds.count("run_start") == 2 and kinds.count("run_complete") == 2
    second = events[kinds.index("run_complete") + 1:]
    assert second[0]["event_type"] == "run_start" and "validation" in stages(second)
    assert second[-1]["status"] == "success"


def test_checkpoints_saved_and_asked_for(run_dir):
    from lightning.pytorch.callbacks import ModelCheckpoint

    class AskAt(pl.Callback):
        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            if trainer.global_step == 2:
                fe.send_command("pl-ckpt", "checkpoint", control_dir=str(run_dir / "control"))

    logger = FoxmlLogger("pl-ckpt", **sink_options(run_dir))
    saver = ModelCheckpoint(dirpath=str(run_dir / "ckpt"))
    t = pl.Trainer(max_epochs=1, logger=logger, callbacks=[AskAt(), saver, logger], log_every_n_steps=1,
                   accelerator="cpu", enable_progress_bar=False, enable_model_summary=False,
                   default_root_dir=str(run_dir))
    t.fit(Regression(), loader(), loader(16))
    asked = run_dir / "foxml-checkpoints" / "step=2.ckpt"
    assert asked.is_file()
    events = events_of(run_dir, "pl-ckpt")
    check_lifecycle(events, "success")
    done = [(e["command"], e["outcome"], e["message"]) for e in of_type(events, "command_done")]
    assert done == [("checkpoint", "ok", f"checkpoint saved to {asked}")]
    saved = [e["message"] for e in of_type(events, "log") if e["message"].startswith("checkpoint saved")]
    assert saved == [f"checkpoint saved: {saver.last_model_path or saver.best_model_path}"]
    assert saved[0].endswith(".ckpt")


def test_rank_zero_only_keeps_metrics_to_rank_zero():
    for rank in (0, 1):
        logger = FoxmlLogger("pl-r0", "memory://", rank=rank, world_size=2, rank_zero_only=True)
        logger.log_metrics({"loss": 1.0}, step=0)
        stats = logger.experiment.stats()
        assert stats["dropped_by_policy"] == rank
        logger.finalize("success")


DDP_SCRIPT = textwrap.dedent(
    """
    import os, sys, warnings
    warnings.filterwarnings("ignore")
    import torch, lightning.pytorch as pl
    import foxml_events as fe
    from foxml_events.lightning import FoxmlLogger
    sys.path.insert(0, sys.argv[2])
    from test_adapters_lightning import Regression, loader

    sock, root = sys.argv[1], sys.argv[3]
    # Made before Lightning starts rank 1 (LOCAL_RANK is set only there): the run id is made here and
    # inherited. A control directory per rank: rank 1 cancels through its own.
    control = f"{root}/control{os.environ.get('LOCAL_RANK', '0')}"
    logger = FoxmlLogger(sink="unix://" + sock, control_directory=control)


    class CancelOnRankOne(pl.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_rank == 1 and trainer.global_step == 2:
                fe.send_command(logger.run_id, "cancel", control_dir=control)


    t = pl.Trainer(max_epochs=2, logger=logger, callbacks=[CancelOnRankOne(), logger], strategy="ddp", devices=2,
                   accelerator="cpu", log_every_n_steps=1, enable_progress_bar=False, enable_model_summary=False,
                   enable_checkpointing=False, default_root_dir=root)
    t.fit(Regression(), loader(32), loader(16))
    with open(f"{root}/rank{t.global_rank}.txt", "w") as out:
        out.write(f"{logger.run_id} {t.global_step}")
    """
)


def test_ddp_with_two_cpu_processes_is_one_run_with_two_ranks_and_a_cancel_stops_both(run_dir):
    script = run_dir / "ddp.py"
    script.write_text(DDP_SCRIPT)
    sock = run_dir / "events.sock"
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "TORCHELASTIC_RUN_ID", "SLURM_JOB_ID",
                        "FOXML_EVENTS_ADAPTER_RUN_ID")}
    env["OMP_NUM_THREADS"] = "1"
    with fe.EventReader(f"unix://{sock}", idle_timeout=None) as reader:
        reader.start()
        done = subprocess.run([sys.executable, str(script), str(sock), str(Path(__file__).parent), str(run_dir)],
                              env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-3000:]
        printed = {(run_dir / f"rank{rank}.txt").read_text() for rank in (0, 1)}
        (run_id,) = {line.split()[0] for line in printed}  # one id, made by rank 0's process
        assert {line.split()[1] for line in printed} == {"2"}  # both stopped at the step rank 1 was cancelled
        assert wait_for(lambda: len([e for e in reader.buffer.since(0).events
                                     if e["event_type"] == "run_complete"]) == 2, timeout=60)
        events = list(reader.buffer.since(0).events)
        run = reader.tracker.run(run_id)
    assert {e["run_id"] for e in events} == {run_id}
    assert {(e["rank"], e["world_size"]) for e in events} == {(0, 2), (1, 2)}
    assert len({e["pid"] for e in events}) == 2
    for rank in (0, 1):
        mine = [e for e in events if e["rank"] == rank]
        assert mine[0]["event_type"] == "run_start" and mine[-1]["status"] == "cancelled"
        assert of_type(mine, "metrics") and max(e["step"] for e in of_type(mine, "progress")) == 2
    check_cancelled([e for e in events if e["rank"] == 1], run_id)  # the rank that took it answers it
    assert not of_type([e for e in events if e["rank"] == 0], "command_received")
    assert run is not None and run["world_size"] == 2 and run["status"] == "cancelled"
    assert sorted(int(r) for r in run["ranks"]) == [0, 1]
