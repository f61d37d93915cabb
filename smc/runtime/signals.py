"""SIGINT and SIGTERM as *stop requests* of a worker process, from its first line to its exit.

Python's own SIGINT handler raises ``KeyboardInterrupt`` wherever the process happens to be (an
import, a database call, the clean-up of a stop), and SIGTERM's default action kills it on the
spot; either way a job can be left ``processing`` and socket files behind. ``smc run`` installs
:class:`StopSignals` before it imports anything else (``smc/__main__.py``): a signal is then
only *recorded*, and handed to whoever listens (the engine, once it runs). What a worker does
with the first and with a second signal is in ``docs/runtime.md`` ("Stopping").

This module imports nothing but the standard library: it runs before the rest of ``smc``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Records SIGINT/SIGTERM (``received``, in order) and calls the listener, if any, with
    each signal number. The listener runs in the main thread between two bytecodes of whatever
    is running: it must only set flags, schedule work, or end the process."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._listener: Callable[[int], None] | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return bool(self.received)

    def install(self) -> bool:
        """Handle the stop signals from now on; False (nothing changed) outside the main
        thread, where Python cannot set signal handlers."""
        if threading.current_thread() is not threading.main_thread():
            return False
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return True

    def restore(self) -> None:
        """Put back the handlers that were there before :meth:`install` (embedded engines)."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def ignore_from_now(self) -> None:
        """Ignore the stop signals from now on: the process has stopped and only exits. (Python's
        finalisation puts every *handled* signal back to its default action, which kills the
        process; an ignored one stays ignored.)"""
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)

    def listen(self, listener: Callable[[int], None] | None) -> None:
        self._listener = listener

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        listener = self._listener
        if listener is not None:
            listener(signum)


#: The process's stop signals when ``smc run`` installed them (see ``smc/__main__.py``).
PROCESS_SIGNALS: StopSignals | None = None


def install_process_signals() -> StopSignals:
    """Install (once) and return the process-wide :class:`StopSignals`."""
    global PROCESS_SIGNALS
    if PROCESS_SIGNALS is None:
        signals = StopSignals()
        signals.install()
        PROCESS_SIGNALS = signals
    return PROCESS_SIGNALS
