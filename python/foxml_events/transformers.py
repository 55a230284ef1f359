"""FoxmlCallback: a Hugging Face ``TrainerCallback`` that reports the run through foxml_events.

    from foxml_events.transformers import FoxmlCallback

    trainer = Trainer(model=model, args=args, train_dataset=..., callbacks=[FoxmlCallback(run_id="bert-3")])

``report_to`` takes only the names transformers itself knows (its table of integrations is not
open to other packages), so the callback goes in ``callbacks=[...]``; ``report_to`` stays as it
is (``"none"`` for no other tracker).

``on_train_begin``: run_start with the ``TrainingArguments`` (``config["training_args"]``) and the
model's config (``config["model_config"]``), total steps and epochs. ``on_log``: a metrics event per
log call, as transformers logged it (train logs ``loss``, ``learning_rate``... and eval logs
``eval_*`` are separate calls, so separate events; ``epoch`` stays transformers' fractional one).
``on_step_end``: progress (``global_step`` of ``max_steps``) and the control commands: ``cancel``
sets ``control.should_training_stop`` (run_complete ``cancelled``), ``pause`` holds the loop until
``resume``, ``checkpoint`` sets ``control.should_save`` (acknowledged once saved). Evaluation is the
stage ``evaluation`` (from its first prediction step to ``on_evaluate``). ``on_save``: a log line.
Under DDP the stop decision is voted over the ranks each step (one all-reduce of a CPU flag over
gloo, no CUDA sync), so every rank leaves at the same step.
``on_train_end``: run_complete.

An exception out of ``trainer.train()`` passes no callback; ``with callback: trainer.train()`` ends
the run ``failed`` with the error (``cancelled`` for Ctrl-C), as the emitter's own ``with`` does.
"""

from __future__ import annotations

import math
from types import TracebackType
from typing import Any, Dict, Optional, Type

try:
    from transformers import TrainerCallback as _TrainerCallback
except ImportError as _error:  # pragma: no cover - tested in a process without transformers
    from ._adapters import import_error

    raise import_error("transformers", "transformers", _error) from _error

from ._adapters import RunParts, StopVote, emitter_for, no_vote, progress_pct
from ._emitter import Command, TrainingEventEmitter

__all__ = ["FoxmlCallback"]


class FoxmlCallback(_TrainerCallback):
    """``run_id``, ``sink``, ``**options``: those of TrainingEventEmitter (default run id: torchrun's
    or Slurm's, else one made up). ``emitter``: your own instead (never closed here). ``name``,
    ``tags``: run_start's (name defaults to ``args.run_name``). ``rank_zero_only``: metrics and log
    lines from rank 0 only (every rank emits with its rank otherwise)."""

    def __init__(self, run_id: Optional[str] = None, sink: Any = None, *, name: Optional[str] = None,
                 tags: Optional[list] = None, emitter: Optional[TrainingEventEmitter] = None,
                 rank_zero_only: bool = False, **options: Any) -> None:
        self._emitter, self._owned = emitter_for("transformers", run_id, sink, emitter, options, rank_zero_only)
        self._name = name
        self._tags = tags
        self._run = RunParts(self._emitter, self._checkpoint)
        self._hf_control: Any = None
        self._save_asked: Optional[Command] = None
        self._completed = False
        self._vote: Any = no_vote

    @property
    def emitter(self) -> TrainingEventEmitter:
        return self._emitter

    @property
    def run_id(self) -> str:
        return self._emitter.run_id

    def should_stop(self) -> bool:
        """Whether a cancel was taken (the callback also stops the Trainer itself)."""
        return self._run.control.check()

    # ---- TrainerCallback ------------------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        config: Dict[str, Any] = {"training_args": args.to_dict()}
        model_config = getattr(model, "config", None)
        if model_config is not None and hasattr(model_config, "to_dict"):
            config["model_config"] = model_config.to_dict()
        epochs = getattr(state, "num_train_epochs", None)
        total_epochs = int(math.ceil(epochs)) if epochs else None
        self._emitter.emit_run_start(config=config, name=self._name or getattr(args, "run_name", None),
                                     tags=self._tags, total_steps=state.max_steps or None,
                                     total_epochs=total_epochs)
        self._completed = False
        self._vote = StopVote()  # every rank is here: the vote's set-up is a collective
        self._run.stages.enter("training")

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        step, total = state.global_step, state.max_steps
        epoch = max(1, int(math.ceil(state.epoch))) if state.epoch is not None else None
        total_epochs = getattr(state, "num_train_epochs", None) or None
        self._emitter.emit_progress("training", progress_pct(step, total) or 0.0, step=step,
                                    total_steps=total or None, epoch=epoch, total_epochs=total_epochs)
        self._hf_control = control
        if self._vote(self._run.control.check()):
            self._run.control.stop_requested = True
            control.should_training_stop = True

    def on_log(self, args: Any, state: Any, control: Any, logs: Optional[Dict[str, Any]] = None,
               **kwargs: Any) -> None:
        if logs:
            self._run.metrics.send(logs, step=state.global_step)

    def on_prediction_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._run.stages.enter("evaluation")

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> None:
        # The metrics themselves came through on_log (Trainer.evaluate logs them first).
        self._run.stages.leave("evaluation")

    def on_predict(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> None:
        self._run.stages.leave("evaluation")

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        where = f"{args.output_dir}/checkpoint-{state.global_step}"
        self._emitter.log("info", f"checkpoint saved: {where}")
        if self._save_asked is not None:
            self._emitter.command_done(self._save_asked, "ok", f"checkpoint saved to {where}")
            self._save_asked = None

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._save_asked is not None:
            self._emitter.command_done(self._save_asked, "failed", "training ended before the checkpoint")
            self._save_asked = None
        self._run.end("success", None, f"at step {state.global_step}")
        self._completed = True
        if self._owned:
            self._emitter.flush()

    # ---- with callback: trainer.train() ---------------------------------------------------------

    def __enter__(self) -> "FoxmlCallback":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        if exc is not None and not self._completed:
            self._run.end("failed", exc)
        if self._owned:
            self._emitter.close()

    def _checkpoint(self, command: Command) -> Optional[str]:
        if self._hf_control is None:
            raise RuntimeError("no training step yet")
        self._hf_control.should_save = True
        self._save_asked = command
        return None  # transformers saves after this step: on_save acknowledges it
