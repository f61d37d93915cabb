"""Writes a running machine's state to the machine registry (``smc status``), rate-limited.

A write per transition would be three per job; so a busy machine writes at most every
:data:`REGISTRY_WRITE_INTERVAL` seconds (a change within the interval is written when it is up,
whichever state the machine is in by then), and the engine asks for a write at once when the
machine goes to sleep, so the registry shows where it waits.
"""

from __future__ import annotations

from collections.abc import Callable

from smc.runtime.clock import SYSTEM_CLOCK, Clock
from smc.runtime.faults import FaultReporter
from smc.runtime.store import Store, StoreError
from smc.runtime.timers import Cancellable, Scheduler

#: A busy machine writes its state to the registry at most this often; it writes at once when
#: it goes idle, and on stop.
REGISTRY_WRITE_INTERVAL = 0.5


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
        # When the next write may happen (clock's monotonic reading), and the deferred write.
        self._due = float("-inf")
        self._deferred: Cancellable | None = None

    def register(
        self, store: Store, config_path: str | None, configuration: list[str] | None = None
    ) -> None:
        """Register the machine in its current state (``configuration``: a statechart's
        active states); later writes go to ``store``. Database errors propagate (the machine
        cannot start)."""
        state = self._current_state()
        store.register_machine(
            self._machine_name, state, config_path=config_path, configuration=configuration
        )
        self._store = store
        self.written = state

    def state_changed(self) -> None:
        """Write the new state now, or — if the last write was under the interval ago — when
        the interval is up (whichever state the machine is in by then)."""
        now = self._clock.monotonic()
        if now >= self._due:
            self.write()
        elif self._deferred is None:
            self._deferred = self._schedule(self._due - now, self.write)

    def write(self) -> None:
        """Write the current state if it differs from the one written last (with the staged
        history: the transitions that led there), else write the staged history alone."""
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None
        state = self._current_state()
        store = self._store
        if state == self.written:
            if store is None:
                return
            try:
                store.flush_history()
            except StoreError as error:
                self._faults.report("write the history", error)
            else:
                self._faults.recovered("write the history")
            return
        if store is None:
            raise RuntimeError("the machine is not registered")
        self._due = self._clock.monotonic() + self._interval
        try:
            store.update_machine(self._machine_name, state)
        except StoreError as error:
            self._faults.report("update the machine registry", error)
            return  # still differs: written at the next chance
        self.written = state
        self._faults.recovered("update the machine registry")


__all__ = ["REGISTRY_WRITE_INTERVAL", "RegistryWriter"]
