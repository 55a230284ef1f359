"""The signal hook: a terminal event when the process is stopped by a signal.

On SIGTERM, SIGHUP and SIGQUIT every live emitter writes ``run_complete`` with status ``killed``,
on SIGINT ``cancelled``, and flushes within the deadline (1 s by default); then the process goes on
as it would have: a handler set with ``signal.signal`` still runs, Ctrl-C still raises
KeyboardInterrupt, and a default disposition still ends the process with the same signal. Fatal
signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) get a best-effort ``error`` + ``run_complete
failed``. The work is done by the C++ core (``foxml/events/signals.hpp``) outside the handler.

``init_training_events`` and ``with TrainingEventEmitter(...)`` install it unless told not to
(``signal_hook=False``, or ``$FOXML_EVENTS_SIGNAL_HOOK=0``).
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from . import _core

_HOOKED = {signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGINT, signal.SIGSEGV, signal.SIGBUS,
           signal.SIGFPE, signal.SIGILL, signal.SIGABRT}
_settings = (1.0, True, True)
_original_signal = signal.signal


def install_signal_hook(deadline: float = 1.0, *, termination: bool = True, fatal: bool = True) -> None:
    """Installs the hook for the whole process (every emitter, also later ones). ``deadline`` is
    the longest one signal spends writing and flushing terminal events, in seconds."""
    global _settings
    if not deadline >= 0:
        raise ValueError("foxml_events: the signal hook deadline must be >= 0 seconds")
    _settings = (float(deadline), bool(termination), bool(fatal))
    _core._install_signal_hook(*_settings)


def remove_signal_hook() -> None:
    """Puts back the handlers the hook chained to (where it is still installed)."""
    _core._remove_signal_hook()


def signal_hook_installed() -> bool:
    return bool(_core._signal_hook_installed())


def _default_install() -> None:
    """Installs the hook unless $FOXML_EVENTS_SIGNAL_HOOK is 0 (the default of the Python API)."""
    if os.environ.get("FOXML_EVENTS_SIGNAL_HOOK", "1").strip().lower() in ("0", "false", "no", "off"):
        return
    if not signal_hook_installed():
        install_signal_hook()


def _signal(signalnum: Any, handler: Any) -> Any:
    # signal.signal() replaces the C-level handler with Python's own, which would take ours out:
    # installing again makes the new handler the one ours chains to.
    previous = _original_signal(signalnum, handler)
    if signalnum in _HOOKED and signal_hook_installed() and threading.current_thread() is threading.main_thread():
        _core._install_signal_hook(*_settings)
    return previous


_signal.__doc__ = _original_signal.__doc__
signal.signal = _signal
