"""Module-level convenience calls on the process-wide emitter (as in the seed): each does nothing
and returns False while init_training_events() has not been called."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from . import _core

# The per-step calls are compiled (no Python frame on the hot path).
emit_progress = _core.emit_progress
log_metrics = _core.log_metrics


def emit_stage_change(previous_stage: Optional[str], new_stage: str) -> bool:
    """Reports a stage transition on the process-wide emitter."""
    emitter = _core._get_global()
    return False if emitter is None else emitter.emit_stage_change(previous_stage, new_stage)  # type: ignore[no-any-return]


def emit_target_complete(target: str, status: str, **kwargs: Any) -> bool:
    """Reports a finished target (models_trained=, best_auc=, metrics=) on the process-wide emitter."""
    emitter = _core._get_global()
    return False if emitter is None else emitter.emit_target_complete(target, status, **kwargs)  # type: ignore[no-any-return]


def emit_run_complete(status: str = "success", duration_s: Optional[float] = None) -> bool:
    """Reports the end of the run on the process-wide emitter."""
    emitter = _core._get_global()
    return False if emitter is None else emitter.emit_run_complete(status, duration_s)  # type: ignore[no-any-return]


def emit_error(error_message: str, error_type: str = "unknown", recoverable: bool = True) -> bool:
    """Reports an error on the process-wide emitter."""
    emitter = _core._get_global()
    return False if emitter is None else emitter.emit_error(error_message, error_type, recoverable)  # type: ignore[no-any-return]


def emit_run_start(
    config: Optional[Mapping[str, Any]] = None,
    *,
    name: Optional[str] = None,
    tags: Optional[Iterable[str]] = None,
    total_steps: Optional[int] = None,
    total_epochs: Optional[int] = None,
) -> bool:
    """Announces the run on the process-wide emitter."""
    emitter = _core._get_global()
    if emitter is None:
        return False
    return emitter.emit_run_start(  # type: ignore[no-any-return]
        config, name=name, tags=tags, total_steps=total_steps, total_epochs=total_epochs
    )


def log(level: str, message: str) -> bool:
    """Emits a log event on the process-wide emitter."""
    emitter = _core._get_global()
    return False if emitter is None else emitter.log(level, message)  # type: ignore[no-any-return]
