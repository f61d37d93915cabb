"""Reading the durable history (``docs/history.md``): following it, ages, retention, tables.

The rows are written by the store (``Store.history`` reads them). This module is what the
CLI (``smc history``, ``smc monitor --db postgresql://…``) and the web monitor share:

- :func:`follow_history`: every new row, in id order, as it
  commits. It polls by id and, where the store can wake it (PostgreSQL's LISTEN on the
  history channel), waits for the NOTIFY between polls instead of the whole poll interval.
  Ids from a PostgreSQL sequence can commit out of order (a transaction that took id 10 may
  commit after the one that took 11), so a follower keeps looking at a gap it saw for
  :data:`GAP_PATIENCE` seconds before it gives the missing ids up (a rolled-back transaction
  leaves a gap for ever).
- :func:`parse_age` / :func:`parse_since` / :func:`retention_seconds`: ``10m``, ``7d``, an
  ISO time; the retention default (:data:`DEFAULT_RETENTION`, ``$SMC_HISTORY_RETENTION``).
- :func:`history_table`: rows as a table with control characters escaped.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, Protocol, TypeVar

from smc.runtime.store import (
    ERROR_EXCERPT_KINDS,
    HISTORY_CHANNEL,
    HistoryLine,
    HistoryRow,
    Store,
    StoreError,
    Waker,
)
from smc.safe_text import escape_controls

#: How long history is kept when neither ``--history-retention`` nor
#: ``$SMC_HISTORY_RETENTION`` says: a week ("what happened to job 42 yesterday?" and the
#: weekend before it), bounded so a busy queue's database does not grow for ever.
DEFAULT_RETENTION = 7 * 86400.0
#: A follower waits this long for the rows of an id gap to commit before it skips them.
GAP_PATIENCE = 5.0
#: A follower polls at least this often when nothing wakes it: PostgreSQL's NOTIFY is rung at
#: most every ``HISTORY_RING_GAP`` (0.25 s) by a connection, so rows written within the gap
#: after a ring are read by the poll.
DEFAULT_POLL_SECONDS = 0.1

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
# ASCII digits only: ``\d`` also took other scripts' digits (``١٢`` as 12 s).
# The unit is required: a bare number read as seconds made `--older-than 5`, meant as days,
# prune everything finished, and `--history-retention 7` keep 7 seconds.
_AGE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw])\s*", re.IGNORECASE)
_NUMBER = re.compile(r"\s*[0-9]+(?:\.[0-9]+)?\s*")
_OFF = ("off", "never", "none")


def parse_age(text: str) -> float:
    """``30s``, ``10m``, ``12h``, ``7d``, ``2w`` as seconds; raises ``ValueError`` otherwise,
    for a number without its unit too."""
    match = _AGE.fullmatch(text)
    if match is None:
        unit = " (a number needs its unit)" if _NUMBER.fullmatch(text) else ""
        raise ValueError(f"{text!r} is not an age like 30s, 10m, 12h, 7d or 2w{unit}")
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


def parse_since(text: str, now: float | None = None) -> float:
    """An epoch time from an age before ``now`` (``10m``) or an ISO 8601 time (local time
    when it names no zone); raises ``ValueError`` otherwise."""
    try:
        return (time.time() if now is None else now) - parse_age(text)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an age (10m, 2h, 7d) nor an ISO time (2026-11-26T09:00)"
        ) from None
    if moment.tzinfo is None:
        try:
            moment = moment.astimezone()  # a time without a zone is this host's local time
        except (ValueError, OverflowError):
            # Within a day of year 1 or 9999, where the local zone's offset would leave the
            # calendar: taken as UTC (hours do not matter that far from any row).
            moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def retention_seconds(option: str | None) -> float | None:
    """The history retention: ``option`` (``--history-retention``), else
    ``$SMC_HISTORY_RETENTION`` (set and empty: unset), else :data:`DEFAULT_RETENTION`; None
    for ``off``. A ``ValueError`` names where the bad value came from."""
    if option is not None:
        where, text = "--history-retention", option
        if option.strip() == "":
            raise ValueError(f"{where}: empty: give an age like 7d, or off")
    else:
        where, found = "$SMC_HISTORY_RETENTION", os.environ.get("SMC_HISTORY_RETENTION")
        if found is None or found.strip() == "":
            return DEFAULT_RETENTION
        text = found
    if text.strip().lower() in _OFF:
        return None
    try:
        seconds = parse_age(text)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    if seconds <= 0:
        raise ValueError(f"{where}: must be more than 0 (or off)")
    return seconds


class _HasId(Protocol):
    @property
    def id(self) -> int: ...


_Row = TypeVar("_Row", bound=_HasId)


class HistoryCursor(Generic[_Row]):
    """Where a follower is in the history: the rows after :attr:`after_id`, plus the ids of
    a gap it still waits for (ids that may yet commit, :data:`GAP_PATIENCE`)."""

    def __init__(self, after_id: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.after_id = after_id
        self._clock = clock
        #: Missing id -> when it was first seen missing.
        self._gaps: dict[int, float] = {}
        #: Ids above the lowest gap already returned.
        self._seen: set[int] = set()

    @property
    def low(self) -> int:
        """The id to read after: below the oldest gap still waited for."""
        return min(self._gaps) - 1 if self._gaps else self.after_id

    @property
    def gap_span(self) -> tuple[int, int] | None:
        """The lowest and the highest id still waited for (None: none is)."""
        return (min(self._gaps), max(self._gaps)) if self._gaps else None

    def take(self, rows: Sequence[_Row]) -> list[_Row]:
        """The rows not returned before, in id order; notes the gaps they leave."""
        if (
            not self._gaps
            and rows
            and rows[0].id == self.after_id + 1
            and rows[-1].id == self.after_id + len(rows)
        ):
            # Every id from the last one on, none missing (ids ascend: SQLite's always; a
            # follower reading thousands a second takes this path): what the loop below would
            # return, with no gap to note, without a look at each row.
            self.after_id = rows[-1].id
            return list(rows)
        now = self._clock()
        fresh: list[_Row] = []
        for row in rows:
            if row.id in self._seen or (row.id <= self.after_id and row.id not in self._gaps):
                continue
            self._gaps.pop(row.id, None)
            for missing in range(self.after_id + 1, row.id):
                if missing not in self._seen:
                    self._gaps.setdefault(missing, now)
            if row.id > self.after_id:
                self.after_id = row.id
            fresh.append(row)
            self._seen.add(row.id)
        for missing, since in list(self._gaps.items()):
            if now - since > GAP_PATIENCE:
                del self._gaps[missing]
        low = self.low
        self._seen = {seen for seen in self._seen if seen > low}
        return fresh


def _open_waker(store: Store) -> Waker | None:
    """A waker on the history channel where the store rings it (PostgreSQL), else None."""
    if store.socket_dir is not None:
        return None  # SQLite: the history channel is not rung (see HISTORY_CHANNEL)
    try:
        return store.open_waker([HISTORY_CHANNEL])
    except StoreError:
        return None


def _matches(
    row: HistoryRow,
    machine: str | None,
    job_id: str | None,
    trace_id: str | None,
    kinds: Sequence[str] | None,
) -> bool:
    return (
        (machine is None or row.machine == machine)
        and (job_id is None or row.job_id == job_id)
        and (trace_id is None or row.trace_id == trace_id)
        and (kinds is None or row.kind in kinds)
    )


def follow_history(
    store: Store,
    after_id: int | None = None,
    *,
    machine: str | None = None,
    job_id: str | None = None,
    trace_id: str | None = None,
    kinds: Sequence[str] | None = None,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    stop: Callable[[], bool] | None = None,
    batch: int = 1000,
    cursor: HistoryCursor[HistoryRow] | None = None,
) -> Iterator[HistoryRow]:
    """Every history row after ``after_id`` (None: from now on) matching the filters, as it
    commits, until ``stop()`` is true (checked between polls) or the caller stops iterating.
    The rows are read whole and filtered here: a gap in the ids is then a row not committed
    yet, which :class:`HistoryCursor` waits for. Database errors propagate as
    :class:`StoreError`.

    ``cursor`` (instead of ``after_id``): where to go on from, moved on as rows are read. A
    follower that starts again after a database error passes the one it had, so that a row
    whose id was a gap when the connection dropped is still read when it commits (from the
    last id read alone it was skipped for ever)."""

    def read(after: int, limit: int) -> Sequence[HistoryRow]:
        return store.history(after_id=after, limit=limit)

    for rows in _follow(store, read, after_id, poll_seconds, stop, batch, cursor):
        for row in rows:
            if _matches(row, machine, job_id, trace_id, kinds):
                yield row


def follow_history_lines(
    store: Store,
    after_id: int | None = None,
    *,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    stop: Callable[[], bool] | None = None,
    batch: int = 1000,
    latest: bool = False,
    cursor: HistoryCursor[HistoryLine] | None = None,
) -> Iterator[list[HistoryLine]]:
    """:func:`follow_history` of every row, as ``HistoryLine``\\ s, a list for each read that
    found rows: each with its monitor record as JSON text that the database made
    (``Store.history_lines``), for a feed that passes the rows on (the web monitor's).
    ``latest``: of the transitions, claims and completions of each machine that one read
    finds, only the last of each kind (``Store.latest_history_lines``), where the database
    can sift them (SQLite); elsewhere every row. ``cursor``: as for :func:`follow_history`,
    where a feed that starts again after a database error goes on from."""
    if cursor is None:
        cursor = HistoryCursor(store.last_history_id() if after_id is None else after_id)
    if latest and store.latest_history_lines(0, 0) is not None:
        yield from _follow_latest(store, cursor, poll_seconds, stop, batch)
        return

    def read(after: int, limit: int) -> Sequence[HistoryLine]:
        return store.history_lines(after, limit)

    yield from _follow(store, read, None, poll_seconds, stop, batch, cursor)


def _follow_latest(
    store: Store,
    cursor: HistoryCursor[HistoryLine],
    poll_seconds: float,
    stop: Callable[[], bool] | None,
    batch: int,
) -> Iterator[list[HistoryLine]]:
    """:func:`follow_history_lines` with ``latest``, on a store whose ids commit in order: the
    ids up to the newest are all there is to read, so no gap is waited for (the cursor only
    keeps where the reads got to)."""
    while stop is None or not stop():
        after = cursor.after_id
        read = store.latest_history_lines(after, batch)
        assert read is not None  # the store said it can (follow_history_lines)
        upto, lines = read
        full = upto - after >= batch
        cursor.after_id = upto
        if lines:
            yield lines
        if not full:
            time.sleep(poll_seconds)


def _follow(
    store: Store,
    read: Callable[[int, int], Sequence[_Row]],
    after_id: int | None,
    poll_seconds: float,
    stop: Callable[[], bool] | None,
    batch: int,
    cursor: HistoryCursor[_Row] | None = None,
) -> Iterator[list[_Row]]:
    """The rows ``read(after_id, limit)`` returns (in id order), each once, as they commit,
    a list for each poll that found new ones: polled every ``poll_seconds``, or woken by the
    store's NOTIFY. The rows after the newest seen are read ``batch`` at a time; the ids of
    a gap still waited for (:class:`HistoryCursor`) are read apart, so that rows committed
    after it flow on meanwhile. (One read from below the gap once returned the same
    ``batch`` rows again and again, in a loop without a pause, until the gap was given up:
    a follower stalled for 5 s behind a rolled-back insert on a busy PostgreSQL history.)"""
    if cursor is None:
        cursor = HistoryCursor(store.last_history_id() if after_id is None else after_id)
    waker = _open_waker(store)
    try:
        while stop is None or not stop():
            fresh: list[_Row] = []
            span = cursor.gap_span
            if span is not None:
                first, last = span
                fresh += cursor.take(read(first - 1, last - first + 1))
            rows = read(cursor.after_id, batch)
            fresh += cursor.take(rows)
            if fresh:
                yield fresh
            if len(rows) >= batch:
                continue  # more are waiting: no sleep
            if waker is not None:
                if waker.broken:
                    with contextlib.suppress(StoreError):
                        waker.reopen()
                waker.wait(poll_seconds)
            else:
                time.sleep(poll_seconds)
    finally:
        if waker is not None:
            waker.close()


def history_ends(
    history: Callable[..., list[HistoryRow]], limit: int, **filters: Any
) -> tuple[list[HistoryRow], bool]:
    """The rows ``history`` (``Store.history``) finds for ``filters``: all of them when they
    are at most ``limit``, else the oldest and the newest ``limit // 2`` (True: the rows
    between are left out). A long story keeps its start and its outcome: a job's claim and
    its completion, not its first ``limit`` rows."""
    first = history(limit=limit, **filters)
    if len(first) < limit:
        return first, False
    half = limit // 2
    last = history(limit=half, newest=True, **filters)
    if not last or int(last[-1].id) <= int(first[-1].id):
        return first, False  # exactly ``limit`` rows: all of them are in ``first``
    return first[:half] + last, True


def history_record(row: HistoryRow) -> dict[str, Any]:
    """A history row as a monitor record (``docs/monitor.md``): ``kind``, ``machine``,
    ``from``/``event``/``to``, ``job_id``, ``ts``, and the row's ``id``, ``attempt``,
    ``trace_id``, ``source``, its excerpt as ``error`` (an error's text) or ``excerpt``, and a
    statechart's ``configuration`` (every active state) when the row has one.
    What ``smc monitor --db postgresql://…`` prints and the web monitor's live feed sends."""
    record: dict[str, Any] = {
        "kind": row.kind,
        "machine": row.machine,
        "from": row.from_state,
        "event": row.event,
        "to": row.to_state,
        "job_id": row.job_id,
        "ts": row.ts,
        "id": row.id,
        "attempt": row.attempt,
        "trace_id": row.trace_id,
        "source": row.source,
    }
    # A transition's excerpt is a workflow task's error (why it failed, was skipped or
    # cancelled): a worker's transitions have none.
    erring = row.kind in ERROR_EXCERPT_KINDS
    record["error" if erring else "excerpt"] = row.excerpt
    if row.configuration is not None:
        # A statechart's every active state, as its live records carry it: the web monitor
        # lights each region of a parallel state, not only the one that moved.
        record["configuration"] = list(row.configuration)
    return record


_TABLE_HEADERS = ("id", "time", "machine", "kind", "what", "job", "trace")
#: How a workflow run's rows read (the run id is their ``source``).
_RUN_KINDS = {
    "workflow_started": "started",
    "workflow_stopped": "let go unfinished",
    "workflow_finished": "finished",
    "workflow_cancel_requested": "cancel requested",
}


def describe(row: HistoryRow) -> str:
    """What happened, in one line: ``a --go--> b``, the event and its excerpt, …"""
    if row.kind == "transition":
        return f"{row.from_state} --{row.event}--> {row.to_state}"
    if row.kind == "machine_started":
        return f"started in {row.to_state}"
    if row.kind == "machine_stopped":
        return f"stopped in {row.from_state}"
    if row.kind in _RUN_KINDS:
        what = row.to_state if row.kind == "workflow_finished" else _RUN_KINDS[row.kind]
        return f"run {row.source} {what}" + (f" ({row.excerpt})" if row.excerpt else "")
    parts = [part for part in (row.event, row.excerpt) if part]
    if row.source and row.kind.startswith("event"):
        parts.insert(0, f"from {row.source}")
    if row.attempt is not None and row.kind.startswith("job"):
        parts.append(f"attempt {row.attempt}")
    return " ".join(parts)


def _format_time(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def history_table(rows: Sequence[HistoryRow], width: int = 70) -> str:
    """``rows`` as an aligned text table; every cell has its control characters escaped (a
    machine name or payload cannot move the terminal's cursor) and ``what`` is cut to
    ``width``."""
    cells = [
        [
            str(row.id),
            _format_time(row.ts),
            row.machine,
            row.kind,
            _cut(describe(row), width),
            row.job_id or "",
            row.trace_id or "",
        ]
        for row in rows
    ]
    cells = [[escape_controls(cell) for cell in line] for line in cells]
    widths = [
        max([len(header)] + [len(line[index]) for line in cells])
        for index, header in enumerate(_TABLE_HEADERS)
    ]
    lines = [
        "  ".join(cell.ljust(widths[index]) for index, cell in enumerate(line)).rstrip()
        for line in [list(_TABLE_HEADERS), *cells]
    ]
    return "\n".join(lines)


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


__all__ = [
    "DEFAULT_POLL_SECONDS",
    "DEFAULT_RETENTION",
    "GAP_PATIENCE",
    "HistoryCursor",
    "describe",
    "follow_history",
    "follow_history_lines",
    "history_record",
    "history_table",
    "parse_age",
    "parse_since",
    "retention_seconds",
]
