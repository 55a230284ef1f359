"""FoxmlLogger: a Lightning logger (and callback) that reports the run through foxml_events.

    from foxml_events.lightning import FoxmlLogger

    logger = FoxmlLogger(run_id="mnist-7")          # sink=... as TrainingEventEmitter; default sink
    trainer = Trainer(logger=logger, callbacks=[logger], max_epochs=2)

As the logger it turns ``log_hyperparams`` into run_start's config, ``log_metrics`` into metrics
events (Lightning's ``epoch`` key becomes the event's epoch), ``after_save_checkpoint`` into a log
line and ``finalize(status)`` into run_complete (success, failed, cancelled, killed). Passed as a
callback too (a Lightning logger never sees the trainer otherwise) it adds the stages
(sanity_check, training, validation, test, predict), progress after every training step (step of
``estimated_stepping_batches``, epoch of ``max_epochs``) and the control commands: ``cancel`` sets
``trainer.should_stop`` (the run then ends ``cancelled``), ``pause`` holds the loop until
``resume``, ``checkpoint`` saves one with ``trainer.save_checkpoint`` (one process only; under
DDP it is ignored, since every rank would have to take part). Under DDP the stop decision is
voted over the ranks each step (one all-reduce of a CPU flag, over gloo, so no CUDA sync), so a
cancel any rank took stops all of them at the same step.

Every rank emits with its own rank (one run, N ranks in a reader) unless ``rank_zero_only=True``
keeps metrics and log lines to rank 0. Without ``run_id`` the run id is torchrun's / Slurm's, else
one made up here and handed to the processes Lightning's DDP launcher starts (through the
environment), so all ranks share it. The emitter is made on first use (after the process group is
up), so each rank takes its rank from it.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional

try:
    import lightning.pytorch as _pl
    from lightning.pytorch.callbacks import Callback as _Callback
    from lightning.pytorch.loggers.logger import Logger as _Logger
except ImportError as _error:  # pragma: no cover - tested in a process without lightning
    from ._adapters import import_error

    raise import_error("lightning", "lightning", _error) from _error

from ._adapters import RunParts, StopVote, emitter_for, map_status, no_vote, progress_pct, resolve_run_id
from ._emitter import Command, TrainingEventEmitter

__all__ = ["FoxmlLogger"]


class FoxmlLogger(_Logger, _Callback):
    """Lightning's ``Logger`` contract on a foxml_events emitter; pass it as a callback too.

    ``run_id``: the run (default: see the module). ``sink`` and ``**options``: those of
    TrainingEventEmitter (``sink=None``: the library's default). ``emitter``: an emitter of your
    own instead (the logger then never closes it). ``name``, ``tags``: run_start's. ``rank_zero_only``:
    metrics and log lines from rank 0 only.
    """

    def __init__(self, run_id: Optional[str] = None, sink: Any = None, *, name: Optional[str] = None,
                 tags: Optional[list] = None, emitter: Optional[TrainingEventEmitter] = None,
                 rank_zero_only: bool = False, **options: Any) -> None:
        super().__init__()
        if emitter is not None and (sink is not None or options):
            raise TypeError("foxml_events.lightning: pass emitter= or sink/emitter options, not both")
        self._run_id = emitter.run_id if emitter is not None else resolve_run_id(run_id, "lightning")
        self._sink = sink
        self._name = name
        self._tags = tags
        self._given = emitter
        self._options = options
        self._rank_zero_only = rank_zero_only
        self._emitter: Optional[TrainingEventEmitter] = None
        self._owned = False
        self._trainer: Any = None
        self._started = False
        self._exception: Optional[BaseException] = None
        self._total_steps: Optional[int] = None
        self._max_epochs: Optional[int] = None
        self._vote: Any = no_vote

    # ---- Logger ---------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name or "foxml_events"

    @property
    def version(self) -> str:
        return self._run_id

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def experiment(self) -> TrainingEventEmitter:
        """The emitter (made on first use, with this process's rank)."""
        if self._emitter is None:
            options: Dict[str, Any] = dict(self._options)
            if self._given is None:
                _rank_from_process_group(options)
            emitter, owned = emitter_for("lightning", self._run_id, self._sink, self._given, options,
                                         self._rank_zero_only)
            self._emitter, self._owned = emitter, owned
            self._run = RunParts(emitter, self._checkpoint)
            self._started = False
        return self._emitter

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        config = _as_dict(params)
        if not self._started:
            self._start(config)
        else:  # more hyperparameters once the run has begun: kept in the stream as a log line
            import json

            self.experiment.log("info", "hyperparameters: " + json.dumps(config, default=str, sort_keys=True))

    def log_metrics(self, metrics: Mapping[str, Any], step: Optional[int] = None) -> None:
        self._start()
        values = dict(metrics)
        epoch = values.pop("epoch", None)
        self._run.metrics.send(values, step=step, epoch=None if epoch is None else int(epoch))

    def save(self) -> None:
        """Nothing to do: events are written as they come (flush() waits for them)."""

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        path = (getattr(checkpoint_callback, "_last_checkpoint_saved", "")
                or getattr(checkpoint_callback, "last_model_path", "")
                or getattr(checkpoint_callback, "best_model_path", ""))
        self.experiment.log("info", f"checkpoint saved: {path}" if path else "checkpoint saved")

    def finalize(self, status: str) -> None:
        """run_complete: ``success`` (Lightning's success/finished), ``cancelled`` (a cancel command
        or Ctrl-C), ``failed`` (an exception; its error event first)."""
        if self._emitter is None:
            return
        emitter = self._emitter
        self._start()
        exception, self._exception = self._exception, None
        step = getattr(self._trainer, "global_step", None)
        self._run.end(map_status(status), exception, f"at step {step}" if step is not None else "")
        if self._owned:
            emitter.close()
        # A later trainer.validate()/test() with this logger starts the run again (a new run_start).
        self._emitter = None

    # ---- Callback -------------------------------------------------------------------------------

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._trainer = trainer
        _ = self.experiment

    def on_sanity_check_start(self, trainer: Any, pl_module: Any) -> None:
        self._enter("sanity_check")

    def on_sanity_check_end(self, trainer: Any, pl_module: Any) -> None:
        self._run.stages.leave("sanity_check")

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._vote = StopVote()  # every rank is here: the vote's set-up is a collective
        # Lightning works the totals out again on every access: once per fit is enough.
        self._total_steps = _total_steps(trainer)
        self._max_epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        self._enter("training")

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._run.stages.leave("training")

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking:
            self._enter("validation")

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        self._run.stages.leave("validation")

    def on_test_start(self, trainer: Any, pl_module: Any) -> None:
        self._enter("test")

    def on_test_end(self, trainer: Any, pl_module: Any) -> None:
        self._run.stages.leave("test")

    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
        self._enter("predict")

    def on_predict_end(self, trainer: Any, pl_module: Any) -> None:
        self._run.stages.leave("predict")

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        emitter = self.experiment
        step = trainer.global_step
        total_steps, max_epochs = self._total_steps, self._max_epochs
        pct = progress_pct(step, total_steps)
        if pct is None and max_epochs:  # only an epoch count: progress in epochs (and batches of this one)
            batches = trainer.num_training_batches
            within = (batch_idx + 1) / batches if batches and batches != float("inf") else 0.0
            pct = progress_pct(trainer.current_epoch + within, max_epochs)
        emitter.emit_progress("training", pct if pct is not None else 0.0, step=step, total_steps=total_steps,
                              epoch=trainer.current_epoch + 1, total_epochs=max_epochs)
        stop = self._vote(self._run.control.check())
        if stop:
            self._run.control.stop_requested = True
            trainer.should_stop = True

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._exception = exception

    @property
    def state_key(self) -> str:
        return f"FoxmlLogger[{self._run_id}]"

    # ---- the logger's own ---------------------------------------------------------------------

    def _start(self, config: Optional[Dict[str, Any]] = None) -> None:
        if self._started:
            return
        emitter = self.experiment
        self._started = True
        trainer = self._trainer
        total_steps = total_epochs = None
        if trainer is not None:
            total_steps = _total_steps(trainer)
            total_epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        emitter.emit_run_start(config=config, name=self._name, tags=self._tags, total_steps=total_steps,
                               total_epochs=total_epochs)

    def _enter(self, stage: str) -> None:
        self._start()
        self._run.stages.enter(stage)

    def _checkpoint(self, command: Command) -> str:
        trainer = self._trainer
        if trainer is None:
            raise RuntimeError("the logger is not a callback of the trainer (callbacks=[logger])")
        if trainer.world_size > 1:
            raise RuntimeError("a checkpoint on request needs every rank; not under DDP")
        folder = os.path.join(trainer.default_root_dir, "foxml-checkpoints")
        path = os.path.join(folder, f"step={trainer.global_step}.ckpt")
        trainer.save_checkpoint(path)
        return f"checkpoint saved to {path}"


def _total_steps(trainer: Any) -> Optional[int]:
    try:
        total = trainer.estimated_stepping_batches
    except Exception:  # noqa: BLE001 - outside fit (validate/test) Lightning cannot tell
        return None
    return int(total) if total and total != float("inf") else None


def _rank_from_process_group(options: Dict[str, Any]) -> None:
    """Rank and world size from torch.distributed once Lightning started it (the launcher's parent
    process has no $RANK)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        options.setdefault("rank", dist.get_rank())
        options.setdefault("world_size", dist.get_world_size())
        local = os.environ.get("LOCAL_RANK")
        if local is not None and local.isdigit():
            options.setdefault("local_rank", int(local))


def _as_dict(params: Any) -> Dict[str, Any]:
    if isinstance(params, Mapping):
        return dict(params)
    if hasattr(params, "__dict__"):  # argparse.Namespace
        return dict(vars(params))
    return {"hyperparameters": params}


_ = _pl  # lightning.pytorch is imported above for the clear error when it is missing
