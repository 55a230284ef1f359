"""TrainingEventEmitter: the compiled emitter plus run_start's config and the context managers."""

from __future__ import annotations

import json
import math
import os
import weakref
from collections.abc import Mapping
from types import TracebackType
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Type, Union

from . import _core

# Every emitter alive in this process; closed with a deadline at interpreter exit (see _lifecycle).
live_emitters: "weakref.WeakSet[TrainingEventEmitter]" = weakref.WeakSet()


@dataclass(frozen=True)
class Command:
    """A control command sent to this run (docs/protocol.md, "Control"): ``name`` is ``cancel``,
    ``pause``, ``resume``, ``checkpoint`` or the sender's own; ``arg`` the JSON argument (a dict;
    a non-object one arrives as ``{"value": ...}``) or None."""

    name: str
    id: str
    sender: str
    run_id: str
    arg: Any = None

    @classmethod
    def _from(cls, d: dict) -> "Command":
        return cls(d["command"], d["id"], d["sender"], d["run_id"], d["arg"])


class TrainingEventEmitter(_core.EmitterBase):
    """Emits the events of one training run.

    ``sink`` (or ``path``) says where events go: ``None`` for the library default
    (``$FOXML_EVENTS_SINKS`` when set, else the Unix socket ``<per-user dir>/events.sock`` with the
    file ``<per-user dir>/events.jsonl`` as fallback; ``$FOXML_TRAINING_EVENT_SOCKET`` and
    ``$FOXML_TRAINING_EVENT_FILE`` replace their part: see ``default_sink_list()``); a file path; a
    URI list (``file:///path``, ``unix:///path.sock``, ``zmq+tcp://host:port``, ``zmq+ipc:///path``;
    a comma list is a fallback chain, ``|`` a tee); or ``memory://`` for tests. A malformed URI
    raises ValueError naming it; a file that cannot be opened, OSError. Keyword options: ``queue_capacity``,
    ``overflow`` ('drop' or 'block'), ``block_timeout``, ``close_timeout``, ``heartbeat_interval``
    (seconds; None, the default: on while the sampler runs, at its interval, or every 5 s when a
    Unix socket sink is in the chain, as with the default sink, else off; 0: off), ``resources_interval``
    (seconds between ``resources`` events from a sampler thread: process CPU and RSS, machine memory,
    GPUs; 0, the default here, takes none), ``max_line_bytes``, ``rank``, ``local_rank``, ``world_size``
    (each unset one from torchrun's $RANK/$LOCAL_RANK/$WORLD_SIZE, else Slurm's, else 0/0/1), ``host``,
    ``after_fork`` ('restart' or 'disable'), ``rank_zero_only`` (event type names only rank 0 emits,
    e.g. ``["metrics"]``; other ranks' calls return False, counted in ``stats()["dropped_by_policy"]``,
    with no seq gap), ``control_endpoint`` ('auto': a per-run control socket next to a file or Unix
    socket sink; 'on'; 'off'; $FOXML_EVENTS_CONTROL=0 turns 'auto' off) and ``control_directory``.

    Control commands (cancel, pause, resume, checkpoint, your own) reach the loop through
    ``should_stop()``, ``poll_command()``, ``on_command(fn)``, ``paused()`` and
    ``wait_while_paused()``; report what you did with ``command_done(cmd, outcome)``.

    ``signal_hook=False`` keeps ``with`` from installing the signal hook (see install_signal_hook).

    Every emit call returns True when the event was queued and False when it was counted as dropped
    (after close(), or a full queue). Used as a context manager, the emitter sends run_complete on
    exit (``success``, also for ``sys.exit()``/``sys.exit(0)``; an error event and ``failed`` when
    another exception escapes, ``cancelled`` for KeyboardInterrupt; an error a stage() already
    reported is not sent twice) and closes.
    """

    def __init__(
        self, run_id: str, sink: Any = None, *, path: Any = None, signal_hook: bool = True, **options: Any
    ) -> None:
        if path is not None:
            if sink is not None:
                raise TypeError("foxml_events: pass sink= or path=, not both")
            sink = path
        super().__init__(run_id, sink, **options)
        # Set once run_complete went out: ``with`` then sends no second one on exit.
        self._completed = False
        # Whether ``with`` installs the signal hook (see _signals); False opts this emitter out.
        self._signal_hook = bool(signal_hook)
        live_emitters.add(self)

    def emit_run_start(
        self,
        config: Optional[Mapping[str, Any]] = None,
        *,
        name: Optional[str] = None,
        tags: Optional[Iterable[str]] = None,
        total_steps: Optional[int] = None,
        total_epochs: Optional[int] = None,
    ) -> bool:
        """Announces the run: its config (a dict, sent as a JSON object), name, tags and length."""
        if tags is not None and not isinstance(tags, (str, bytes)):
            tags = list(tags)
        return self._emit_run_start(_config_json(config), name, tags, total_steps, total_epochs)

    def poll_command(self) -> Optional[Command]:
        """The next command received (first in, first out), or None. With on_command callbacks
        registered, they take the commands instead (this runs them and returns None)."""
        d = self._poll_command()
        return None if d is None else Command._from(d)

    def on_command(self, callback: Callable[[Command], Any]) -> None:
        """Calls ``callback(command)`` for every command received, on the thread that calls an emit
        method or poll_command() next (with the GIL; never on the emitter's worker thread). An
        exception it raises is reported as unraisable, not raised from the emit call."""
        if not callable(callback):
            raise TypeError("foxml_events: on_command needs a callable")
        self._on_command(lambda d: callback(Command._from(d)))

    def command_done(self, command: Union[Command, str], outcome: str = "ok", message: Optional[str] = None) -> bool:
        """Reports what the loop did with ``command`` (a Command or its id) as a ``command_done``
        event: ``outcome`` is ``ok``, ``ignored``, ``failed`` or your own word."""
        command_id = command.id if isinstance(command, Command) else command
        if not isinstance(command_id, str):
            raise TypeError(f"foxml_events: command must be a Command or its id, got {type(command).__name__}")
        return self._command_done(command_id, outcome, message)

    def emit_run_complete(self, status: str = "success", duration_s: Optional[float] = None) -> bool:
        """Reports the end of the run (success, failed, cancelled, killed); duration_s defaults to the
        emitter's age. Inside ``with``, the run then has its end: the exit sends no other."""
        self._completed = True
        return super().emit_run_complete(status, duration_s)

    def stage(self, name: str) -> "StageScope":
        """Returns a context manager for one stage: ``with emitter.stage("validation"): ...``.

        On entry it sends stage_change(current stage -> name); on exit stage_change(name -> the stage
        that was current on entry, or "idle" when there was none). When an exception escapes, an
        error event (its type and message, recoverable=False) goes out first; the exception is
        re-raised.
        """
        if not isinstance(name, str):
            raise TypeError(f"foxml_events: stage name must be a str, got {type(name).__name__}")
        return StageScope(self, name)

    def __enter__(self) -> "TrainingEventEmitter":
        if self._signal_hook:
            from ._signals import _default_install

            _default_install()  # a signal ends the run with killed/cancelled (see _signals)
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        try:
            if self._completed and (exc_type is None or exc is None or is_normal_exit(exc)):
                pass  # the loop ended the run itself (cancelled, for one)
            elif exc_type is None or exc is None or is_normal_exit(exc):
                self.emit_run_complete("success")
            else:
                if not _take_reported(exc, self):  # a stage() already sent this exception's error
                    self.emit_error(describe_exception(exc), exception_type_name(exc_type), recoverable=False)
                status = "cancelled" if issubclass(exc_type, KeyboardInterrupt) else "failed"
                self.emit_run_complete(status)
        finally:
            self.close()

    def __repr__(self) -> str:
        return f"TrainingEventEmitter(run_id={self.run_id!r}, sink={self.sink!r}, closed={self.closed})"


