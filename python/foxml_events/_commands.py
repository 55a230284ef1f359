"""Sending commands to a running trainer (the control back-channel, docs/protocol.md "Control").

``send_command(run_id, "cancel")`` reaches the run through its control endpoint (a Unix socket
next to its event file, in ``<dir>/control/``: no listener needed), a listener's relay
(``socket=`` the path an ``EventReader("unix://...")`` or ``events-tail --socket`` listens on), or
ZeroMQ (``zmq=`` the event endpoint; commands go to its port + 1). ``EventReader.send_command``
picks the path from the reader's own source. The trainer acknowledges with ``command_received``
in its event stream; its loop reports the outcome with ``command_done``.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from . import _core

__all__ = ["CommandError", "list_control_endpoints", "send_command"]


class CommandError(RuntimeError):
    """A command was not acknowledged: the run is unknown (``unknown_run`` is True) or no
    acknowledgement came in time / the transport failed. ``result`` holds the details."""

    def __init__(self, message: str, result: Dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result
        self.unknown_run: bool = bool(result.get("unknown_run"))


def _arg_json(arg: Any) -> str:
    if arg is None:
        return ""
    try:
        return json.dumps(arg, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"foxml_events: command arg must be JSON-serialisable: {e}") from None


def _acknowledgement(result: Dict[str, Any], run_id: str, command: str) -> Dict[str, Any]:
    """Raises CommandError unless acknowledged; returns the acknowledgement as a dict."""
    if result["unknown_run"]:
        raise CommandError(f"foxml_events: {result['error']}", result)
    if not result["acknowledged"]:
        raise CommandError(
            f"foxml_events: {command} to run {run_id} (id {result['id']}) was not acknowledged: {result['error']}",
            result,
        )
    received: List[Dict[str, Any]] = [_core.decode_line(line) for line in result["received"]]
    return {
        "id": result["id"],
        "run_id": run_id,
        "command": command,
        "via": result["via"],
        "duplicate": result["duplicate"],
        "delivered": result["delivered"],
        "received": received,
    }


def send_command(
    run_id: str,
    command: str,
    arg: Any = None,
    *,
    socket: Optional[str] = None,
    zmq: Optional[str] = None,
    commands: Optional[str] = None,
    control_dir: Optional[str] = None,
    timeout: float = 5.0,
) -> Dict[str, Any]:
    """Sends ``command`` (cancel, pause, resume, checkpoint or a name of ``[A-Za-z0-9_.-]{1,64}``)
    with an optional JSON-serialisable ``arg`` to ``run_id`` and waits up to ``timeout`` seconds
    for the acknowledgement.

    Through ``socket`` (a listener's relay), ``zmq`` (an event endpoint; ``commands`` overrides
    the command endpoint, by default its port + 1), or else the run's control endpoint in
    ``control_dir`` (default: ``control/`` next to the default event file).

    Returns ``{"id", "run_id", "command", "via", "duplicate", "delivered", "received"}``
    (``received``: the ``command_received`` events seen, when the transport shows them). Raises
    ValueError for a bad name or arg, CommandError for an unknown run or no acknowledgement.
    """
    if socket is not None and zmq is not None:
        raise ValueError("foxml_events: give socket or zmq, not both")
    if commands is not None and zmq is None:
        raise ValueError("foxml_events: commands= needs zmq=")
    result = _core.send_command(
        run_id,
        command,
        _arg_json(arg),
        socket or "",
        zmq or "",
        commands or "",
        control_dir or "",
        timeout,
    )
    return _acknowledgement(result, run_id, command)


def list_control_endpoints(control_dir: Optional[str] = None, timeout: float = 1.0) -> List[Dict[str, Any]]:
    """Returns the control endpoints in ``control_dir`` (default: next to the default event
    file), each ``{"path", "run_id", "pid", "host", "running", "status", "error"}``; a stale
    socket file of an ended process is listed with ``running`` False."""
    return _core.list_control_endpoints(control_dir or "", timeout)  # type: ignore[no-any-return]
