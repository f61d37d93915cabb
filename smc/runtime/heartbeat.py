"""The heartbeat of a running machine: a background thread with its own database connection.

Every ``interval`` (:func:`heartbeat_interval` of the lease) it renews the leases of the jobs
the machine claimed and of the event it is handling, and the registry heartbeat (reaping
finished child processes first). Every :data:`CHECKPOINT_INTERVAL` it checks that the
database file is still the one the machine opened and checkpoints SQLite's write-ahead log.
With a history retention, every :data:`PRUNE_INTERVAL` (the first time
:data:`FIRST_PRUNE_DELAY` after the start) it prunes the history, finished jobs and delivered
events older than the retention (``docs/history.md``, "Retention").

A thread: a long action on the event loop must not let a live machine's job expire. On
SQLite it has a connection of its own, so that the loop never runs a checkpoint (its
``fsync``s); the loop's commits only wait while one holds the write lock (1-3 ms, at most
twice a second per database: ``smc.runtime.store.sqlite``, "Checkpoints"); on PostgreSQL
it shares the loop's (``open_background_store``: a server's
connections are few). The prune, a long delete once an hour, runs on a thread and a
connection of its own, so that it never holds up the loop's statements nor the renewals.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from smc.runtime.clock import SYSTEM_CLOCK, Clock
from smc.runtime.faults import LogLimiter
from smc.runtime.ledger import Claim
from smc.runtime.store import (
    EventRow,
    Store,
    StoreError,
    open_background_store,
    open_store,
)

#: The registry heartbeat never waits longer than this (machines are reported dead after 60 s).
MAX_HEARTBEAT_INTERVAL = 10.0
#: How often the background thread tries to checkpoint SQLite's write-ahead log (move it into
#: the database file: at most once per ``CHECKPOINT_GAP`` per database, whichever process
#: gets there first); see :data:`smc.runtime.store.sqlite.INLINE_CHECKPOINT_EVERY`.
CHECKPOINT_INTERVAL = 0.25
#: How often a worker prunes by its history retention (every worker does: the deletes are
#: idempotent, and no worker is special).
PRUNE_INTERVAL = 3600.0
#: The first prune, this long after the start (not at once: a crash loop would prune in it).
FIRST_PRUNE_DELAY = 60.0


def heartbeat_interval(lease_seconds: float) -> float:
    """How often leases are renewed: three times per lease, and at least every 10 s."""
    return min(lease_seconds / 3.0, MAX_HEARTBEAT_INTERVAL)


class Heartbeat:
    """One machine's heartbeat. :meth:`start` runs :meth:`beat_round` on a thread every
    ``min(interval, CHECKPOINT_INTERVAL)`` seconds until :meth:`stop`.

    The callbacks run on the heartbeat thread: ``on_lease_lost`` with a claim whose lease could
    not be renewed, ``on_database_replaced`` once with the reason the file is not the one
    opened (:meth:`Store.replaced`)."""

    def __init__(
        self,
        *,
        database: str,
        main_store: Store,
        machine_name: str,
        lease_seconds: float,
        claims: Callable[[], Iterable[Claim]],
        held_event: Callable[[], EventRow | None],
        reap_children: Callable[[], None],
        on_lease_lost: Callable[[Claim], None],
        on_database_replaced: Callable[[str], None],
        logger: logging.Logger,
        clock: Clock = SYSTEM_CLOCK,
        history_retention: float | None = None,
    ) -> None:
        """``history_retention``: prune what is older, in seconds (None: never)."""
        self._database = database
        self._history_retention = history_retention
        self._next_prune = clock.monotonic() + FIRST_PRUNE_DELAY
        self._main_store = main_store
        self._machine_name = machine_name
        self._lease_seconds = lease_seconds
        self._claims = claims
        self._held_event = held_event
        self._reap_children = reap_children
        self._on_lease_lost = on_lease_lost
        self._on_database_replaced = on_database_replaced
        self._logger = logger
        self._clock = clock
        self.interval = heartbeat_interval(lease_seconds)
        #: The heartbeat's store (``open_background_store``), opened by the first round (and
        #: again after a failure to open it).
        self.store: Store | None = None
        self._next_beat = clock.monotonic() + self.interval
        self._database_replaced = False
        self._error_log = LogLimiter(clock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pruner: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._main, name=f"smc-heartbeat-{self._machine_name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end after its current round (see :meth:`join`)."""
        self._stop.set()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def _main(self) -> None:
        while not self._stop.wait(min(self.interval, CHECKPOINT_INTERVAL)):
            self.beat_round()
        self.close()

    def close(self) -> None:
        """Close the heartbeat's connection."""
        if self.store is not None:
            self.store.close()
            self.store = None

    def beat_round(self) -> None:
        """One round: the renewals if a beat is due, then the file check and the checkpoint.
        Never raises: leases ride on this thread, so it must outlive any fault (logged at most
        every 30 s)."""
        what = "checkpoint"
        try:
            if self.store is None:
                self.store = open_background_store(self._main_store, self._database)
            store = self.store
            if self._clock.monotonic() >= self._next_beat:
                what = "heartbeat"
                self._next_beat = self._clock.monotonic() + self.interval
                self._beat(store)
                what = "checkpoint"
            self._check_database_file()
            store.checkpoint()
            if self._history_retention is not None and self._clock.monotonic() >= self._next_prune:
                self._next_prune = self._clock.monotonic() + PRUNE_INTERVAL
                self._start_prune(self._history_retention)
        except Exception as error:  # this thread must outlive any fault: leases ride on it
            if self._error_log.due():
                text = str(error) if isinstance(error, StoreError) else repr(error)
                self._logger.error("%s failed: %s (will retry)", what, text)

    def _start_prune(self, retention: float) -> None:
        """Prune on a thread and a connection of its own: on this thread a prune of millions
        of rows (the first after a retention is set on a big database: seconds to minutes)
        held up the renewal of every lease, and another worker ran a job again. One at a
        time: a prune still going skips this hour's."""
        if self._pruner is not None and self._pruner.is_alive():
            return
        self._pruner = threading.Thread(
            target=self._prune_on_own_connection,
            args=(retention,),
            name=f"smc-prune-{self._machine_name}",
            daemon=True,  # a stop does not wait for it: each batch is its own transaction
        )
        self._pruner.start()

    def _prune_on_own_connection(self, retention: float) -> None:
        try:
            with open_store(self._database) as pruning:
                self.prune(pruning, retention)
        except Exception as error:  # logged; the next hour tries again
            text = str(error) if isinstance(error, StoreError) else repr(error)
            self._logger.error("prune the history failed: %s (will retry)", text)

    def join_prune(self, timeout: float) -> None:
        """Wait for a prune in progress (tests)."""
        if self._pruner is not None:
            self._pruner.join(timeout=timeout)

    def prune(self, store: Store, retention: float) -> None:
        """Prune what is older than ``retention`` seconds; logged when anything went."""
        removed = store.prune_history(retention)
        if any(removed.values()):
            self._logger.info(
                "pruned %d history rows, %d finished jobs, %d delivered events and %d "
                "finished workflow runs",
                removed["history"],
                removed["jobs"],
                removed["events"],
                removed["workflow_runs"],
            )

    def _beat(self, store: Store) -> None:
        self._reap_children()
        for claim in self._claims():
            if claim.lost:
                continue
            if not store.heartbeat(claim.job_id, claim.token, self._lease_seconds):
                self._on_lease_lost(claim)
        event = self._held_event()
        if event is not None and not store.heartbeat_event(
            event.id, event.claim_token or "", self._lease_seconds
        ):
            self._logger.warning(
                "lost the lease of event %d (%s): it may be delivered again",
                event.id,
                event.event_type,
            )
        store.heartbeat_machine(self._machine_name)

    def _check_database_file(self) -> None:
        """Report once that the database file was deleted or replaced: the machine would go on
        with the unlinked file and never see another job. (A ``stat``, off the loop.)"""
        if self._database_replaced:
            return
        reason = self._main_store.replaced()
        if reason is not None:
            self._database_replaced = True
            self._on_database_replaced(reason)


__all__ = [
    "CHECKPOINT_INTERVAL",
    "FIRST_PRUNE_DELAY",
    "MAX_HEARTBEAT_INTERVAL",
    "PRUNE_INTERVAL",
    "Heartbeat",
    "heartbeat_interval",
]