class StageScope:
    """What TrainingEventEmitter.stage() returns; see there."""

    __slots__ = ("_emitter", "name", "_outer")

    def __init__(self, emitter: TrainingEventEmitter, name: str) -> None:
        self._emitter = emitter
        self.name = name
        self._outer: Optional[str] = None

    def __enter__(self) -> "StageScope":
        self._outer = self._emitter.current_stage
        self._emitter.emit_stage_change(self._outer, self.name)
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if exc_type is not None and exc is not None and not is_normal_exit(exc):
            if not _already_reported(exc, self._emitter):  # by an inner stage of the same emitter
                self._emitter.emit_error(describe_exception(exc), exception_type_name(exc_type), recoverable=False)
                _mark_reported(exc, self._emitter)
        self._emitter.emit_stage_change(self.name, self._outer if self._outer is not None else "idle")


def is_normal_exit(exc: BaseException) -> bool:
    """``sys.exit()``, ``sys.exit(0)``: the process ends as a success, not a failure."""
    return isinstance(exc, SystemExit) and (exc.code is None or exc.code == 0)


# The emitters (by id) that already sent an error event for an exception, kept on the exception
# itself: it dies with it, and an exception a stage reported and the code caught keeps no state.
_REPORTED = "_foxml_events_reported_by"


