"""foxml_events: structured events from training jobs, for dashboards and bridges.

An emit call stamps the event (run_id, seq, time, pid, host, rank), pushes it to a bounded in-memory
queue and returns; a background thread writes JSON lines to the sink. Training never waits on I/O.

    import foxml_events as fe

    with fe.init_training_events("run-42") as events:      # default sink: socket, else the event file
        events.emit_run_start(config={"lr": 1e-3}, total_epochs=3)
        with events.stage("training"):
            for step in range(steps):
                ...
                events.log_metrics({"loss": loss, "lr": lr}, step=step, epoch=epoch)
                events.emit_progress("training", 100 * step / steps, step=step, total_steps=steps)
    # run_complete(success) on exit; failed (after an error event) if an exception escapes

Sinks: ``sink=None`` uses the default chain (``$FOXML_EVENTS_SINKS``, else the per-user Unix socket
``events.sock`` then the file ``events.jsonl``, the seed variables FOXML_TRAINING_EVENT_SOCKET /
FOXML_TRAINING_EVENT_FILE replacing their part); a path or URI list (``unix:///s.sock,file:///f.jsonl``
falls back, ``|`` tees, ``zmq+tcp://host:port`` / ``zmq+ipc:///path`` publish); ``memory://`` for tests.

Reading: ``for event in fe.follow("unix:///tmp/x.sock")`` or ``fe.EventReader(source).start()`` with
``reader.tracker.runs()`` and ``reader.buffer.since(cursor)`` (see EventReader).

Values may be Python numbers, numpy scalars or one-element torch tensors; anything else raises a
TypeError naming the field.

fork(): a child made by fork() (PyTorch DataLoader workers under the default "fork" start method,
os.fork) never waits on the parent's background thread or its locks. With ``after_fork="restart"``
(the default) the child's first emit starts a fresh background thread and reopens the sink: a file
sink opens the same file again in append mode (lines never interleave), a ``memory://`` sink cannot
be shared, so the child's events are counted as dropped. A child's events carry the child's pid and
its seq starts again at 0, so readers key a stream by (run_id, host, pid). multiprocessing children
deliver their events when they finish (a multiprocessing exit hook closes their emitters); a child
that leaves with os._exit() must call flush() first. ``after_fork="disable"`` drops a child's emits.

Exit: at interpreter exit every emitter is closed within one deadline (2 s; set_exit_timeout() or
$FOXML_EVENTS_EXIT_TIMEOUT), so a stalled consumer never hangs the process.
"""

from __future__ import annotations

from . import _core
from ._core import (
    DeliveryReport,
    decode_line,
    default_event_directory,
    default_event_file,
    default_event_socket,
    default_sink_list,
    default_run_id,
)
from ._commands import CommandError, list_control_endpoints, send_command
from ._emitter import Command, StageScope, TrainingEventEmitter
from ._functions import (
    emit_error,
    emit_progress,
    emit_run_complete,
    emit_run_start,
    emit_stage_change,
    emit_target_complete,
    log,
    log_metrics,
)
from ._lifecycle import (
    close_all,
    close_training_events,
    get_training_emitter,
    init_training_events,
    set_exit_timeout,
)
from ._signals import install_signal_hook, remove_signal_hook, signal_hook_installed
from ._reader import (
    BufferRead,
    EventBuffer,
    EventFile,
    EventReader,
    RunTracker,
    follow,
    follow_events,
    read_events,
)

__version__: str = _core.__version__

__all__ = [
    "BufferRead",
    "Command",
    "CommandError",
    "DeliveryReport",
    "EventBuffer",
    "EventFile",
    "EventReader",
    "RunTracker",
    "StageScope",
    "TrainingEventEmitter",
    "__version__",
    "close_all",
    "close_training_events",
    "decode_line",
    "default_event_directory",
    "default_event_file",
    "default_event_socket",
    "default_run_id",
    "default_sink_list",
    "emit_error",
    "emit_progress",
    "emit_run_complete",
    "emit_run_start",
    "emit_stage_change",
    "emit_target_complete",
    "follow",
    "follow_events",
    "get_training_emitter",
    "init_training_events",
    "install_signal_hook",
    "list_control_endpoints",
    "log",
    "log_metrics",
    "read_events",
    "remove_signal_hook",
    "send_command",
    "set_exit_timeout",
    "signal_hook_installed",
]
