"""What the framework adapters (lightning, transformers, accelerate) share: the emitter they own,
metric values (tensors on any device), the control commands a loop obeys, and status mapping.

Nothing here imports a framework or torch: a tensor is recognised by its type's module.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from . import _core
from ._emitter import Command, TrainingEventEmitter, describe_exception, exception_type_name, is_normal_exit

# A run id made up in the launching process, inherited by the processes a framework's launcher
# starts later (Lightning's DDP re-runs the script with the parent's environment), so every rank
# of such a job joins one run even when neither the user nor torchrun/Slurm named it.
RUN_ID_VARIABLE = "FOXML_EVENTS_ADAPTER_RUN_ID"

# CUDA metric values copied to the host and not yet read, at most this many log calls' worth; past
# it the oldest is waited for (a loop logging faster than the device computes is bounded).
MAX_PENDING_LOGS = 64

# run_complete's words; the frameworks' own ones map onto them.
STATUSES = ("success", "failed", "cancelled", "killed")
_STATUS_WORDS = {
    "success": "success",
    "finished": "success",  # Lightning, on Slurm's requeue signal: the job goes on elsewhere
    "completed": "success",
    "failed": "failed",
    "error": "failed",
    "interrupted": "cancelled",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "killed": "killed",
}


def map_status(status: Optional[str]) -> str:
    """A framework's end status as run_complete's (success, failed, cancelled, killed)."""
    return _STATUS_WORDS.get((status or "success").lower(), "failed")


def resolve_run_id(run_id: Optional[str], prefix: str) -> str:
    """The user's run id, else the launcher's (torchrun, Slurm), else one this process makes up
    (and leaves in the environment for the ranks a framework launcher starts from it)."""
    if run_id:
        return run_id
    from_launcher = _core.default_run_id()
    if from_launcher:
        return from_launcher
    inherited = os.environ.get(RUN_ID_VARIABLE)
    # A process a launcher started (LOCAL_RANK > 0) takes its parent's id; the parent itself makes a
    # new one for every adapter it creates (two runs in one script are two runs).
    if inherited and _int_env("LOCAL_RANK") > 0:
        return inherited
    made = f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{_counter()}"
    os.environ[RUN_ID_VARIABLE] = made
    return made


_made = 0


def _counter() -> int:
    global _made
    _made += 1
    return _made


def _int_env(name: str) -> int:
    try:
        return int(os.environ.get(name, "0"))
    except ValueError:
        return 0


def is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "item") and hasattr(value, "device")


def _on_cuda(value: Any) -> bool:
    return getattr(value.device, "type", "cpu") == "cuda"


class MetricSender:
    """Sends metrics events from a framework's values without stalling the device.

    Plain numbers and CPU tensors go out at once (one ``.item()`` each). CUDA tensors are copied
    to pinned host memory with ``non_blocking=True`` behind a CUDA event, and the event goes out
    at a later call once the copy is done (``query()``, no wait), so the step that logged them
    never synchronises. ``flush()`` (at the run's end) waits for what is left. Events keep their
    own step: a deferred one only arrives a little later. Keys whose values are not numbers
    (strings, lists) are left out, and named once in a ``log`` event.
    """

    def __init__(self, emitter: TrainingEventEmitter) -> None:
        self._emitter = emitter
        self._pending: Deque[Tuple[Dict[str, Any], Dict[str, Any], Optional[int], Optional[int], Any]] = deque()
        self._skipped: set = set()

    def send(self, values: Mapping, step: Optional[int] = None, epoch: Optional[int] = None) -> bool:
        if self._pending:
            self._resolve(wait=False)
        ready: Dict[str, Any] = {}
        on_device: Dict[str, Any] = {}
        for key, value in values.items():
            name = key if isinstance(key, str) else str(key)
            number = self._number(name, value)
            if number is None:
                continue
            if is_tensor(number):
                on_device[name] = number
            else:
                ready[name] = number
        if on_device:
            self._defer(ready, on_device, step, epoch)
            return True
        if not ready:
            return False
        return self._emitter.log_metrics(ready, step=step, epoch=epoch)

    def flush(self) -> None:
        """Sends every deferred event, waiting for its copies."""
        self._resolve(wait=True)

    def _number(self, name: str, value: Any) -> Any:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, (int, float)):
            return value
        if is_tensor(value):
            if value.numel() != 1:
                return self._skip(name, f"a tensor of {value.numel()} elements")
            if _on_cuda(value):
                return value.detach()
            return value.item()  # CPU (or another device that reads back as cheaply): one .item()
        item = getattr(value, "item", None)  # numpy scalars
        if callable(item) and getattr(value, "size", 1) == 1:
            try:
                plain = item()
            except Exception:  # noqa: BLE001 - a value we cannot read is named, not raised
                plain = None
            if isinstance(plain, (int, float)):
                return int(plain) if isinstance(plain, bool) else plain
        return self._skip(name, type(value).__name__)

    def _skip(self, name: str, what: str) -> None:
        if name not in self._skipped:
            self._skipped.add(name)
            self._emitter.log("warning", f"foxml_events: metric {name!r} is {what}, not a number; left out")
        return None

    def _defer(self, ready: Dict[str, Any], on_device: Dict[str, Any], step: Optional[int],
               epoch: Optional[int]) -> None:
        import torch  # a CUDA tensor came in: torch is loaded already

        host: Dict[str, Any] = {}
        marks = []
        for name, value in on_device.items():
            copy = torch.empty(value.shape, dtype=value.dtype, device="cpu", pin_memory=True)
            copy.copy_(value, non_blocking=True)
            host[name] = copy
            if not any(device == value.device for device, _ in marks):  # one event per device's stream
                mark = torch.cuda.Event()
                mark.record(torch.cuda.current_stream(value.device))
                marks.append((value.device, mark))
        self._pending.append((ready, host, step, epoch, _Marks([mark for _, mark in marks])))
        if len(self._pending) > MAX_PENDING_LOGS:
            self._pending[0][4].synchronize()
            self._resolve(wait=False)

    def _resolve(self, wait: bool) -> None:
        # In order: an event whose copy is not done holds back the ones logged after it.
        while self._pending:
            ready, host, step, epoch, done = self._pending[0]
            if wait:
                done.synchronize()
            elif not done.query():
                return
            self._pending.popleft()
            values = dict(ready)
            values.update((name, copy.item()) for name, copy in host.items())
            self._emitter.log_metrics(values, step=step, epoch=epoch)


class _Marks:
    """The CUDA events behind one deferred metrics event (one per device its values came from)."""

    __slots__ = ("events",)

    def __init__(self, events: List[Any]) -> None:
        self.events = events

    def query(self) -> bool:
        return all(event.query() for event in self.events)

    def synchronize(self) -> None:
        for event in self.events:
            event.synchronize()


class Stages:
    """The stage the adapter last announced, as stage_change events (previous -> new)."""

    def __init__(self, emitter: TrainingEventEmitter) -> None:
        self._emitter = emitter
        self._stack: List[str] = []

    @property
    def current(self) -> Optional[str]:
        return self._stack[-1] if self._stack else None

    def enter(self, name: str) -> None:
        if self.current == name:
            return
        self._emitter.emit_stage_change(self.current, name)
        self._stack.append(name)

    def leave(self, name: str) -> None:
        if self.current != name:
            return
        self._stack.pop()
        self._emitter.emit_stage_change(name, self.current or "idle")

    def leave_all(self) -> None:
        while self._stack:
            self.leave(self._stack[-1])


class Control:
    """The control commands a framework loop obeys, checked once per step (``check()``).

    ``cancel``: ``check()`` returns True from then on (the adapter sets its framework's stop flag)
    and ``finish()`` reports ``command_done`` ok when the loop ended. ``pause``: holds the calling
    (training) thread until ``resume`` or ``cancel`` (the emitter's wait_while_paused() answers both).
    ``checkpoint``: ``on_checkpoint(command)`` when the adapter has one (it returns the message for
    ``command_done`` ok, or None when the adapter acknowledges it later itself; an exception is
    ``failed``), else ``ignored``. Any other command: ``ignored``. With ``on_command`` callbacks of the user's own on the emitter,
    they take the commands: ``check()`` then follows ``should_stop()``.
    """

    def __init__(self, emitter: TrainingEventEmitter,
                 on_checkpoint: Optional[Callable[[Command], Optional[str]]] = None) -> None:
        self._emitter = emitter
        self._on_checkpoint = on_checkpoint
        self.cancel: Optional[Command] = None
        self.stop_requested = False

    def check(self) -> bool:
        while True:
            command = self._emitter.poll_command()
            if command is None:
                break
            self._obey(command)
        if not self.stop_requested and self._emitter.should_stop():
            self.stop_requested = True
        return self.stop_requested

    def _obey(self, command: Command) -> None:
        if command.name == "cancel":
            if self.cancel is None:
                self.cancel = command
            else:
                self._emitter.command_done(command, "ignored", "already cancelling")
            self.stop_requested = True
        elif command.name in ("pause", "resume"):
            # Holds the loop while paused (until resume or cancel); acknowledges the pause and resume
            # it handled itself, so neither gets a second command_done here.
            self._emitter.wait_while_paused()
            if self._emitter.should_stop():
                self.stop_requested = True
        elif command.name == "checkpoint" and self._on_checkpoint is not None:
            try:
                message = self._on_checkpoint(command)
            except Exception as exc:  # noqa: BLE001 - a failed save is reported, training goes on
                self._emitter.command_done(command, "failed", f"{type(exc).__name__}: {exc}")
            else:
                if message is not None:
                    self._emitter.command_done(command, "ok", message)
        else:
            self._emitter.command_done(command, "ignored", f"the adapter knows no command {command.name!r}")

    def finish(self, where: str) -> None:
        """Acknowledges the cancel the loop obeyed (``where``: the step it stopped at)."""
        if self.cancel is not None:
            self._emitter.command_done(self.cancel, "ok", f"stopped {where}")
            self.cancel = None


class StopVote:
    """Whether any rank of a distributed job wants to stop, asked once per step on every rank.

    The vote is one all-reduce of a CPU tensor, over a gloo group of its own when the job's backend
    is another (NCCL): reading a CUDA result would make every step wait for the device. Make it on
    every rank at the same point (set-up is a collective); without torch.distributed initialised,
    or alone, it is each rank's own answer.
    """

    def __init__(self) -> None:
        self._group: Any = None
        self._world = 1
        dist = sys.modules.get("torch.distributed")  # not loaded: not distributed
        if dist is None or not dist.is_available() or not dist.is_initialized():
            return
        self._world = dist.get_world_size()
        if self._world > 1 and dist.get_backend() != "gloo":
            self._group = dist.new_group(backend="gloo")

    @property
    def distributed(self) -> bool:
        return self._world > 1

    def __call__(self, stop: bool) -> bool:
        if self._world <= 1:
            return stop
        import torch
        import torch.distributed as dist

        flag = torch.tensor([1 if stop else 0], dtype=torch.int32)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._group)
        return bool(flag.item())


class RunParts:
    """What each adapter keeps per run: its emitter, metric sender, stages and command handling,
    and the run's end."""

    def __init__(self, emitter: TrainingEventEmitter,
                 on_checkpoint: Optional[Callable[[Command], Optional[str]]] = None) -> None:
        self.emitter = emitter
        self.metrics = MetricSender(emitter)
        self.stages = Stages(emitter)
        self.control = Control(emitter, on_checkpoint)

    def end(self, status: str = "success", exception: Optional[BaseException] = None, where: str = "") -> str:
        """Sends what is deferred, answers the cancel the loop obeyed, leaves the stages and sends
        run_complete: ``cancelled`` for Ctrl-C or after a cancel, ``failed`` after an exception (its
        error event first), else ``status``. Returns the status sent."""
        self.metrics.flush()
        if exception is not None and isinstance(exception, KeyboardInterrupt):
            status = "cancelled"
        elif exception is not None and not is_normal_exit(exception):
            self.emitter.emit_error(describe_exception(exception), exception_type_name(type(exception)),
                                    recoverable=False)
            status = "failed"
        elif self.control.stop_requested and status == "success":
            status = "cancelled"
        self.control.finish(where)
        self.stages.leave_all()
        self.emitter.emit_run_complete(status)
        return status


def no_vote(stop: bool) -> bool:
    """The vote before a run's set-up: this rank's own answer."""
    return stop


def progress_pct(done: float, total: Optional[float]) -> Optional[float]:
    if not total or not math.isfinite(total) or total <= 0:
        return None
    return min(100.0, 100.0 * done / total)


def emitter_for(adapter: str, run_id: Optional[str], sink: Any, emitter: Optional[TrainingEventEmitter],
                options: Dict[str, Any], rank_zero_only: bool) -> Tuple[TrainingEventEmitter, bool]:
    """The adapter's emitter: the one the user passed (not closed by the adapter), else a new one
    (closed at the run's end). ``rank_zero_only`` keeps metrics and log lines to rank 0."""
    if emitter is not None:
        if options or sink is not None:
            raise TypeError(f"foxml_events.{adapter}: pass emitter= or sink/emitter options, not both")
        return emitter, False
    if rank_zero_only:
        options.setdefault("rank_zero_only", ["metrics", "log"])
    # The control endpoint lets `events-ctl cancel RUN` reach the loop whatever the sink.
    if os.environ.get("FOXML_EVENTS_CONTROL", "") != "0":
        options.setdefault("control_endpoint", "on")
    options.setdefault("signal_hook", False)  # the frameworks handle signals themselves
    return TrainingEventEmitter(resolve_run_id(run_id, adapter), sink, **options), True


def active_exception() -> Optional[BaseException]:
    """The exception being handled where the caller was called from (a ``finally`` or ``except``)."""
    return sys.exc_info()[1]


def import_error(adapter: str, package: str, error: ImportError) -> ImportError:
    return ImportError(
        f"foxml_events.{adapter} needs {package}, which is not importable here ({error}); "
        f"install it (pip install {package}) or use foxml_events' own API")
