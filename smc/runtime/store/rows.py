"""The rows the store returns (jobs, events, machines) and the JSON they hold.

Shared by every backend: a backend's statements return columns in ``JOB_FIELDS`` /
``EVENT_FIELDS`` order, and :func:`job_from_row` / :func:`event_from_row` make the rows.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

from smc.runtime.jsonlimits import (
    TOO_DEEP,
    JsonLimitError,
    check_json_text,
    decode_json,
    may_hold_unstorable_text,
    unstorable_text,
)

JOB_STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
#: The statuses a job is still in the queue with (the others are finished: it leaves them
#: only by a retry, or by being pruned).
OPEN_JOB_STATUSES = ("pending", "processing")
#: ``dead``: dead-lettered, never delivered (its payload cannot be decoded); ``last_error``
#: says why.
EVENT_STATUSES = ("pending", "processing", "done", "dead")
MACHINE_STATUSES = ("running", "stopped", "dead")

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
    "trace_id",
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
    "trace_id",
)
#: What a history row records (``HistoryRow.kind``).
HISTORY_KINDS = (
    "transition",
    "job_claimed",
    "job_completed",
    "job_failed",
    "job_retried",
    "job_added",
    "job_cancelled",
    # A worker stopping cleanly gave its job back to the queue (the attempt is not counted).
    "job_released",
    "event_sent",
    "event_received",
    "event_dropped",
    "error",
    "machine_started",
    "machine_stopped",
    # A workflow run's (docs/workflows.md): a scheduler took it, let go of it unfinished,
    # finished it; `smc workflow cancel` asked for it to be cancelled. Its tasks' moves are
    # `transition`s of `<workflow>/<task>`.
    "workflow_started",
    "workflow_stopped",
    "workflow_finished",
    "workflow_cancel_requested",
)
#: Column order of every history row both backends return (and of a staged entry's keys,
#: ``id`` apart).
HISTORY_FIELDS = (
    "id",
    "ts",
    "machine",
    "kind",
    "from_state",
    "event",
    "to_state",
    "job_id",
    "attempt",
    "trace_id",
    "source",
    "excerpt",
    "configuration",
)
#: The longest excerpt (of a payload, job data or error text) a history row keeps.
EXCERPT_LIMIT = 500


#: Job ids a job may not have: none names it, and ``.`` and ``..`` are not a path segment a
#: browser sends as they are (``/api/jobs/..`` is ``/api/``), so the web monitor could not.
RESERVED_JOB_IDS = ("", ".", "..")


def check_job_id(job_id: str) -> None:
    """Raise ``ValueError`` for a job id that is one of :data:`RESERVED_JOB_IDS`."""
    if job_id in RESERVED_JOB_IDS:
        raise ValueError(f"a job id must not be {job_id!r} (nor empty, '.' or '..')")


def json_kind(value: Any) -> str:
    """What JSON value ``value`` is, with its article: ``an array``, ``a string``, ..."""
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def not_an_object(data: Any) -> str | None:
    """Why ``data`` cannot be a job's data, as a predicate (``is an array, not a JSON
    object``), or None: a job's data is an object (None stands for ``{}``), since a claim puts
    its keys into the machine's context and ``job.<field>`` reads them. (Any other value used to
    be queued and then fail every attempt on an unresolved placeholder.)"""
    if data is None or isinstance(data, Mapping):
        return None
    return f"is {json_kind(data)}, not a JSON object"


def check_job_data(data: Any) -> None:
    """Raise ``ValueError`` when ``data`` cannot be a job's data (:func:`not_an_object`)."""
    problem = not_an_object(data)
    if problem is not None:
        raise ValueError(f"job data {problem}")


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
    #: The trace (a ULID) the job belongs to: made when it was added from outside, carried
    #: from the job or event that caused it otherwise (``docs/history.md``).
    trace_id: str | None = None

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
        ``nests arrays/objects deeper than …``, ``is an array, not a JSON object``), or None
        when it can."""
        value, error = self._decoded_data
        return not_an_object(value) if error is None else decode_problem(error)

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
            "trace_id": self.trace_id,
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
        trace_id=values["trace_id"],
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
    #: The trace the event belongs to (see :attr:`Job.trace_id`).
    trace_id: str | None = None

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
        trace_id=values["trace_id"],
    )


def excerpt(text: str | None, limit: int = EXCERPT_LIMIT) -> str | None:
    """``text`` cut to at most ``limit`` characters (the cut marked with ``…``), for a
    history row: a payload or an error can be megabytes, its story needs its start. JSON's
    ``\\uXXXX`` escapes of printable characters are written out first (:func:`readable`)."""
    if text is None:
        return None
    head = text[: limit * 12]  # a character written as an escape: at most 12 characters
    if "\\u" in head:
        text = readable(head) + text[len(head) :]
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


# An escaped backslash (kept as it is), a surrogate pair, or one escape.
_ESCAPES = re.compile(
    r"(\\\\)|\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})|\\u([0-9a-f]{4})", re.IGNORECASE
)


def _written_out(match: re.Match[str]) -> str:
    if match.group(1):
        return match.group(1)
    if match.group(2):
        high, low = int(match.group(2), 16), int(match.group(3), 16)
        return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    char = chr(int(match.group(4), 16))
    # Control characters, a lone surrogate and JSON's own quote and backslash stay escaped.
    if not char.isprintable() or 0xD800 <= ord(char) <= 0xDFFF or char in '"\\':
        return match.group(0)
    return char


def readable(text: str) -> str:
    """JSON text with the ``\\uXXXX`` escapes of printable characters written out, as
    PostgreSQL's ``jsonb`` prints them: SQLite keeps the text Python's ``json`` made, all
    ASCII, and an excerpt of ``"é"`` data read ``"\\u00e9…"`` (a sixth as much data, cut
    inside an escape). Still JSON, with the same value."""
    return _ESCAPES.sub(_written_out, text)


#: One history row to write: the values of ``HISTORY_FIELDS[1:]`` in order (a tuple, bound
#: by position: the cheapest for the driver, on the hot path of every claim).
HistoryEntry = tuple[Any, ...]

#: How many leading values of a :data:`HistoryEntry` a row needs when the rest (source,
#: excerpt, configuration) are NULL, as a machine's transitions are (``insert_history_lean``).
LEAN_HISTORY_WIDTH = 9


def history_entry(
    kind: str,
    machine: str,
    *,
    ts: float,
    from_state: str | None = None,
    event: str | None = None,
    to_state: str | None = None,
    job_id: str | None = None,
    attempt: int | None = None,
    trace_id: str | None = None,
    source: str | None = None,
    excerpt_text: str | None = None,
    configuration: str | None = None,
) -> HistoryEntry:
    """One history row to write (``Store.stage_history``), its excerpt cut to size;
    ``configuration`` a statechart's active states as a JSON array (:func:`configuration_text`)."""
    if excerpt_text is not None:
        excerpt_text = excerpt(excerpt_text)
    return (
        ts,
        machine,
        kind,
        from_state,
        event,
        to_state,
        job_id,
        attempt,
        trace_id,
        source,
        excerpt_text,
        configuration,
    )


