"""The ``Store`` interface shared by the SQLite and PostgreSQL backends, and its row types.

Every method is synchronous and runs one short transaction, so the asyncio runtime can call it
directly or through ``asyncio.to_thread``. Semantics are identical on both backends; see
``docs/queue.md`` for the design (claim statement, leases, fencing, reaper, backoff).
"""

from __future__ import annotations

import abc
import json
import logging
import os
import random
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Any

from smc.runtime.jsonlimits import (
    TOO_DEEP,
    JsonLimitError,
    check_json_text,
    decode_json,
    may_hold_unstorable_text,
    unstorable_text,
)
from smc.runtime.store.waker import Waker, machine_channel

JOB_STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
#: ``dead``: dead-lettered, never delivered (its payload cannot be decoded); ``last_error``
#: says why.
EVENT_STATUSES = ("pending", "processing", "done", "dead")
MACHINE_STATUSES = ("running", "stopped", "dead")

_log = logging.getLogger("smc.store")

DEFAULT_PRIORITY = 5
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_LEASE_SECONDS = 30.0
#: A machine whose last heartbeat is older than this is reported dead.
DEFAULT_MACHINE_STALE_AFTER = 60.0
#: ``claim_job`` reaps expired leases at most this often (per store object).
DEFAULT_REAP_INTERVAL = 1.0

#: Column order of every job row both backends return.
JOB_FIELDS = (
    "id",
    "job_type",
    "machine_type",
    "data",
    "priority",
    "status",
    "attempts",
    "max_attempts",
    "run_after",
    "claimed_by",
    "claim_token",
    "lease_expires_at",
    "dedupe_key",
    "last_error",
    "result",
    "created_at",
    "started_at",
    "finished_at",
)
EVENT_FIELDS = (
    "id",
    "target_machine",
    "source_machine",
    "event_type",
    "payload",
    "job_id",
    "status",
    "attempts",
    "claim_token",
    "lease_expires_at",
    "created_at",
    "processed_at",
    "last_error",
)


class StoreError(Exception):
    """The database cannot be used: it is missing, read-only, full, unreachable, …

    The message is one line saying what failed and where, e.g.
    ``cannot write to /x/smc.db: database is read-only``.
    """


class DuplicateJobError(StoreError):
    """``add_job`` was given an id that already exists."""


def encode_json(value: Any, what: str) -> str:
    """Compact JSON text for ``value`` (``what`` names it in errors: ``job data``, …).

    Raises ``ValueError`` for what cannot be stored alike on both backends: NaN and infinities
    (JSON has neither), a NUL character or an unpaired surrogate in a string (``jsonb`` refuses
    them), and, as :class:`JsonLimitError`, a value beyond the limits of
    ``smc.runtime.jsonlimits`` (deeper than 64 levels, longer than 4 MiB)."""
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except RecursionError:
        raise JsonLimitError(f"{what} {TOO_DEEP}") from None
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what} must be JSON-serialisable: {error}") from None
    try:
        check_json_text(text)
    except JsonLimitError as error:
        raise JsonLimitError(f"{what} {error}") from None
    if may_hold_unstorable_text(text):
        problem = unstorable_text(value)
        if problem is not None:
            raise ValueError(f"{what} {problem}")
    return text


def decode_problem(error: ValueError) -> str:
    """``error`` (from :func:`decode_json`) as a predicate: ``is not valid JSON: …`` or the
    limit's own wording (``nests arrays/objects deeper than …``)."""
    if isinstance(error, JsonLimitError):
        return str(error)
    return f"is not valid JSON: {error}"


def _decode_json(text: str | None) -> Any:
    return None if text is None else decode_json(text)


def _text(value: Any) -> str:
    # SQLite columns are typeless: a row written by another tool may hold bytes or numbers.
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


