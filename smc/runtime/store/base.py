"""The ``Store`` protocol: what callers (the engine, the CLI, actions, the monitor, tests) use.

``Store`` is a :class:`typing.Protocol`, not a base class: it says what a store does and
holds no code. The one implementation is ``sql.SqlStore`` (every method written once over SQL);
what differs between databases is the small set of hooks in ``backend.Backend``, which the
SQLite and PostgreSQL backends implement. This module also holds the options every store
takes (:class:`Backoff`, the defaults) and re-exports the row types and errors.

Every method is synchronous and runs one short transaction, so the asyncio runtime can call it
directly or through ``asyncio.to_thread``. Semantics are identical on both backends; see
``docs/queue.md`` for the design (claim statement, leases, fencing, reaper, backoff).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from smc.runtime.store.errors import DuplicateJobError, StoreError
from smc.runtime.store.rows import (
    EVENT_STATUSES,
    HISTORY_KINDS,
    JOB_STATUSES,
    MACHINE_STATUSES,
    EventRow,
    HistoryEntry,
    HistoryLine,
    HistoryRow,
    Job,
    MachineRow,
    configuration_text,
    encode_json,
    history_entry,
    process_alive,
)
from smc.runtime.store.waker import Waker, machine_channel
from smc.runtime.store.workflow_rows import WorkflowStore

DEFAULT_PRIORITY = 5
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_LEASE_SECONDS = 30.0
#: A machine whose last heartbeat is older than this is reported dead.
DEFAULT_MACHINE_STALE_AFTER = 60.0
#: ``claim_job`` reaps expired leases at most this often (per store object).
DEFAULT_REAP_INTERVAL = 1.0


@dataclass(frozen=True)
class Backoff:
    """Retry delay ``min(cap, base * 2**attempts)`` scaled by a random factor in
    ``[1 - jitter, 1 + jitter]``, so jobs that failed together do not retry together."""

    base: float = 1.0
    cap: float = 3600.0
    jitter: float = 0.1

    def delay(self, attempts: int) -> float:
        exponent = min(max(int(attempts), 0), 60)  # 2**60 s is already far beyond any cap
        raw = min(self.cap, self.base * 2.0**exponent)
        return raw * (1.0 + self.jitter * (2.0 * random.random() - 1.0))


OutgoingEvent = tuple[str, str, Any]
"""``(target machine, event type, payload)`` for :meth:`Store.update_machine_and_send`."""


class Store(WorkflowStore, Protocol):
    """The job queue, the inter-machine event table and the machine registry.

    Delivery is at-least-once: a claimed job whose worker dies is re-run after its lease
    expires. Everything a handler writes through the store when completing (result, state,
    outgoing events) commits atomically; external side effects need idempotency keys.
    """

    #: The trace this store's user works in (a worker: its current job's or event's): jobs
    #: and events added without a trace id carry it; None: each starts a new trace.
    trace_id: str | None
    #: The machine this store works for (a worker's): the ``source`` of the ``job_added``
    #: rows of the jobs it adds; None: a command or a program.
    actor: str | None
    #: Whether writes record history (off only to measure what history costs).
    history_enabled: bool

    # --- lifecycle ---

    @property
    def location(self) -> str:
        """Where the store lives (a file path or a password-free URL), for messages."""
        ...

    @property
    def socket_dir(self) -> Path | None:
        """Directory of the SQLite doorbell sockets, for neighbours (the monitor) to use; None
        on PostgreSQL, which wakes through LISTEN/NOTIFY."""
        ...

    def close(self) -> None:
        """Close the connection; the store reconnects if used again."""
        ...

    def checkpoint(self) -> None:
        """Housekeeping a long-running worker runs off its hot path, from a background thread
        on its own connection, a few times a second (SQLite: move the write-ahead log into the
        database file, holding the write lock, at most once a ``CHECKPOINT_GAP`` per database;
        PostgreSQL: nothing)."""
        ...

    def replaced(self) -> str | None:
        """Why the database this store opened is no longer the one at its location (a SQLite
        file deleted or replaced while open: the process would go on using the unlinked file
        and never see new jobs), else None. A cheap check (a ``stat``), for idle moments."""
        ...

    def __enter__(self) -> Store: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """:meth:`close`."""
        ...

    # --- jobs ---

    def add_job(
        self,
        job_type: str,
        data: Any = None,
        job_id: str | None = None,
        priority: int = DEFAULT_PRIORITY,
        machine_type: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        run_after: float | None = None,
        dedupe_key: str | None = None,
        trace_id: str | None = None,
    ) -> Job:
        """Queue a job and ring ``jobs``; ``trace_id`` None: :attr:`trace_id`, else a new one.
        ``data`` None is stored as ``{}``; ``run_after`` is an
        epoch time before which the job is not claimable. A ``dedupe_key`` already held by a
        pending or processing job returns that job instead. An existing ``job_id`` raises
        :class:`DuplicateJobError`; an empty one, ``.`` or ``..`` raises ``ValueError``
        (:func:`~smc.runtime.store.rows.check_job_id`)."""
        ...

    def claim_job(
        self,
        worker: str,
        job_types: Sequence[str] | None = None,
        machine_type: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> Job | None:
        """Atomically claim the next runnable job (lowest priority number, then oldest).

        ``job_types`` None means any type. ``machine_type`` given: jobs for that machine type
        *and* jobs with no machine type (NULL matches any worker); None: any job. Expired leases
        are reaped first (at most every ``reap_interval``). A job whose data cannot be decoded
        (not valid JSON, or beyond the limits of ``smc.runtime.jsonlimits``) is failed
        permanently with the reason and the claim moves on to the next one.
        """
        ...

    def claim_job_by_id(
        self, job_id: str, worker: str, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> Job | None:
        """Claim one named job; None when it is not pending and runnable (already claimed,
        finished, scheduled later, unknown) or its data is malformed (it is then failed)."""
        ...

    def reap_if_due(self) -> int:
        """Run :meth:`reap_expired` if it has not run in the last ``reap_interval`` seconds."""
        ...

    def heartbeat(self, job_id: str, claim_token: str, lease_seconds: float) -> bool:
        """Extend a held lease; False means the lease was lost (fenced out): stop the job and
        discard its result."""
        ...

    def complete_job(self, job_id: str, claim_token: str | None = None, result: Any = None) -> bool:
        """Mark a processing job completed; False when it is not processing or (with a token)
        no longer ours."""
        ...

    def fail_job(
        self,
        job_id: str,
        reason: str,
        claim_token: str | None = None,
        retry: bool = False,
    ) -> bool:
        """Mark a processing job failed, or with ``retry`` put it back to pending after the
        backoff delay, unless its attempts are used up. False when fenced out."""
        ...

    def release_job(self, job_id: str, claim_token: str) -> bool:
        """Give a claimed job back (clean shutdown): pending at once, the attempt not counted."""
        ...

    def reap_expired(self) -> int:
        """Re-queue processing jobs whose lease expired (with backoff), or fail them when their
        attempts are used up. Returns how many jobs were reaped."""
        ...

    def get_job(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        ...

    def list_jobs(
        self,
        status: str | None = None,
        limit: int = 100,
        job_type: str | None = None,
        *,
        with_data: bool = True,
    ) -> list[Job]:
        """Jobs, newest first; only those of ``status`` and of ``job_type`` when given.
        ``with_data=False`` leaves each job's data and result unread (``null`` and None):
        a list to show, where they can be megabytes each."""
        ...

    def list_pending(
        self,
        job_type: str | None = None,
        machine_type: str | None = None,
        limit: int | None = None,
    ) -> list[Job]:
        """Runnable pending jobs in claim order, without claiming them (``machine_type`` has
        the same NULL-matches-any meaning as in :meth:`claim_job`)."""
        ...

    def retry_job(self, job_id: str) -> bool:
        """failed/cancelled → pending now, attempts reset, and the last run's worker, start,
        error and result cleared (its story keeps them); False when not in those states.
        Raises :class:`JobRefusedError` for a workflow task's job (its retries are the
        workflow's) or when another pending job holds its dedupe key."""
        ...

    def cancel_job(self, job_id: str) -> bool:
        """pending → cancelled; False when not pending."""
        ...

    def queue_counts(self, finished: bool = True) -> dict[str, int]:
        """Number of jobs per status, every status present. ``finished=False``: the open
        statuses only (``OPEN_JOB_STATUSES``), whose count costs the same however many
        finished jobs the store keeps; counting those walks every one of them."""
        ...

    def wait_job_statuses(self, job_ids: Iterable[str]) -> dict[str, str]:
        """Status of each known job id (unknown ids are left out)."""
        ...

    # --- events between machines ---

    def send_event(
        self,
        target: str,
        event_type: str,
        payload: Any = None,
        source: str | None = None,
        job_id: str | None = None,
        trace_id: str | None = None,
    ) -> int:
        """Store an event for ``target`` (which need not be running) and ring its channel;
        ``trace_id`` None: :attr:`trace_id`, else a new one."""
        ...

    def claim_events(
        self, target: str, limit: int = 100, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> list[EventRow]:
        """Lease up to ``limit`` events for ``target`` in id order, including events whose
        earlier lease expired unacknowledged (re-delivery).

        An event whose payload cannot be decoded (not valid JSON, or beyond the limits of
        ``smc.runtime.jsonlimits``: a row another tool or an older smc wrote) is dead-lettered
        (status ``dead``, the reason in ``last_error`` and logged at ERROR) and the claim moves
        on: it can never be delivered, and it must not hold up the events behind it."""
        ...

    def ack_event(self, event_id: int, claim_token: str) -> bool:
        """Mark a claimed event done; False when its lease was lost."""
        ...

    def dead_letter_event(self, event_id: int, claim_token: str, reason: str) -> bool:
        """Mark a claimed event ``dead`` (never to be delivered) with ``reason`` as its
        ``last_error``; False when its lease was lost."""
        ...

    def event_counts(self) -> dict[str, int]:
        """Number of events per status, every status in ``EVENT_STATUSES`` present."""
        ...

    def heartbeat_event(self, event_id: int, claim_token: str, lease_seconds: float) -> bool:
        """Extend the lease of a claimed event that is still being handled; False when its
        lease was lost (it was delivered again)."""
        ...

    def release_event(self, event_id: int, claim_token: str) -> bool:
        """Give one claimed event back (pending, next in order, its delivery not counted):
        a machine that stops while handling it. False when its lease was lost."""
        ...

    def list_events(
        self, target: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[EventRow]:
        """Events, newest first, optionally for one target and/or one status."""
        ...

    def release_events(self, target: str) -> int:
        """Return all of ``target``'s leased events to pending. A machine calls this when it
        starts, so events its dead predecessor held are redelivered at once and in order."""
        ...

    # --- machine registry ---

    def register_machine(
        self,
        name: str,
        state: str | None,
        pid: int | None = None,
        host: str | None = None,
        config_path: str | None = None,
        configuration: Sequence[str] | None = None,
    ) -> bool:
        """Insert or replace the row for ``name`` as running (pid/host default to ours);
        ``configuration``: a statechart's active states, for its ``machine_started`` row.
        False, and nothing written, when a machine of that name runs on another host (its
        row running, its heartbeat younger than ``machine_stale_after``): decided in the one
        statement, so two hosts starting a name at once cannot both take it."""
        ...

    def update_machine(self, name: str, state: str | None = None) -> bool:
        """Record a new state (None: keep it) and bump the heartbeat; False if unknown."""
        ...

    def heartbeat_machine(self, name: str) -> bool:
        """Bump the heartbeat, keeping the state; False if unknown."""
        ...

    def stop_machine(self, name: str) -> bool:
        """Mark the machine stopped (clean exit)."""
        ...

    def get_machine(self, name: str) -> MachineRow | None:
        """The machine's row (its status checked as in :meth:`list_machines`), or None."""
        ...

    def list_machines(self) -> list[MachineRow]:
        """All machines by name; "running" rows with a stale heartbeat or a pid that is gone
        from this host are reported ``dead``."""
        ...

    def update_machine_and_send(
        self,
        name: str,
        state: str | None,
        events: Sequence[OutgoingEvent],
        source: str | None = None,
    ) -> list[int]:
        """Record ``name``'s new state and store its outgoing events in ONE transaction (both or
        neither), then ring each target. ``source`` defaults to ``name``. Returns event ids."""
        ...

    # --- history (docs/history.md) ---

    def stage_history(self, entry: HistoryEntry) -> None:
        """Queue one history row (:func:`history_entry`) for this store's next write: it is
        inserted in that write's transaction (a worker's transitions ride its registry update,
        its claim or its job's completion). Nothing when history is off."""
        ...

    def flush_history(self) -> None:
        """Write the staged history rows now (their own transaction), if any."""
        ...

    def history(
        self,
        *,
        machine: str | None = None,
        job_id: str | None = None,
        trace_id: str | None = None,
        since: float | None = None,
        after_id: int | None = None,
        kinds: Sequence[str] | None = None,
        limit: int = 1000,
        newest: bool = False,
    ) -> list[HistoryRow]:
        """History rows matching every filter given, in id order (the order they were
        recorded), at most ``limit``: the oldest that match, or with ``newest`` the newest
        (still in id order). ``since`` an epoch time, ``after_id`` rows after that id (for
        following), ``kinds`` among ``HISTORY_KINDS``; a ``trace_id`` that is a ULID is found
        in any case."""
        ...

    def last_history_rows(
        self, machines: Sequence[str], kinds: Sequence[str], before_id: int, rows: int
    ) -> list[HistoryRow]:
        """Each of ``machines``' newest row of ``kinds`` among the ``rows`` ids below
        ``before_id``, in id order (a machine with none there has none): where machines
        stood that are not in the newest rows, at the cost of one scan of that id range (there
        is no index on the machine)."""
        ...

    def history_lines(self, after_id: int, limit: int = 1000) -> list[HistoryLine]:
        """The history rows after ``after_id``, in id order, at most ``limit``, each with its
        monitor record as JSON text made by the database (``HistoryLine``): what a live feed
        passes on (the web monitor's), at a fraction of the cost of :meth:`history` and
        ``history_record`` for each row."""
        ...

    def latest_history_lines(
        self, after_id: int, limit: int = 1000
    ) -> tuple[int, list[HistoryLine]] | None:
        """:meth:`history_lines` of the ids after ``after_id`` up to the newest committed (at
        most ``limit`` ids on), with only each machine's last row of each of
        ``LATEST_ONLY_KINDS`` (its last move into another state and within one, its last
        claim and completion), and the last id read: what a feed that shows where machines
        are needs, the database sifting it. None where the database cannot say that every id
        below the newest is committed (PostgreSQL: a sequence's ids commit out of order)."""
        ...

    def last_history_id(self) -> int:
        """The id of the newest history row (0: none yet): where a follower from now on
        starts."""
        ...

    def prune_history(self, older_than_seconds: float) -> dict[str, int]:
        """Delete history rows, finished jobs (completed, failed, cancelled), delivered
        events (done, dead) and finished workflow runs (with their tasks) older than
        ``older_than_seconds``; how many of each (``history``, ``jobs``, ``events``,
        ``workflow_runs``). The newest history row is always kept."""
        ...

    # --- wake-ups ---

    def open_waker(self, channels: Sequence[str]) -> Waker:
        """A :class:`Waker` rung by :meth:`notify` on any of ``channels``."""
        ...

    def notify(self, channel: str) -> None:
        """Ring ``channel`` (a hint; never raises for lack of listeners)."""
        ...


__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_MACHINE_STALE_AFTER",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_PRIORITY",
    "DEFAULT_REAP_INTERVAL",
    "EVENT_STATUSES",
    "HISTORY_KINDS",
    "JOB_STATUSES",
    "MACHINE_STATUSES",
    "Backoff",
    "DuplicateJobError",
    "EventRow",
    "HistoryEntry",
    "HistoryRow",
    "Job",
    "MachineRow",
    "OutgoingEvent",
    "Store",
    "StoreError",
    "configuration_text",
    "encode_json",
    "history_entry",
    "machine_channel",
    "process_alive",
]
