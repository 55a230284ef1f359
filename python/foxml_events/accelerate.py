"""FoxmlTracker: an Accelerate ``GeneralTracker`` that reports the run through foxml_events.

    from foxml_events.accelerate import FoxmlTracker

    tracker = FoxmlTracker("run-9", total_steps=len(loader) * epochs)
    accelerator = Accelerator(log_with=tracker)
    accelerator.init_trackers("my-project", config={"lr": lr})      # run_start with the config
    for epoch in range(epochs):
        for batch in loader:
            ...
            accelerator.log({"loss": loss}, step=completed_steps)  # metrics + progress
            if tracker.should_stop():        # a cancel came (events-ctl cancel RUN): leave the loop
                break
    accelerator.end_training()                                     # run_complete

``register_tracker_class(FoxmlTracker)`` also makes it ``log_with="foxml"`` (the project name
passed to ``init_trackers`` is then the run id; ``init_kwargs={"foxml": {...}}`` the options).

Accelerate's loop is the user's own, so the tracker cannot stop it: the loop asks
``tracker.should_stop()`` once per step (it also takes pause/resume there, and answers other
commands). With several processes, Accelerate logs from the main one only
(``main_process_only``): address the run's main process and share its decision with Accelerate's
trigger, ``if accelerator.is_main_process and tracker.should_stop(): accelerator.set_trigger()``
then ``if accelerator.check_trigger(): break`` on every process.

``log(values, step)``: a metrics event (values may be tensors on any device: CUDA ones are read
without a sync inside the step, see MetricSender) and, with ``total_steps``, progress taking
``step`` as the steps completed. Stages: ``training`` from run_start on; ``with
tracker.stage("evaluation"):`` for others. ``finish()`` (``end_training``): run_complete
``cancelled`` after a cancel, ``failed`` (with the error) when called while an exception is being
handled (a ``finally:``), else ``success``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

try:
    from accelerate.tracking import GeneralTracker as _GeneralTracker
except ImportError as _error:  # pragma: no cover - tested in a process without accelerate
    from ._adapters import import_error

    raise import_error("accelerate", "accelerate", _error) from _error

from ._adapters import RunParts, active_exception, emitter_for, progress_pct
from ._emitter import StageScope, TrainingEventEmitter

__all__ = ["FoxmlTracker"]


class FoxmlTracker(_GeneralTracker):
    """``run_id`` (positional: Accelerate passes the project name there), ``sink``, ``**options``:
    those of TrainingEventEmitter. ``total_steps``/``total_epochs``: the run's length, for run_start
    and progress. ``emitter``: your own instead (never closed here). ``name``, ``tags``: run_start's.
    ``rank_zero_only``: metrics and log lines from rank 0 only."""

    name = "foxml"
    requires_logging_directory = False

    def __init__(self, run_id: Optional[str] = None, sink: Any = None, *, total_steps: Optional[int] = None,
                 total_epochs: Optional[int] = None, name: Optional[str] = None, tags: Optional[list] = None,
                 emitter: Optional[TrainingEventEmitter] = None, rank_zero_only: bool = False,
                 **options: Any) -> None:
        super().__init__()
        self._emitter, self._owned = emitter_for("accelerate", run_id, sink, emitter, options, rank_zero_only)
        self._run_name = name
        self._tags = tags
        self.total_steps = total_steps
        self.total_epochs = total_epochs
        self._run = RunParts(self._emitter)
        self._started = False
        self._finished = False

    @property
    def tracker(self) -> TrainingEventEmitter:
        return self._emitter

    @property
    def run_id(self) -> str:
        return self._emitter.run_id

    def store_init_configuration(self, values: Dict[str, Any]) -> None:
        self._start(values)

    def log(self, values: Dict[str, Any], step: Optional[int] = None, **kwargs: Any) -> None:
        self._start()
        epoch = kwargs.get("epoch")
        self._run.metrics.send(values, step=step, epoch=epoch)
        if step is not None and self.total_steps:
            self._emitter.emit_progress(self._run.stages.current or "training",
                                        progress_pct(step, self.total_steps) or 0.0, step=step,
                                        total_steps=self.total_steps, epoch=epoch, total_epochs=self.total_epochs)

    def should_stop(self) -> bool:
        """True once a cancel came: the loop leaves (once per step). Takes pause (waits here
        until resume) and answers the other commands."""
        return self._run.control.check()

    def stage(self, name: str) -> StageScope:
        """``with tracker.stage("evaluation"): ...``: the emitter's stage scope."""
        return self._emitter.stage(name)

    def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._start()
        self._run.end("success", active_exception(), "by the loop")
        if self._owned:
            self._emitter.close()

    def _start(self, config: Optional[Dict[str, Any]] = None) -> None:
        if self._started:
            if config:  # a configuration after the run began: kept as a log line
                import json

                self._emitter.log("info", "configuration: " + json.dumps(config, default=str, sort_keys=True))
            return
        self._started = True
        self._emitter.emit_run_start(config=config, name=self._run_name, tags=self._tags,
                                     total_steps=self.total_steps, total_epochs=self.total_epochs)
        self._run.stages.enter("training")