def _already_reported(exc: BaseException, emitter: Any) -> bool:
    return id(emitter) in getattr(exc, _REPORTED, ())


def _mark_reported(exc: BaseException, emitter: Any) -> None:
    try:
        setattr(exc, _REPORTED, getattr(exc, _REPORTED, frozenset()) | {id(emitter)})
    except (AttributeError, TypeError):  # an exception type without attributes: reported twice
        pass


def _take_reported(exc: BaseException, emitter: Any) -> bool:
    reported = _already_reported(exc, emitter)
    if reported:
        try:
            setattr(exc, _REPORTED, getattr(exc, _REPORTED) - {id(emitter)})
        except (AttributeError, TypeError):
            pass
    return reported


def exception_type_name(exc_type: Type[BaseException]) -> str:
    """Returns ``ValueError`` for builtins, ``module.QualName`` for the rest."""
    module = getattr(exc_type, "__module__", "builtins")
    if module in ("builtins", "__main__", None):
        return exc_type.__qualname__
    return f"{module}.{exc_type.__qualname__}"


def describe_exception(exc: BaseException) -> str:
    text = str(exc)
    return text if text else repr(exc)


def _config_json(config: Optional[Mapping[str, Any]]) -> Optional[str]:
    # Runs once per run (run_start), not on the per-step path.
    if config is None:
        return None
    if not isinstance(config, Mapping):
        raise TypeError(f"foxml_events: config must be a dict, got {type(config).__name__}")
    return json.dumps(_plain(config), separators=(",", ":"), allow_nan=False, default=_plain_leaf)


def _plain(value: Any, depth: int = 1, path: str = "config") -> Any:
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, (Mapping, list, tuple)) and depth > _core.max_config_depth:
        # Deeper, the reader's depth cap would refuse the whole run_start line.
        raise ValueError(
            f"foxml_events: {path} nests deeper than {_core.max_config_depth} levels, "
            "more than event readers accept")
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            key = k if isinstance(k, str) else str(k)
            if key in out:
                raise ValueError(f"foxml_events: {path} has two keys that are both {key!r} in JSON "
                                 f"(one of them is {k!r}); one would be lost")
            out[key] = _plain(v, depth + 1, f"{path}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return _plain_leaf(value, depth, path)


def _plain_leaf(value: Any, depth: int = 1, path: str = "config") -> Any:
    # numpy scalars and arrays, tensors: their Python value; paths: their text; the rest: str().
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        try:
            plain = tolist()
        except Exception:  # noqa: BLE001 - a config value we cannot convert is sent as text
            pass
        else:
            return _plain(plain, depth, path)
    if isinstance(value, (set, frozenset)):
        return _plain(sorted(value, key=repr), depth, path)
    return str(value)