@dataclass(frozen=True)
class Job:
    """One job row. Times are epoch seconds (floats); ``data_json`` is the JSON text as stored."""

    id: str
    job_type: str
    machine_type: str | None
    data_json: str
    priority: int
    status: str
    attempts: int
    max_attempts: int
    run_after: float
    claimed_by: str | None
    claim_token: str | None
    lease_expires_at: float | None
    dedupe_key: str | None
    last_error: str | None
    result_json: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None

    @cached_property
    def _decoded_data(self) -> tuple[Any, ValueError | None]:
        """``data_json`` decoded once (a claim checks it, then the context reads it): the value
        and None, or None and why the text is not valid JSON. (A frozen dataclass still has an
        instance ``__dict__``, which is where ``cached_property`` keeps it.)"""
        try:
            return decode_json(self.data_json), None
        except ValueError as error:
            # JSONDecodeError, an integer beyond Python's digit limit, or JsonLimitError: a
            # row another tool (or an older smc) wrote beyond the limits.
            return None, error

    @property
    def data(self) -> Any:
        """The decoded data; always valid for a job returned by a claim. Raises the decoding's
        ``ValueError`` when ``data_json`` is malformed."""
        value, error = self._decoded_data
        if error is not None:
            raise error.with_traceback(None)
        return value

    @property
    def result(self) -> Any:
        return _decode_json(self.result_json)

    def data_error(self) -> str | None:
        """Why ``data_json`` cannot be used, as a predicate (``is not valid JSON: …``,
        ``nests arrays/objects deeper than …``), or None when it can."""
        error = self._decoded_data[1]
        return None if error is None else decode_problem(error)

    def to_dict(self) -> dict[str, Any]:
        """Stable keys for JSON output; malformed data is shown as its raw text."""
        value, error = self._decoded_data
        data: Any = self.data_json if error is not None else value
        try:
            result = self.result
        except ValueError:
            result = self.result_json
        return {
            "id": self.id,
            "job_type": self.job_type,
            "machine_type": self.machine_type,
            "data": data,
            "priority": self.priority,
            "status": self.status,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "run_after": self.run_after,
            "claimed_by": self.claimed_by,
            "claim_token": self.claim_token,
            "lease_expires_at": self.lease_expires_at,
            "dedupe_key": self.dedupe_key,
            "last_error": self.last_error,
            "result": result,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


def job_from_row(row: Sequence[Any]) -> Job:
    values = dict(zip(JOB_FIELDS, row, strict=True))
    return Job(
        id=values["id"],
        job_type=values["job_type"],
        machine_type=values["machine_type"],
        data_json=_text(values["data"]),
        priority=int(values["priority"]),
        status=values["status"],
        attempts=int(values["attempts"]),
        max_attempts=int(values["max_attempts"]),
        run_after=float(values["run_after"]),
        claimed_by=values["claimed_by"],
        claim_token=values["claim_token"],
        lease_expires_at=_float_or_none(values["lease_expires_at"]),
        dedupe_key=values["dedupe_key"],
        last_error=values["last_error"],
        result_json=None if values["result"] is None else _text(values["result"]),
        created_at=float(values["created_at"]),
        started_at=_float_or_none(values["started_at"]),
        finished_at=_float_or_none(values["finished_at"]),
    )


@dataclass(frozen=True)
class EventRow:
    """One event sent to a machine. ``payload_json`` is the JSON text as stored."""

    id: int
    target: str
    source: str | None
    event_type: str
    payload_json: str
    job_id: str | None
    status: str
    attempts: int
    claim_token: str | None
    lease_expires_at: float | None
    created_at: float
    processed_at: float | None
    #: Why the event was dead-lettered (status ``dead``); None otherwise.
    last_error: str | None = None

    @cached_property
    def _decoded_payload(self) -> tuple[Any, ValueError | None]:
        """``payload_json`` decoded once: the value and None, or None and why it cannot be."""
        try:
            return decode_json(self.payload_json), None
        except ValueError as error:
            return None, error

    @property
    def payload(self) -> Any:
        """The decoded payload; always valid for an event returned by a claim. Raises the
        decoding's ``ValueError`` when ``payload_json`` cannot be used."""
        value, error = self._decoded_payload
        if error is not None:
            raise error.with_traceback(None)
        return value

    def payload_error(self) -> str | None:
        """Why ``payload_json`` cannot be used, as a predicate, or None when it can."""
        error = self._decoded_payload[1]
        return None if error is None else decode_problem(error)


def event_from_row(row: Sequence[Any]) -> EventRow:
    values = dict(zip(EVENT_FIELDS, row, strict=True))
    return EventRow(
        id=int(values["id"]),
        target=values["target_machine"],
        source=values["source_machine"],
        event_type=values["event_type"],
        payload_json=_text(values["payload"]),
        job_id=values["job_id"],
        status=values["status"],
        attempts=int(values["attempts"]),
        claim_token=values["claim_token"],
        lease_expires_at=_float_or_none(values["lease_expires_at"]),
        created_at=float(values["created_at"]),
        processed_at=_float_or_none(values["processed_at"]),
        last_error=values["last_error"],
    )


@dataclass(frozen=True)
class MachineRow:
    """One registered machine. ``status`` is running, stopped or dead (never trusted blindly:
    a "running" row with a stale heartbeat or a vanished pid is reported dead)."""

    name: str
    state: str | None
    pid: int | None
    host: str | None
    config_path: str | None
    status: str
    started_at: float | None
    heartbeat_at: float | None
    heartbeat_age: float | None
    updated_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "pid": self.pid,
            "host": self.host,
            "config_path": self.config_path,
            "status": self.status,
            "started_at": self.started_at,
            "heartbeat_at": self.heartbeat_at,
            "heartbeat_age": self.heartbeat_age,
            "updated_at": self.updated_at,
        }


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def process_alive(pid: int) -> bool:
    """Whether ``pid`` names a live process on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it just belongs to someone else
    return True


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


def machine_status(
    stored_status: str,
    pid: int | None,
    host: str | None,
    heartbeat_age: float | None,
    stale_after: float,
) -> str:
    """The status to report for a machine row: a "running" claim is checked, not believed."""
    if stored_status != "running":
        return stored_status
    if heartbeat_age is None or heartbeat_age > stale_after:
        return "dead"
    if pid is not None and host == socket.gethostname() and not process_alive(pid):
        return "dead"
    return "running"


OutgoingEvent = tuple[str, str, Any]
"""``(target machine, event type, payload)`` for :meth:`Store.update_machine_and_send`."""


class Store(abc.ABC):
    """The job queue, the inter-machine event table and the machine registry.

    Delivery is at-least-once: a claimed job whose worker dies is re-run after its lease
    expires. Everything a handler writes through the store when completing (result, state,
    outgoing events) commits atomically; external side effects need idempotency keys.
    """

    #: Directory of the SQLite doorbell sockets, for neighbours (the monitor) to use; None on
    #: PostgreSQL, which wakes through LISTEN/NOTIFY.
    socket_dir: Path | None = None

    def __init__(
        self,
        *,
        backoff: Backoff | None = None,
        reap_interval: float = DEFAULT_REAP_INTERVAL,
        machine_stale_after: float = DEFAULT_MACHINE_STALE_AFTER,
    ) -> None:
        self.backoff = backoff or Backoff()
        self.reap_interval = reap_interval
        self.machine_stale_after = machine_stale_after
        self._last_reap = float("-inf")

    # --- lifecycle ---

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the store lives (a file path or a password-free URL), for messages."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection; the store reconnects if used again."""

    def checkpoint(self) -> None:
        """Housekeeping a long-running worker runs off its hot path, from a background thread
        on its own connection, a few times a second (SQLite: move the write-ahead log into the
        database file). Nothing by default."""
        return None

    def replaced(self) -> str | None:
        """Why the database this store opened is no longer the one at its location (a SQLite
        file deleted or replaced while open: the process would go on using the unlinked file
        and never see new jobs), else None. A cheap check (a ``stat``), for idle moments."""
        return None

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- jobs ---

    @abc.abstractmethod
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
    ) -> Job:
        """Queue a job and ring ``jobs``. ``data`` None is stored as ``{}``; ``run_after`` is an
        epoch time before which the job is not claimable. A ``dedupe_key`` already held by a
        pending or processing job returns that job instead. An existing ``job_id`` raises
        :class:`DuplicateJobError`."""

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
        self.reap_if_due()
        while True:
            job = self._claim_next(worker, job_types, machine_type, lease_seconds)
            if job is None:
                return None
            if self._fail_if_malformed(job):
                continue
            return job

    def claim_job_by_id(
        self, job_id: str, worker: str, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> Job | None:
        """Claim one named job; None when it is not pending and runnable (already claimed,
        finished, scheduled later, unknown) or its data is malformed (it is then failed)."""
        job = self._claim_by_id(job_id, worker, lease_seconds)
        if job is None or self._fail_if_malformed(job):
            return None
        return job

    def _fail_if_malformed(self, job: Job) -> bool:
        problem = job.data_error()
        if problem is None:
            return False
        # Permanent: retrying cannot make the text parse, so never loop on a poison job.
        self.fail_job(job.id, f"job data {problem}", claim_token=job.claim_token)
        return True

    def reap_if_due(self) -> int:
        """Run :meth:`reap_expired` if it has not run in the last ``reap_interval`` seconds."""
        now = time.monotonic()
        if now - self._last_reap < self.reap_interval:
            return 0
        self._last_reap = now
        return self.reap_expired()

    @abc.abstractmethod
    def _claim_next(
        self,
        worker: str,
        job_types: Sequence[str] | None,
        machine_type: str | None,
        lease_seconds: float,
    ) -> Job | None: ...

    @abc.abstractmethod
    def _claim_by_id(self, job_id: str, worker: str, lease_seconds: float) -> Job | None: ...

    @abc.abstractmethod
    def heartbeat(self, job_id: str, claim_token: str, lease_seconds: float) -> bool:
        """Extend a held lease; False means the lease was lost (fenced out): stop the job and
        discard its result."""

    @abc.abstractmethod
    def complete_job(self, job_id: str, claim_token: str | None = None, result: Any = None) -> bool:
        """Mark a processing job completed; False when it is not processing or (with a token)
        no longer ours."""

    @abc.abstractmethod
    def fail_job(
        self,
        job_id: str,
        reason: str,
        claim_token: str | None = None,
        retry: bool = False,
    ) -> bool:
        """Mark a processing job failed, or with ``retry`` put it back to pending after the
        backoff delay, unless its attempts are used up. False when fenced out."""

    @abc.abstractmethod
    def release_job(self, job_id: str, claim_token: str) -> bool:
        """Give a claimed job back (clean shutdown): pending at once, the attempt not counted."""

    @abc.abstractmethod
    def reap_expired(self) -> int:
        """Re-queue processing jobs whose lease expired (with backoff), or fail them when their
        attempts are used up. Returns how many jobs were reaped."""

    @abc.abstractmethod
    def get_job(self, job_id: str) -> Job | None: ...

    @abc.abstractmethod
    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[Job]:
        """Jobs, newest first."""

    @abc.abstractmethod
    def list_pending(
        self,
        job_type: str | None = None,
        machine_type: str | None = None,
        limit: int | None = None,
    ) -> list[Job]:
        """Runnable pending jobs in claim order, without claiming them (``machine_type`` has
        the same NULL-matches-any meaning as in :meth:`claim_job`)."""

    @abc.abstractmethod
    def retry_job(self, job_id: str) -> bool:
        """failed/cancelled → pending now, attempts reset; False when not in those states."""

    @abc.abstractmethod
    def cancel_job(self, job_id: str) -> bool:
        """pending → cancelled; False when not pending."""

    @abc.abstractmethod
    def queue_counts(self) -> dict[str, int]:
        """Number of jobs per status, every status present."""

    @abc.abstractmethod
    def wait_job_statuses(self, job_ids: Iterable[str]) -> dict[str, str]:
        """Status of each known job id (unknown ids are left out)."""

    # --- events between machines ---

    @abc.abstractmethod
    def send_event(
        self,
        target: str,
        event_type: str,
        payload: Any = None,
        source: str | None = None,
        job_id: str | None = None,
    ) -> int:
        """Store an event for ``target`` (which need not be running) and ring its channel."""

    def claim_events(
        self, target: str, limit: int = 100, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> list[EventRow]:
        """Lease up to ``limit`` events for ``target`` in id order, including events whose
        earlier lease expired unacknowledged (re-delivery).

        An event whose payload cannot be decoded (not valid JSON, or beyond the limits of
        ``smc.runtime.jsonlimits``: a row another tool or an older smc wrote) is dead-lettered
        (status ``dead``, the reason in ``last_error`` and logged at ERROR) and the claim moves
        on: it can never be delivered, and it must not hold up the events behind it."""
        while True:
            rows = self._claim_events(target, limit, lease_seconds)
            usable = [row for row in rows if not self._dead_letter_if_malformed(row)]
            if usable or not rows:
                return usable

    def _dead_letter_if_malformed(self, row: EventRow) -> bool:
        problem = row.payload_error()
        if problem is None:
            return False
        self.dead_letter_event(row.id, row.claim_token or "", f"payload {problem}")
        _log.error(
            "event %d (%s from %s) to %s dead-lettered: its payload %s",
            row.id,
            row.event_type,
            row.source or "?",
            row.target,
            problem,
        )
        return True

    @abc.abstractmethod
    def _claim_events(self, target: str, limit: int, lease_seconds: float) -> list[EventRow]: ...

    @abc.abstractmethod
    def ack_event(self, event_id: int, claim_token: str) -> bool:
        """Mark a claimed event done; False when its lease was lost."""

    @abc.abstractmethod
    def dead_letter_event(self, event_id: int, claim_token: str, reason: str) -> bool:
        """Mark a claimed event ``dead`` (never to be delivered) with ``reason`` as its
        ``last_error``; False when its lease was lost."""

    @abc.abstractmethod
    def event_counts(self) -> dict[str, int]:
        """Number of events per status, every status in ``EVENT_STATUSES`` present."""

    @abc.abstractmethod
    def heartbeat_event(self, event_id: int, claim_token: str, lease_seconds: float) -> bool:
        """Extend the lease of a claimed event that is still being handled; False when its
        lease was lost (it was delivered again)."""

    @abc.abstractmethod
    def release_event(self, event_id: int, claim_token: str) -> bool:
        """Give one claimed event back (pending, next in order, its delivery not counted):
        a machine that stops while handling it. False when its lease was lost."""

    @abc.abstractmethod
    def list_events(
        self, target: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[EventRow]:
        """Events, newest first, optionally for one target and/or one status."""

    @abc.abstractmethod
    def release_events(self, target: str) -> int:
        """Return all of ``target``'s leased events to pending. A machine calls this when it
        starts, so events its dead predecessor held are redelivered at once and in order."""

    # --- machine registry ---

    @abc.abstractmethod
    def register_machine(
        self,
        name: str,
        state: str | None,
        pid: int | None = None,
        host: str | None = None,
        config_path: str | None = None,
    ) -> None:
        """Insert or replace the row for ``name`` as running (pid/host default to ours)."""

    @abc.abstractmethod
    def update_machine(self, name: str, state: str | None = None) -> bool:
        """Record a new state (None: keep it) and bump the heartbeat; False if unknown."""

    @abc.abstractmethod
    def heartbeat_machine(self, name: str) -> bool: ...

    @abc.abstractmethod
    def stop_machine(self, name: str) -> bool:
        """Mark the machine stopped (clean exit)."""

    @abc.abstractmethod
    def get_machine(self, name: str) -> MachineRow | None: ...

    @abc.abstractmethod
    def list_machines(self) -> list[MachineRow]:
        """All machines by name; "running" rows with a stale heartbeat or a pid that is gone
        from this host are reported ``dead``."""

    @abc.abstractmethod
    def update_machine_and_send(
        self,
        name: str,
        state: str | None,
        events: Sequence[OutgoingEvent],
        source: str | None = None,
    ) -> list[int]:
        """Record ``name``'s new state and store its outgoing events in ONE transaction (both or
        neither), then ring each target. ``source`` defaults to ``name``. Returns event ids."""

    # --- wake-ups ---

    @abc.abstractmethod
    def open_waker(self, channels: Sequence[str]) -> Waker:
        """A :class:`Waker` rung by :meth:`notify` on any of ``channels``."""

    @abc.abstractmethod
    def notify(self, channel: str) -> None:
        """Ring ``channel`` (a hint; never raises for lack of listeners)."""

    def _status(self, stored: str, pid: int | None, host: str | None, age: float | None) -> str:
        return machine_status(stored, pid, host, age, self.machine_stale_after)


__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_MACHINE_STALE_AFTER",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_PRIORITY",
    "EVENT_STATUSES",
    "JOB_STATUSES",
    "MACHINE_STATUSES",
    "Backoff",
    "DuplicateJobError",
    "EventRow",
    "Job",
    "MachineRow",
    "OutgoingEvent",
    "Store",
    "StoreError",
    "encode_json",
    "machine_channel",
    "process_alive",
]
