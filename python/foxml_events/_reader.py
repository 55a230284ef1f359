"""Reading events back, as dicts with the wire field names.

- ``read_events(path)`` / ``follow_events(path)``: a JSONL file, once or following it.
- ``EventReader(source)`` / ``follow(source)``: the C++ reader library. A source is a file
  (a path or ``file:///path``, optionally followed like ``tail -F``), a Unix socket server that
  emitters connect to (``unix:///path.sock``, acknowledging what it read), or a ZeroMQ subscriber
  (``zmq+tcp://host:port``, ``zmq+ipc:///path``). Lines go through the event stream (decode with
  caps, duplicates dropped, gaps in seqs found, malformed lines counted with their positions),
  then into a ring buffer for late joiners (``reader.buffer``) and a per-run state tracker
  (``reader.tracker``).

Two ways to drive a reader:

- pull: iterate it (``for event in reader``) or call ``poll()``; the calling thread reads the
  source, and every event reaches the iterator (none is lost to the ring's size);
- push: ``start()`` reads the source on a C++ thread that never takes the GIL; Python threads then
  read ``reader.buffer`` and ``reader.tracker`` (a dashboard), and iteration reads the ring.

Every wait releases the GIL and Ctrl-C interrupts it.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any, Dict, Iterable, Iterator, List, NamedTuple, Optional, Type, Union

from . import _core
from ._commands import _acknowledgement, _arg_json

PathArg = Union[str, "os.PathLike[str]"]
Event = Dict[str, Any]
# The reader library's defaults (include/foxml/events/reader/defaults.hpp), defined there once.
_DEFAULTS: Dict[str, Any] = _core.reader_defaults

__all__ = [
    "BufferRead",
    "EventBuffer",
    "EventFile",
    "EventReader",
    "RunTracker",
    "follow",
    "follow_events",
    "read_events",
]


def read_events(path: PathArg, *, errors: str = "raise") -> "EventFile":
    """Iterates the events in a JSONL file, each as a dict with the wire field names (every line
    as written: no duplicate is dropped, blank lines are passed over).

    ``errors='raise'`` raises ValueError at an undecodable line, naming the file and the line
    (invalid UTF-8 shown as ``\\xNN``), after the events before it; ``'skip'`` skips it (the
    count is on the returned iterator's ``skipped``). A line longer than ``max_line_bytes`` is such
    a line; memory stays bounded whatever the file holds. Raises FileNotFoundError when the file
    does not exist.
    """
    return EventFile(os.fspath(path), follow=False, idle_timeout=None, errors=errors)


def follow_events(
    path: Optional[PathArg] = None,
    *,
    poll_interval: float = 0.1,
    idle_timeout: Optional[float] = None,
    errors: str = "skip",
) -> "EventFile":
    """Iterates the events of a JSONL file from its start, then waits for more as it grows (like
    ``tail -F``): waits for the file to appear, follows it across rotation (rename or delete, then
    a new file at the path) and starts again when it is truncated; ends after ``idle_timeout``
    seconds without a new event (never when None) or when ``stop()`` is called on the iterator.
    Waiting releases the GIL; Ctrl-C interrupts it. ``path`` defaults to the file the default sink
    writes. The file's directory must exist. ``poll_interval`` is kept for compatibility: the
    reader is woken by the file system, not by polling."""
    if not 0 < poll_interval <= 60:
        raise ValueError("foxml_events: poll_interval must be in (0, 60]")
    target = _core.default_event_file() if path is None else os.fspath(path)
    return EventFile(target, follow=True, idle_timeout=idle_timeout, errors=errors)


class EventFile:
    """What read_events() and follow_events() return: an iterator of event dicts over the same C++
    reader as EventReader (one bounded, linear engine: lines over the cap are refused, a poll reads
    a bounded slice of the file), without duplicate removal."""

    __slots__ = ("_core", "_idle_timeout", "path")

    def __init__(self, path: str, *, follow: bool, idle_timeout: Optional[float], errors: str,
                 max_line_bytes: int = _DEFAULTS["max_line_bytes"]) -> None:
        if errors not in ("raise", "skip"):
            raise ValueError("foxml_events: errors must be 'raise' or 'skip'")
        self.path = path
        self._idle_timeout = idle_timeout
        # A ring of one, and no dedup: this iterator hands out every line's event once, in order.
        self._core = _core.LiveReader(path, follow, False, None, None, buffer_size=1, deduplicate=False,
                                      max_line_bytes=max_line_bytes, max_depth=_core.max_config_depth + 1,
                                      metric_history=1, recent_lines=1, errors=errors)

    def __iter__(self) -> "EventFile":
        return self

    def __next__(self) -> Event:
        event = self._core.next(self._idle_timeout)
        if event is None:  # idle_timeout passed without an event
            raise StopIteration
        return event  # type: ignore[no-any-return]

    def stop(self) -> None:
        """Ends the iteration (also one waiting in another thread)."""
        self._core.stop()

    def close(self) -> None:
        """Stops and closes the file."""
        self._core.close()

    def __enter__(self) -> "EventFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def skipped(self) -> int:
        """Lines skipped as undecodable (errors='skip'); blank lines are not counted."""
        return self._core.stats()["malformed"]  # type: ignore[no-any-return]

    def stats(self) -> Dict[str, Any]:
        """The reader's counters, as EventReader.stats()."""
        return self._core.stats()  # type: ignore[no-any-return]


class BufferRead(NamedTuple):
    """What a buffer read returns: the events, the cursor to pass next, and how many events the
    ring overwrote before this reader came back for them."""

    events: List[Event]
    next: int
    missed: int


class EventBuffer:
    """The reader's ring of recent events, for late joiners. Positions count up from 0 in arrival
    order; ``since(0)`` is all history still held, and passing each result's ``next`` to the
    following call yields every later event exactly once (history, then live, nothing doubled).
    Thread-safe. Events arrive only while the reader is driven (``start()``, or iteration in
    another thread)."""

    __slots__ = ("_core",)

    def __init__(self, core: Any) -> None:
        self._core = core

    def since(self, cursor: int = 0, max: Optional[int] = None) -> BufferRead:
        """Returns up to ``max`` held events at positions >= ``cursor``, without waiting."""
        return BufferRead(*self._core.buffer_since(cursor, max))

    def wait(self, cursor: int, timeout: float, max: Optional[int] = None) -> BufferRead:
        """Like since(), but waits up to ``timeout`` seconds for an event at ``cursor`` (returns
        early, possibly empty, once the reader is finished or closed)."""
        return BufferRead(*self._core.buffer_wait(cursor, timeout, max))

    def find(self, run_id: str, host: str, pid: int, seq: int) -> int:
        """Returns the cursor of the first held event of that emitter with a seq >= ``seq`` (to
        resume "after seq X"), or ``end`` when none is held."""
        return self._core.buffer_find(run_id, host, pid, seq)  # type: ignore[no-any-return]

    @property
    def begin(self) -> int:
        """The position of the oldest event still held."""
        return self._core.buffer_begin  # type: ignore[no-any-return]

    @property
    def end(self) -> int:
        """The position the next event will get: the cursor for "live only"."""
        return self._core.buffer_end  # type: ignore[no-any-return]

    @property
    def closed(self) -> bool:
        """True once the reader finished or was closed: no more events will arrive."""
        return self._core.buffer_closed  # type: ignore[no-any-return]


class RunTracker:
    """Per-run state folded from the events, as dicts (safe to keep; they are snapshots).

    A run dict has: ``run_id``, ``name``, ``status`` (running, completed, failed, cancelled,
    stale, killed), ``running``, ``final_status`` and ``duration_s`` (from run_complete), ``stage``,
    ``stages`` (``name``, ``start``, ``end``, ``duration_s``; times in Unix seconds),
    ``progress_pct``, ``current_target``, ``targets_complete``, ``targets_total``, ``step``,
    ``total_steps``, ``epoch``, ``total_epochs``, ``eta_s``, ``targets`` (finished targets:
    ``target``, ``status``, ``models_trained``, ``best_auc``, ``metrics``), ``metrics`` (latest
    value per name), ``metric_history`` (name -> [(step, value)], oldest first), ``errors``
    (``time``, ``error_message``, ``error_type``, ``recoverable``, ``rank``), ``first_seen``,
    ``last_seen`` (event times, Unix seconds), ``events``, ``world_size``, ``ranks`` (rank number ->
    ``rank``, ``status``, ``final_status``, ``stage``, ``progress_pct``, ``step``, ``last_seen``,
    ``host``, ``pid``, ``process_start_time``, ``heartbeat_interval_s``, ``stale_after_heartbeats``,
    ``events``), ``slowest_rank`` (the straggler among running ranks, or None), ``stale_ranks``,
    ``tags`` and ``config`` (from run_start; config None when none), ``host`` (the lowest rank's),
    ``started`` (run_start time, or None), ``elapsed_s`` (to run_complete once ended, else to now),
    ``steps_per_s`` (or None), ``logs`` (the newest 200: ``time``, ``level``, ``message``, ``rank``),
    ``resources`` (the latest sample, or None), ``resource_history`` (``cpu_pct``, ``rss_bytes``,
    ``gpu_util_pct``, ``gpu_mem_used_bytes`` -> [[time, value]], those sampled) and
    ``metric_groups`` (base name -> {``train``: name or None, ``val``: name or None}: the one rule
    pairing training and validation series).

    Liveness: a rank is ``stale`` once silent for ``heartbeat_interval_s * stale_after_heartbeats``
    (from its own run_start; ``stale_after`` when it sent no heartbeat interval) and ``running``
    again when it speaks; ``killed`` when its process is gone (looked up in /proc, on the reader's
    own host only). The run's status comes from its ranks: one failed rank fails it, a killed one
    kills it, it completes when all ``world_size`` ranks completed.
    """

    __slots__ = ("_core",)

    def __init__(self, core: Any) -> None:
        self._core = core

    def runs(self) -> List[Dict[str, Any]]:
        """Every run, in the order first seen."""
        return self._core.runs()  # type: ignore[no-any-return]

    def run(self, run_id: str) -> Optional[Dict[str, Any]]:
        """The run called ``run_id``, or None."""
        return self._core.run(run_id)  # type: ignore[no-any-return]

    def latest(self) -> Optional[Dict[str, Any]]:
        """The run of the most recent event, or None before any."""
        return self._core.latest()  # type: ignore[no-any-return]

    def status(self) -> Dict[str, Any]:
        """The seed bridge's ``/api/training/status``: ``running``, ``run_id``, ``stage``,
        ``progress_pct``, ``current_target`` of the latest run, and ``events``, the last few events
        (``recent_lines``) as dicts, oldest first."""
        return self._core.status()  # type: ignore[no-any-return]

    def check_stale(self, now: Optional[float] = None) -> None:
        """Re-evaluates liveness at ``now`` (Unix seconds; default: now): silent ranks become
        stale, ranks whose process is gone killed. Live readers do this by themselves."""
        self._core.check_stale(now)


class EventReader:
    """Reads events from one source through the C++ reader; iterate it for event dicts.

    ``source``: a path or ``file:///path`` (``follow=True`` waits for more like ``tail -F``:
    rotation, truncation, a file that does not exist yet; ``from_end=True`` skips the history),
    ``unix:///path.sock`` (listens; emitters connect with ``sink="unix:///path.sock"``; the socket
    file is 0600 and removed at close), or ``zmq+tcp://host:port`` / ``zmq+ipc:///path`` (subscribes;
    ``tcp://``/``ipc://`` work too). None: the default event file.

    ``types`` and ``runs`` keep only those events (for ZeroMQ they become subscriptions).
    ``idle_timeout`` ends iteration after that many seconds without an event (None: never, unless
    the source ends: a file read without ``follow``). ``buffer_size`` is the ring's capacity;
    ``deduplicate``, ``reorder_window``, ``max_line_bytes``, ``max_depth`` tune the event stream;
    ``metric_history``, ``recent_lines``, ``stale_after``, ``eta_window`` the tracker.

    Raises ValueError for a bad URI, OSError when the source cannot be opened (a missing file
    without ``follow``, a socket path in use).
    """

    def __init__(
        self,
        source: Optional[PathArg] = None,
        *,
        follow: bool = True,
        from_end: bool = False,
        types: Optional[Iterable[str]] = None,
        runs: Optional[Iterable[str]] = None,
        idle_timeout: Optional[float] = None,
        buffer_size: int = _DEFAULTS["ring_size"],
        deduplicate: bool = True,
        reorder_window: int = _DEFAULTS["reorder_window"],
        max_line_bytes: int = _DEFAULTS["max_line_bytes"],
        max_depth: int = _DEFAULTS["max_depth"],
        metric_history: int = _DEFAULTS["metric_history"],
        recent_lines: int = _DEFAULTS["recent_lines"],
        stale_after: float = _DEFAULTS["stale_after"],
        eta_window: float = _DEFAULTS["eta_window"],
    ) -> None:
        target = _core.default_event_file() if source is None else os.fspath(source)
        self._core = _core.LiveReader(
            target,
            follow,
            from_end,
            None if types is None else _names(types, "types"),
            None if runs is None else _names(runs, "runs"),
            buffer_size,
            deduplicate,
            reorder_window,
            max_line_bytes,
            max_depth,
            metric_history,
            recent_lines,
            stale_after,
            eta_window,
            "count",
        )
        self.idle_timeout = idle_timeout
        self.buffer = EventBuffer(self._core)
        self.tracker = RunTracker(self._core)

    # ---- commands

    def send_command(self, run_id: str, command: str, arg: Any = None, timeout: float = 5.0) -> Dict[str, Any]:
        """Sends ``command`` to ``run_id`` by this reader's own source and waits up to ``timeout``
        seconds for the acknowledgement: a ``unix://`` listener relays it on the run's emitter
        connections, a ZeroMQ subscriber publishes it on the command endpoint (port + 1), a file's
        run gets it through its control endpoint (``control/`` next to the file). Without
        ``start()`` the wait also reads the source; what it reads comes out of the next
        iteration. Returns the acknowledgement as foxml_events.send_command does; raises
        ValueError for a bad name or arg, CommandError for an unknown run or no acknowledgement.
        """
        result = self._core.send_command(run_id, command, _arg_json(arg), timeout)
        return _acknowledgement(result, run_id, command)

    # ---- iteration and driving

    def __iter__(self) -> "EventReader":
        return self

    def __next__(self) -> Event:
        event = self._core.next(self.idle_timeout)
        if event is None:
            raise StopIteration
        return event  # type: ignore[no-any-return]

    def next(self, timeout: Optional[float] = None) -> Optional[Event]:
        """Returns the next event, waiting up to ``timeout`` seconds (None: until one comes);
        None when the wait ran out. Raises StopIteration at the end of the source or after stop()."""
        return self._core.next(timeout)  # type: ignore[no-any-return]

    def poll(self, timeout: float = 0.0) -> List[Event]:
        """Reads what the source has, waiting up to ``timeout`` seconds for something; returns the
        new events (pull mode only, for an event loop that cannot block)."""
        return self._core.poll(timeout)  # type: ignore[no-any-return]

    def start(self) -> "EventReader":
        """Reads the source on a background C++ thread from now on (the buffer and tracker fill up
        by themselves); iteration then reads the ring from the first event not yet iterated."""
        self._core.start()
        return self

    def stop(self) -> None:
        """Ends iteration (also one blocked in another thread) and the background thread."""
        self._core.stop()

    def close(self) -> None:
        """Stops reading and closes the source (a socket server removes its socket file); the
        buffer's history and the tracker's state stay readable."""
        self._core.close()

    def __enter__(self) -> "EventReader":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    # ---- the event stream's report

    @property
    def source(self) -> str:
        """The source, described (``file:///...``, ``unix:///...``, ``tcp://...``)."""
        return self._core.source  # type: ignore[no-any-return]

    @property
    def finished(self) -> bool:
        """True once the source has nothing more (a file without follow, at its end) or is closed."""
        return self._core.finished  # type: ignore[no-any-return]

    def stats(self) -> Dict[str, Any]:
        """Counters: ``lines``, ``bytes``, ``events`` (accepted), ``malformed``, ``blank``,
        ``duplicates``, ``gaps``, ``missing``, ``reported_drops``, ``late``, ``emitters``,
        ``evicted`` (emitters whose dedup state was forgotten), ``missed`` (lost by iteration to the
        ring after start()), and ``source`` (the source's own counters, named as in its C++ stats
        struct: a socket's ``accepted``/``open``/``rejected``/``refused_no_fds``/``over_budget``/
        ``bytes``/``acks``, a file's ``bytes``/``rotations``/``truncations``/``not_regular``, a
        subscriber's ``messages``/``bad_frames``)."""
        return self._core.stats()  # type: ignore[no-any-return]

    def malformed(self) -> List[Dict[str, Any]]:
        """The most recent malformed lines: ``origin``, ``line`` (1-based), ``offset``, ``error``."""
        return self._core.malformed()  # type: ignore[no-any-return]

    def gaps(self) -> List[Dict[str, Any]]:
        """The most recent gaps in seqs: ``run_id``, ``host``, ``pid``, ``first_seq``,
        ``last_seq``, ``size``, ``reported_drop`` (covered by the emitter's own dropped event) and
        ``count`` (seqs the report says were dropped, or seqs missing for a loss)."""
        return self._core.gaps()  # type: ignore[no-any-return]

    def flush_gaps(self) -> None:
        """Declares every seq still outstanding inside the reorder window as missing now."""
        self._core.flush_gaps()

    def __repr__(self) -> str:
        return f"EventReader({self.source!r}, finished={self.finished})"


def follow(source: Optional[PathArg] = None, **options: Any) -> EventReader:
    """``for event in follow("file:///...")``: an EventReader that follows its source (see there);
    ``source`` defaults to the default event file."""
    options.setdefault("follow", True)
    return EventReader(source, **options)


def _names(values: Iterable[str], what: str) -> List[str]:
    if isinstance(values, (str, bytes)):
        return [values] if isinstance(values, str) else [values.decode()]
    names = list(values)
    if not all(isinstance(v, str) for v in names):
        raise TypeError(f"foxml_events: {what} must be strings")
    return names
