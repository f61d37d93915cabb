"""The clock the runtime reads, injected so that tests run on simulated time.

Everything in ``smc.runtime`` that measures a duration or stamps a row asks a :class:`Clock`
rather than calling :mod:`time` itself (as sismic's ``Interpreter(clock=...)``): a worker gets
:data:`SYSTEM_CLOCK`; a test of leases, timers or backoff passes a :class:`ManualClock` and
moves it forward with :meth:`ManualClock.advance` instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Two readings: ``monotonic()`` for durations and deadlines, ``time()`` (seconds since
    the epoch) for what is stored and compared across processes."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...


class SystemClock:
    """The host's clocks (:func:`time.monotonic`, :func:`time.time`)."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


#: The clock every part uses unless it is given another.
SYSTEM_CLOCK: Clock = SystemClock()


class ManualClock:
    """Simulated time: it stands still until :meth:`advance` moves it (thread-safe).

    Both readings move together; ``time()`` starts at ``epoch`` (default: a fixed instant, so
    a test's stored timestamps are the same on every run)."""

    def __init__(self, epoch: float = 1_800_000_000.0, monotonic: float = 1_000.0) -> None:
        self._lock = threading.Lock()
        self._elapsed = 0.0
        self._epoch = float(epoch)
        self._monotonic = float(monotonic)

    def monotonic(self) -> float:
        with self._lock:
            return self._monotonic + self._elapsed

    def time(self) -> float:
        with self._lock:
            return self._epoch + self._elapsed

    def advance(self, seconds: float) -> None:
        """Move both readings ``seconds`` forward (never backward)."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back ({seconds} s)")
        with self._lock:
            self._elapsed += seconds


__all__ = ["SYSTEM_CLOCK", "Clock", "ManualClock", "SystemClock"]
