"""Reading events back: decoded dicts from a JSONL file, once or following it as it grows.

The full reader (Unix socket and ZeroMQ sources, the ring buffer for late joiners, the run state
tracker) is being built in C++; it will be bound next to FileReader in bindings/python/reader_binding.cpp.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterator, Optional, Union

from . import _core

PathArg = Union[str, "os.PathLike[str]"]


def read_events(path: PathArg, *, errors: str = "raise") -> Iterator[Dict[str, Any]]:
    """Iterates the events in a JSONL file, each as a dict with the wire field names.

    ``errors='raise'`` raises ValueError at an undecodable line; ``'skip'`` skips it (the count is on
    the returned iterator's ``skipped``). Raises FileNotFoundError when the file does not exist.
    """
    return _core.FileReader(os.fspath(path), False, 0.1, None, errors)  # type: ignore[no-any-return]


def follow_events(
    path: Optional[PathArg] = None,
    *,
    poll_interval: float = 0.1,
    idle_timeout: Optional[float] = None,
    errors: str = "skip",
) -> Iterator[Dict[str, Any]]:
    """Iterates the events of a JSONL file from its start, then waits for more as it grows (like
    ``tail -F``): waits for the file to appear, starts again when it is truncated, and ends after
    ``idle_timeout`` seconds without a new event (never when None) or when ``stop()`` is called on the
    iterator. Waiting releases the GIL; Ctrl-C interrupts it. ``path`` defaults to the file the
    default sink writes."""
    target = _core.default_event_file() if path is None else os.fspath(path)
    return _core.FileReader(target, True, poll_interval, idle_timeout, errors)  # type: ignore[no-any-return]


def decode_line(line: Union[str, bytes]) -> Dict[str, Any]:
    """Decodes one JSON line into a dict; raises ValueError for a line that is not a valid event."""
    return _core.decode_line(line)  # type: ignore[no-any-return]
