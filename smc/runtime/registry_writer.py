"""Writes a running machine's state to the machine registry (``smc status``), rate-limited.

A write per transition would be three per job; so a busy machine writes at most every
:data:`REGISTRY_WRITE_INTERVAL` seconds (a change within the interval is written when it is up,
whichever state the machine is in by then), and the engine asks for a write when the machine
goes to sleep, so the registry shows where it waits: at once, unless the last write was under
:data:`IDLE_WRITE_GAP` ago (a timer-driven machine that sleeps between transitions dozens of
times a second), and then when that is up.
"""

from __future__ import annotations

from collections.abc import Callable

from smc.runtime.clock import SYSTEM_CLOCK, Clock
from smc.runtime.faults import FaultReporter
from smc.runtime.store import Store, StoreError
from smc.runtime.timers import Cancellable, Scheduler

#: A busy machine writes its state to the registry at most this often; it writes when it goes
#: idle (at most every IDLE_WRITE_GAP), and on stop.
REGISTRY_WRITE_INTERVAL = 0.5
#: A machine going to sleep writes at most this often: a machine a 25 ms timer moves wrote (and
#: committed the transition's history row) at every sleep: a third of its main thread's work
#: a transition. The wait adds at most this much to when the history shows a transition.
IDLE_WRITE_GAP = 0.05


class RegistryWriter:
    """The registry row of one machine: registered by :meth:`register`, then kept up to date
    by :meth:`state_changed` (after each transition) and :meth:`write` (before a sleep)."""

    def __init__(
        self,
        machine_name: str,
        current_state: Callable[[], str],
        faults: FaultReporter,
        schedule: Scheduler,
        clock: Clock = SYSTEM_CLOCK,
        interval: float = REGISTRY_WRITE_INTERVAL,
    ) -> None:
        """``current_state``: the machine's state now; ``schedule``: runs a deferred write."""
        self._machine_name = machine_name
        self._current_state = current_state
        self._faults = faults
        self._schedule = schedule
        self._clock = clock
        self._interval = interval
        self._store: Store | None = None
        #: The state last written.
        self.written: str | None = None
        # When the next write may happen (clock's monotonic reading), and the deferred write
        # with when it runs.
        self._due = float("-inf")
        self._deferred: Cancellable | None = None
        self._deferred_at = float("inf")
        #: When the last write (of the state or of the staged history alone) was made.
        self._last_write = float("-inf")

    def register(
        self, store: Store, config_path: str | None, configuration: list[str] | None = None
    ) -> bool:
        """Register the machine in its current state (``configuration``: a statechart's
        active states); later writes go to ``store``. False when a live machine of its name
        on another host holds the row (nothing written). Database errors propagate (the
        machine cannot start)."""
        state = self._current_state()
        if not store.register_machine(
            self._machine_name, state, config_path=config_path, configuration=configuration
        ):
            return False
        self._store = store
        self.written = state
        return True

    def state_changed(self) -> None:
        """Write the new state now, or — if the last write was under the interval ago — when
        the interval is up (whichever state the machine is in by then)."""
        now = self._clock.monotonic()
        if now >= self._due:
            self.write()
        elif self._deferred is None:
            self._defer(now, self._due)

    def idle(self) -> None:
        """About to sleep: write now, or — if the last write was under :data:`IDLE_WRITE_GAP`
        ago — when that is up (sooner than a deferred write already waiting)."""
        now = self._clock.monotonic()
        due = self._last_write + IDLE_WRITE_GAP
        if now >= due:
            self.write()
        elif due < self._deferred_at:
            self._defer(now, due)

    def _defer(self, now: float, due: float) -> None:
        if self._deferred is not None:
            self._deferred.cancel()
        self._deferred = self._schedule(due - now, self.write)
        self._deferred_at = due

    def write(self) -> None:
        """Write the current state if it differs from the one written last (with the staged
        history: the transitions that led there), else write the staged history alone."""
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None
            self._deferred_at = float("inf")
        state = self._current_state()
        store = self._store
        if state == self.written:
            if store is None:
                return
            self._last_write = self._clock.monotonic()
            try:
                store.flush_history()
            except StoreError as error:
                self._faults.report("write the history", error)
            else:
                self._faults.recovered("write the history")
            return
        if store is None:
            raise RuntimeError("the machine is not registered")
        self._last_write = self._clock.monotonic()
        self._due = self._last_write + self._interval
        try:
            store.update_machine(self._machine_name, state)
        except StoreError as error:
            self._faults.report("update the machine registry", error)
            return  # still differs: written at the next chance
        self.written = state
        self._faults.recovered("update the machine registry")


__all__ = ["IDLE_WRITE_GAP", "REGISTRY_WRITE_INTERVAL", "RegistryWriter"]
