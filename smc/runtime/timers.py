"""The ``timeout(N)`` timers of a running machine's active states.

Entering a state starts one timer per ``timeout(N)`` transition leaving it; leaving the state
(any transition, self-loops too) cancels them. In a statechart several states are active at
once and each keeps its own timers: a compound state's run while the machine moves between
its children, a child's stop when the child is left. An expired timer is only *recorded* (and
the machine woken): the engine fires its event when it next looks, between two actions or
while idle (``docs/runtime.md``, "Timers").
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol


class Cancellable(Protocol):
    """A scheduled call that can be called off (an :class:`asyncio.TimerHandle`)."""

    def cancel(self) -> None: ...


#: Runs a callback after a delay in seconds (the engine's: its event loop's ``call_later``).
Scheduler = Callable[[float, Callable[[], None]], Cancellable]


class StateTimers:
    """Starts and cancels the timers of each state entry; ``expired`` lists the events of the
    timers that went off in states still active, oldest first (the engine takes them)."""

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
        # (state, event) of each expired timer, oldest first.
        self._expired: list[tuple[str, str]] = []
        # State -> the handles of its current entry. The list itself identifies the entry: a
        # timer of an entry already left is ignored if its callback was already queued when
        # it was cancelled.
        self._running: dict[str, list[Cancellable]] = {}

    @property
    def expired(self) -> list[str]:
        """The events of the expired timers not taken yet, oldest first."""
        return [event for _state, event in self._expired]

    @property
    def has_expired(self) -> bool:
        return bool(self._expired)

    def take(self) -> str | None:
        """The oldest expired timer's event, removed (None: none)."""
        return self._expired.pop(0)[1] if self._expired else None

    def step(self, exited: Iterable[str], entered: Iterable[str]) -> None:
        """The machine left ``exited`` and entered ``entered`` (a state in both restarts)."""
        for state in exited:
            self.leave(state)
        for state in entered:
            self.start(state)

    def start(self, state: Any) -> None:
        """The machine entered ``state``: start its timers."""
        name = str(state)
        if name in self._running:
            self.leave(name)  # entered again without being left: a new entry all the same
        timers = self._timeouts.get(state, ())
        if not timers:
            return
        handles: list[Cancellable] = []
        self._running[name] = handles
        for seconds, event in timers:
            handles.append(
                self._schedule(
                    float(seconds), functools.partial(self._expire, name, handles, str(event))
                )
            )

    def leave(self, state: Any) -> None:
        """The machine left ``state``: its timers are off, its expired ones dropped."""
        name = str(state)
        handles = self._running.pop(name, None)
        if handles is None:
            return
        for handle in handles:
            handle.cancel()
        if self._expired:
            self._expired = [item for item in self._expired if item[0] != name]

    def cancel(self) -> None:
        """Every timer off, expired ones dropped (the machine stops)."""
        for handles in self._running.values():
            for handle in handles:
                handle.cancel()
        self._running.clear()
        self._expired.clear()

    def _expire(self, state: str, entry: list[Cancellable], event: str) -> None:
        if self._running.get(state) is not entry:
            return  # left that state entry already
        self._expired.append((state, event))
        self._wake()


__all__ = ["Cancellable", "Scheduler", "StateTimers"]
