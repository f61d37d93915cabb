"""The records a running machine publishes on its monitor socket (``smc monitor``).

Each record has ``kind`` (``transition``, ``job_claimed``, ``error``, ...), ``machine``,
``from``/``event``/``to`` (None unless a transition), the current ``job_id`` and ``ts`` (epoch
seconds), plus the fields of its kind (``docs/monitor.md``). Publishing never blocks or raises;
a machine run without a monitor (tests, ``monitor=False``) publishes nothing.

The records the store does not write itself (transitions, errors, dropped events: no row of
the store changes with them) are also staged for the durable history (:meth:`record_to`):
they ride the machine's next write, which is at the latest the registry update that shows
the state they led to (``docs/history.md``).
"""

from __future__ import annotations

import contextlib
from typing import Any

from smc.runtime.clock import SYSTEM_CLOCK, Clock
from smc.runtime.ledger import JobLedger
from smc.runtime.monitor import MonitorPublisher, monitor_dir
from smc.runtime.store import Store, configuration_text, excerpt

#: Monitor record kinds staged for the history, by their history kind. (Job claims and
#: outcomes, events received and dead-lettered, starts and stops: the store writes those in
#: the transaction that makes them.)
_STAGED_KINDS = {
    "transition": "transition",
    "error": "error",
    "event_dropped": "event_dropped",
    "unhandled_event": "event_dropped",
}


class MonitorFeed:
    """The monitor socket of one machine, once :meth:`open`\\ ed; ``jobs`` gives each record
    the machine's current job."""

    def __init__(self, machine_name: str, jobs: JobLedger, clock: Clock = SYSTEM_CLOCK) -> None:
        self._machine_name = machine_name
        self._jobs = jobs
        self._clock = clock
        self._publisher: Any = None
        self._history: Store | None = None

    def record_to(self, store: Store | None) -> None:
        """Stage the records the store does not write itself into ``store``'s history (None,
        or a store with history off: none)."""
        self._history = store if store is not None and store.history_enabled else None

    def open(self, store: Store, max_readers: int | None) -> None:
        """Bind the socket beside ``store``'s database (``max_readers`` None: the default).
        Raises :class:`smc.runtime.monitor.MonitorError` (e.g. the name is in use)."""
        self._publisher = MonitorPublisher.open(
            monitor_dir(store), self._machine_name, max_readers=max_readers
        )

    def publish(self, kind: str, **fields: Any) -> None:
        """Publish one record (nothing when the feed is not open), and stage it for the
        history if it is one of the kinds staged."""
        publisher = self._publisher
        history = self._history
        if publisher is None and history is None:
            return
        current = self._jobs.current
        now = self._clock.time()
        if history is not None:
            staged = _STAGED_KINDS.get(kind)
            if staged is not None:
                get = fields.get
                configuration = get("configuration")
                error = get("error")
                # The row's values in HISTORY_FIELDS[1:] order, as ``history_entry`` makes
                # them, built here: this runs on every transition of every job.
                history.stage_history(
                    (
                        now,
                        self._machine_name,
                        staged,
                        get("from"),
                        get("event"),
                        get("to"),
                        get("job_id") or (None if current is None else current.job_id),
                        None if current is None else current.attempt,
                        history.trace_id,
                        get("source"),
                        None if error is None else excerpt(error),
                        # A statechart's transition carries every active state (a parallel
                        # one's regions); a flat machine's none: a lookup, and NULL stored.
                        None if configuration is None else configuration_text(configuration),
                    )
                )
        if publisher is None:
            return
        record: dict[str, Any] = {
            "kind": kind,
            "machine": self._machine_name,
            "from": None,
            "event": None,
            "to": None,
            "job_id": None if current is None else current.job_id,
            "ts": now,
        }
        record.update(fields)
        publisher.publish(record)

    def close(self) -> None:
        """Close the socket and remove its file (errors ignored: the machine is stopping)."""
        if self._publisher is not None:
            # Forgotten only once closed: a second Ctrl-C during the close still removes the
            # file (``remove_file``).
            with contextlib.suppress(Exception):
                self._publisher.close()
            self._publisher = None

    def remove_file(self) -> None:
        """Remove the socket's file only (a forced exit: the kernel closes the socket, and a
        full close would take the publisher's lock, which the interrupted main thread may
        hold, or may be closing it halfway, past the point where a second close returns)."""
        if self._publisher is not None:
            self._publisher.remove_file()


__all__ = ["MonitorFeed"]
