"""The process-wide emitter, interpreter exit and fork() children."""

from __future__ import annotations

import atexit
import multiprocessing.util
import os
import time
from typing import Any, Optional

from . import _core
from ._emitter import TrainingEventEmitter, live_emitters
from ._signals import _default_install as _install_default_signal_hook

_exit_timeout = 2.0
try:
    _exit_timeout = max(0.0, float(os.environ.get("FOXML_EVENTS_EXIT_TIMEOUT", "2.0")))
except ValueError:
    pass


# The process-wide emitter samples resources by default (a TrainingEventEmitter made directly does not).
_default_resources_interval = 10.0


def init_training_events(
    run_id: Optional[str] = None, sink: Any = None, *, path: Any = None, signal_hook: bool = True, **options: Any
) -> TrainingEventEmitter:
    """Creates the process-wide emitter the module-level functions use, and returns it.

    ``sink``/``path`` and ``options`` are those of TrainingEventEmitter. A previous global emitter
    is replaced (it is closed when nothing else holds it). ``signal_hook`` (default on, unless
    $FOXML_EVENTS_SIGNAL_HOOK=0) installs the signal hook: SIGTERM/SIGHUP/SIGQUIT/SIGINT end the run
    with ``killed``/``cancelled`` before the process goes on as it would have (see _signals).
    Resource sampling is on here: a ``resources`` event every ``resources_interval`` seconds
    (default 10; 0 turns it off), and heartbeats with it. So is the per-run control endpoint
    (``control_endpoint='on'``: ``events-ctl cancel RUN`` reaches this run even with no listener;
    $FOXML_EVENTS_CONTROL=0 or ``control_endpoint='off'`` turns it off).

    Without ``run_id``, every rank of a job takes the same one: $TORCHELASTIC_RUN_ID (torchrun),
    else $SLURM_JOB_ID (see default_run_id()); when neither is set, ValueError, as for an empty
    run id: a job without a launcher names its run.
    """
    if run_id is None:
        run_id = _core.default_run_id()
        if not run_id:
            raise ValueError(
                "foxml_events: no run_id given and none from the launcher ($TORCHELASTIC_RUN_ID, $SLURM_JOB_ID)"
            )
    options.setdefault("resources_interval", _default_resources_interval)
    if os.environ.get("FOXML_EVENTS_CONTROL", "") != "0":
        options.setdefault("control_endpoint", "on")
    emitter = TrainingEventEmitter(run_id, sink, path=path, signal_hook=signal_hook, **options)
    if signal_hook:
        _install_default_signal_hook()
    _core._set_global(emitter)
    return emitter


def get_training_emitter() -> Optional[TrainingEventEmitter]:
    """Returns the process-wide emitter, or None before init_training_events()."""
    return _core._get_global()  # type: ignore[no-any-return]


def close_training_events(timeout: Optional[float] = None) -> None:
    """Closes the process-wide emitter (if any) within ``timeout`` seconds (default: its
    ``close_timeout``) and forgets it; module-level calls become no-ops."""
    emitter = _core._get_global()
    _core._set_global(None)
    if emitter is not None and not emitter.closed:
        emitter.close(timeout)


def set_exit_timeout(seconds: float) -> None:
    """Sets the total time interpreter exit may spend delivering queued events (default 2 s, or
    $FOXML_EVENTS_EXIT_TIMEOUT)."""
    global _exit_timeout
    if not seconds >= 0:
        raise ValueError("foxml_events: the exit timeout must be >= 0 seconds")
    _exit_timeout = float(seconds)


def close_all(timeout: Optional[float] = None) -> None:
    """Closes every emitter of this process within one shared deadline (the GIL is released while
    each waits). Run at interpreter exit and when a multiprocessing child finishes."""
    budget = _exit_timeout if timeout is None else timeout
    deadline = time.monotonic() + budget
    emitters = list(live_emitters)
    glob = _core._get_global()
    if glob is not None and glob not in emitters:
        emitters.insert(0, glob)
    for emitter in emitters:
        if not emitter.closed:
            emitter.close(max(0.0, deadline - time.monotonic()))


atexit.register(close_all)


# multiprocessing children (DataLoader workers) leave through os._exit(), which skips atexit: its own
# exit hook closes the child's emitters instead. The registry of those hooks is cleared in every new
# child before the after-fork callbacks run, so the hook is registered from one of those callbacks.
class _ForkToken:
    pass


_fork_token = _ForkToken()


def _after_multiprocessing_fork(_token: _ForkToken) -> None:
    multiprocessing.util.Finalize(None, close_all, exitpriority=10)


multiprocessing.util.register_after_fork(_fork_token, _after_multiprocessing_fork)
