"""The ``timeout(N)`` timers of a running machine's current state entry.

Entering a state starts one timer per ``timeout(N)`` transition leaving it; leaving the state
(any transition, self-loops too) cancels them. An expired timer is only *recorded* (and the
machine woken): the engine fires its event when it next looks, between two actions or while
idle (``docs/runtime.md``, "Timers").
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Protocol


class Cancellable(Protocol):
    """A scheduled call that can be called off (an :class:`asyncio.TimerHandle`)."""

    def cancel(self) -> None: ...


#: Runs a callback after a delay in seconds (the engine's: its event loop's ``call_later``).
Scheduler = Callable[[float, Callable[[], None]], Cancellable]


class StateTimers:
    """Starts and cancels the timers of each state entry; ``expired`` lists the events of the
    timers that went off since the state was entered, oldest first (the engine takes them)."""

    def __init__(
        self,
        timeouts: Mapping[Any, tuple[tuple[float, Any], ...]],
        schedule: Scheduler,
        wake: Callable[[], None],
    ) -> None:
        """``timeouts``: the machine class's ``TIMEOUTS`` (state -> ``(seconds, event)``s);
        ``wake``: called when a timer expires, to wake the sleeping machine."""
        self._timeouts = timeouts
        self._schedule = schedule
        self._wake = wake
        self.expired: list[str] = []
        # Counts state entries: a timer of an entry already left is ignored if its callback
        # was already queued when it was cancelled.
        self._entry = 0
        self._handles: list[Cancellable] = []

    def start(self, state: Any) -> None:
        """The machine entered ``state``: start its timers."""
        self._entry += 1
        timers = self._timeouts.get(state, ())
        if not timers:
            return
        entry = self._entry
        for seconds, event in timers:
            self._handles.append(
                self._schedule(float(seconds), functools.partial(self._expire, entry, str(event)))
            )

    def cancel(self) -> None:
        """The machine leaves its state (or stops): its timers are off, expired ones dropped."""
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()
        self.expired.clear()

    def _expire(self, entry: int, event: str) -> None:
        if entry != self._entry:
            return  # left that state entry already
        self.expired.append(event)
        self._wake()


__all__ = ["Cancellable", "Scheduler", "StateTimers"]