def configuration_text(configuration: Sequence[str] | None) -> str | None:
    """A statechart's active states as a history row stores them: a JSON array (None for a
    flat machine, whose state says it all)."""
    return None if configuration is None else json.dumps(list(configuration))


@dataclass(frozen=True)
class HistoryRow:
    """One row of the history (``docs/history.md``): what happened (``kind``, one of
    ``HISTORY_KINDS``) to ``machine`` at ``ts`` (epoch seconds, the recording process's
    clock). ``id`` grows with every row of a store. ``from_state``/``event``/``to_state``
    are a transition's (``to_state`` alone: a machine's start state; ``from_state`` alone:
    the state it stopped in); ``job_id``/``attempt`` the job it concerns or was working on;
    ``trace_id`` the trace it belongs to; ``source`` the sending machine of an event;
    ``excerpt`` at most :data:`EXCERPT_LIMIT` characters of the payload, job data or error;
    ``configuration`` every active state of a statechart after a ``transition`` or at its
    ``machine_started``, sorted (None otherwise, and for a flat machine)."""

    id: int
    ts: float
    machine: str
    kind: str
    from_state: str | None
    event: str | None
    to_state: str | None
    job_id: str | None
    attempt: int | None
    trace_id: str | None
    source: str | None
    excerpt: str | None
    configuration: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Stable keys for JSON output (one JSON object per line in ``--format jsonl``)."""
        return {
            "id": self.id,
            "ts": self.ts,
            "machine": self.machine,
            "kind": self.kind,
            "from_state": self.from_state,
            "event": self.event,
            "to_state": self.to_state,
            "job_id": self.job_id,
            "attempt": self.attempt,
            "trace_id": self.trace_id,
            "source": self.source,
            "excerpt": self.excerpt,
            "configuration": None if self.configuration is None else list(self.configuration),
        }


#: The kinds whose ``excerpt`` is an error's text: their monitor record calls it ``error``
#: (``smc.runtime.history.history_record``; a transition's is a workflow task's error).
ERROR_EXCERPT_KINDS = ("error", "job_failed", "job_retried", "transition")


#: Kinds of which a live feed needs only each machine's last of one read
#: (``Store.latest_history_lines``): where a machine is, and which job it holds.
LATEST_ONLY_KINDS = ("transition", "job_claimed", "job_completed")


class HistoryLine(NamedTuple):
    """A history row as a live feed reads it (``Store.history_lines``): what a follower keeps
    of each machine, and ``record``, the row's monitor record (``history_record``) as JSON
    text built by the database itself: a feed passing on thousands of rows a second makes
    no object of its own for each (docs/monitor.md, "Scale"). ``configuration`` is the JSON
    text of the column."""

    id: int
    kind: str
    machine: str
    from_state: str | None
    event: str | None
    to_state: str | None
    job_id: str | None
    source: str | None
    ts: float
    configuration: str | None
    record: str


def history_from_row(row: Sequence[Any]) -> HistoryRow:
    (
        id_,
        ts,
        machine,
        kind,
        from_state,
        event,
        to_state,
        job_id,
        attempt,
        trace,
        source,
        text,
        states,
    ) = row
    return HistoryRow(
        id=int(id_),
        ts=float(ts),
        machine=_text(machine),
        kind=_text(kind),
        from_state=from_state,
        event=event,
        to_state=to_state,
        job_id=job_id,
        attempt=None if attempt is None else int(attempt),
        trace_id=trace,
        source=source,
        excerpt=text,
        configuration=None if states is None else tuple(json.loads(states)),
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


__all__ = [
    "ERROR_EXCERPT_KINDS",
    "EVENT_FIELDS",
    "EVENT_STATUSES",
    "EXCERPT_LIMIT",
    "HISTORY_FIELDS",
    "HISTORY_KINDS",
    "JOB_FIELDS",
    "JOB_STATUSES",
    "LATEST_ONLY_KINDS",
    "MACHINE_STATUSES",
    "EventRow",
    "HistoryEntry",
    "HistoryLine",
    "HistoryRow",
    "Job",
    "MachineRow",
    "configuration_text",
    "decode_problem",
    "encode_json",
    "event_from_row",
    "excerpt",
    "history_entry",
    "history_from_row",
    "job_from_row",
    "machine_status",
    "process_alive",
]
