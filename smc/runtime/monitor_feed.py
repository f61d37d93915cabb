"""The records a running machine publishes on its monitor socket (``smc monitor``).

Each record has ``kind`` (``transition``, ``job_claimed``, ``error``, ...), ``machine``,
``from``/``event``/``to`` (None unless a transition), the current ``job_id`` and ``ts`` (epoch
seconds), plus the fields of its kind (``docs/monitor.md``). Publishing never blocks or raises;
a machine run without a monitor (tests, ``monitor=False``) publishes nothing.
"""

from __future__ import annotations

import contextlib
from typing import Any

from smc.runtime.clock import SYSTEM_CLOCK, Clock
from smc.runtime.ledger import JobLedger
from smc.runtime.monitor import MonitorPublisher, monitor_dir
from smc.runtime.store import Store


class MonitorFeed:
    """The monitor socket of one machine, once :meth:`open`\\ ed; ``jobs`` gives each record
    the machine's current job."""

    def __init__(self, machine_name: str, jobs: JobLedger, clock: Clock = SYSTEM_CLOCK) -> None:
        self._machine_name = machine_name
        self._jobs = jobs
        self._clock = clock
        self._publisher: Any = None

    def open(self, store: Store, max_readers: int | None) -> None:
        """Bind the socket beside ``store``'s database (``max_readers`` None: the default).
        Raises :class:`smc.runtime.monitor.MonitorError` (e.g. the name is in use)."""
        self._publisher = MonitorPublisher.open(
            monitor_dir(store), self._machine_name, max_readers=max_readers
        )

    def publish(self, kind: str, **fields: Any) -> None:
        """Publish one record (nothing when the feed is not open)."""
        publisher = self._publisher
        if publisher is None:
            return
        current = self._jobs.current
        record: dict[str, Any] = {
            "kind": kind,
            "machine": self._machine_name,
            "from": None,
            "event": None,
            "to": None,
            "job_id": None if current is None else current.job_id,
            "ts": self._clock.time(),
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
