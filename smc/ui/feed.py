"""The server's one live feed, fanned out to every browser.

One thread follows the machines for the whole server, however many browsers are open, from
one of two sources (:attr:`LiveFeed.source`):

- ``history`` (the default wherever the store keeps the durable history, ``docs/history.md``):
  the thread follows the store's ``history`` table by id (``follow_history_lines``: each
  row's record as JSON the database made; on SQLite only the rows no later one of the same
  machine supersedes, sifted by the database). On PostgreSQL the server's NOTIFY on history
  inserts wakes it, so machines on every host show per transition; on SQLite it polls every
  :data:`HISTORY_POLL_SECONDS`. The machines write
  nothing for the web monitor (the rows are written whether or not anyone looks), which is
  why this is the default: a reader on a machine's monitor socket costs that machine a JSON
  encoding and a send per record (docs/monitor.md, "Scale").
- ``sockets``: every machine's monitor socket on this host (``smc.runtime.monitor.follow``),
  when the store keeps no history (``SMC_HISTORY=off``) or when asked for (``smc ui --feed
  sockets``).

The thread hands what it reads to the server's event loop in batches; there each record is
applied to the feed's view of the machines, and those a later record of the same machine in
the batch does not supersede (``superseded_dropped``) are put on every subscriber's queue.

A subscriber's queue is bounded (:data:`DEFAULT_QUEUE_SIZE` messages, and
:data:`DEFAULT_QUEUE_CHARS` characters of them: names and ids have no length limit, and a
count alone let a stuck browser hold 200 MB of long ones). When a browser reads
too slowly (or not at all) and its queue is full, the queue is emptied and one ``ui_resync``
message put in its place: that browser skips to the latest state by fetching the snapshot
again, instead of working through a backlog it can never catch up with. Putting on a queue
never waits, so a slow or dead browser slows neither the feed, the other browsers nor any
machine.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from smc.runtime.history import HistoryCursor, follow_history_lines
from smc.runtime.monitor import follow_lines
from smc.runtime.store import HistoryLine, Store, StoreError

_log = logging.getLogger("smc.ui")

#: Messages a browser may fall behind by before it is told to fetch the snapshot again.
DEFAULT_QUEUE_SIZE = 2000
#: Characters of messages a browser may fall behind by, likewise (4 MiB of JSON, most of it
#: ASCII: 2,000 messages of 2,000 characters).
DEFAULT_QUEUE_CHARS = 4 << 20
#: How often the feed reads the history for new rows when nothing wakes it (SQLite; on
#: PostgreSQL the NOTIFY on history inserts wakes it at once, and this is only the fallback).
#: 100 ms: a transition reaches the page at most 100 ms (50 on average) after it commits,
#: inside issue 15's 250 ms at p99. Each read's fixed cost and each browser's share (a busy
#: machine's last move per read) halve against 50 ms: on a slow 2-core machine the server
#: and 5 clients took 3.6 % and 2.5 % of a core instead of 6.0 % and 4.5 % (docs/monitor.md).
HISTORY_POLL_SECONDS = 0.1
#: How long the feed waits before following the history again after a database error.
HISTORY_RETRY_SECONDS = 1.0
#: Activity records (errors, unhandled and refused events, failures) kept for a new page.
ACTIVITY_KEPT = 500
#: Monitor record kinds shown in the activity log.
ACTIVITY_KINDS = frozenset(
    {
        "error",
        "unhandled_event",
        "invalid_event",
        "job_failed",
        "job_retried",
        "event_dropped",
        "activity_log",
        "machine_started",
        "machine_stopped",
    }
)
#: Record kinds that show where a machine is: what the feed keeps per machine starts with one.
MOVING_KINDS = frozenset({"transition", "machine_started", "job_claimed"})
#: Compact JSON of a record (one encoder for every row: ``json.dumps`` with options builds one
#: per call).
_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode
#: The message that replaces a full queue.
RESYNC_MESSAGE = json.dumps({"kind": "ui_resync"})


#: Records after which a machine no longer holds the job: done, failed for good, back to
#: pending for another attempt (``job_retried``) or given back (``job_released``).
JOB_ENDS = ("job_completed", "job_failed", "job_retried", "job_released")


def _moves(line: HistoryLine) -> dict[str, Any]:
    """What :meth:`LiveFeed._apply` reads of a history row's record (``history_record``'s
    keys): at 10,000 rows a second the whole record would be built for nothing. An activity
    row's is whole (kept for a new page's activity log, with its error and trace)."""
    if line.kind in ACTIVITY_KINDS:
        whole: dict[str, Any] = json.loads(line.record)
        return whole
    record: dict[str, Any] = {
        "kind": line.kind,
        "machine": line.machine,
        "from": line.from_state,
        "event": line.event,
        "to": line.to_state,
        "job_id": line.job_id,
        "source": line.source,
        "ts": line.ts,
    }
    if line.configuration is not None:
        record["configuration"] = json.loads(line.configuration)
    return record


#: Records that say where a machine is now, or which job it holds: of several of one
#: machine in one batch, the browsers get the last (``superseded_dropped``).
_SUPERSEDED_BY_NEXT = {
    "transition": frozenset({"transition"}),
    "job_claimed": frozenset({"job_claimed"}),
    "job_completed": frozenset({"job_claimed"}),
}


def superseded_dropped(
    batch: Sequence[tuple[str, dict[str, Any]]],
) -> list[tuple[str, dict[str, Any]]]:
    """``batch`` without the records a later one of the same machine in it makes moot, in
    order: a transition followed by another (the page shows where a machine is, not each
    step: a worker running 2,000 jobs a second makes 6,000), a job's claim or completion
    followed by the machine's next claim. The feed has applied every record itself
    (``MachineLive``), so a new page's snapshot is exact; a browser skips only steps it
    would have drawn over within the same read (100 ms). Everything else passes: starts and stops,
    errors, failures, events, the moves of a workflow's tasks (``source``: the activity log
    lists each)."""
    later: set[tuple[str, str]] = set()
    kept: list[tuple[str, dict[str, Any]]] = []
    for line, record in reversed(batch):
        kind, machine = record.get("kind"), record.get("machine")
        superseded_by = _SUPERSEDED_BY_NEXT.get(kind) if isinstance(kind, str) else None
        if superseded_by is None or not isinstance(machine, str) or record.get("source"):
            kept.append((line, record))
            continue
        if any((machine, later_kind) in later for later_kind in superseded_by):
            continue
        later.add((machine, kind))
        kept.append((line, record))
    kept.reverse()
    return kept


class Subscriber:
    """One browser's queue of JSON-encoded messages: a deque, and a flag its stream awaits.
    (An ``asyncio.Queue`` costs a put and a get, each with its waiter bookkeeping, for every
    message and every browser: at 2,000 transitions a second and 5 browsers, 20,000 of each
    a second in the server's event loop; docs/monitor.md, "Scale".)"""

    def __init__(self, size: int, chars: int = DEFAULT_QUEUE_CHARS) -> None:
        self._messages: collections.deque[str] = collections.deque()
        self._size = size
        self._chars_limit = chars
        #: The characters of the messages queued.
        self._chars = 0
        self._ready = asyncio.Event()
        #: How many times this subscriber's queue overflowed and was reset.
        self.resyncs = 0
        #: Set when the server stops: the stream sends what is queued, then ends.
        self.closed = False

    def close(self) -> None:
        """End the stream once what is queued is sent (the server is stopping: a stream left
        open would be cancelled in the middle, with an error for each browser)."""
        self.closed = True
        self._ready.set()

    def offer(self, message: str) -> None:
        """Queue ``message`` without waiting; a full queue is replaced, ``message`` with it, by
        one resync message (the browser then fetches the whole state again)."""
        messages = self._messages
        if len(messages) >= self._size or self._chars + len(message) > self._chars_limit:
            messages.clear()
            self._chars = 0
            message = RESYNC_MESSAGE
            self.resyncs += 1
        messages.append(message)
        self._chars += len(message)
        self._ready.set()

    def drain(self, limit: int) -> list[str]:
        """Up to ``limit`` messages already queued, without waiting."""
        messages = self._messages
        drained = [messages.popleft() for _ in range(min(limit, len(messages)))]
        self._chars -= sum(map(len, drained))
        return drained

    def offer_all(self, batch: list[str]) -> None:
        """:meth:`offer` each of ``batch`` in order (one extend while they fit)."""
        messages = self._messages
        chars = sum(map(len, batch))
        if len(messages) + len(batch) > self._size or self._chars + chars > self._chars_limit:
            for message in batch:
                self.offer(message)
            return
        messages.extend(batch)
        self._chars += chars
        if batch:
            self._ready.set()

    async def wait(self, timeout: float) -> bool:
        """Until a message is queued (True) or ``timeout`` seconds pass without one, or the
        subscriber is closed (False)."""
        if self._messages:
            return True
        if self.closed:
            return False
        self._ready.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
        return bool(self._messages)


class MachineLive:
    """What the feed has seen of one machine since the server started."""

    __slots__ = ("configuration", "job_id", "last_transition", "since", "state")

    def __init__(self) -> None:
        self.state: str | None = None
        self.since: float | None = None
        self.last_transition: dict[str, Any] | None = None
        self.job_id: str | None = None
        self.configuration: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "since": self.since,
            "last_transition": self.last_transition,
            "job_id": self.job_id,
            "configuration": self.configuration,
        }


class LiveFeed:
    """Follows the store's history (``history``: opens a store of the feed's own, in its
    thread) or else the monitor sockets of ``socket_dir`` (None for both: follows nothing),
    and fans the records out to :meth:`subscribe`\\ d queues. :meth:`publish` adds
    server-made messages (registry and queue snapshots) to the same stream."""

    def __init__(
        self,
        socket_dir: Path | None,
        *,
        history: Callable[[], Store] | None = None,
        poll_seconds: float = HISTORY_POLL_SECONDS,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        queue_chars: int = DEFAULT_QUEUE_CHARS,
    ) -> None:
        self._socket_dir = socket_dir
        self._history = history
        self._poll_seconds = poll_seconds
        self._queue_size = queue_size
        self._queue_chars = queue_chars
        self._subscribers: set[Subscriber] = set()
        self._closing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: collections.deque[tuple[str, dict[str, Any]]] = collections.deque()
        self._flush_scheduled = False
        self._lock = threading.Lock()
        self.machines: dict[str, MachineLive] = {}
        self.activity: collections.deque[dict[str, Any]] = collections.deque(maxlen=ACTIVITY_KEPT)
        #: Records received from the history or the monitor sockets.
        self.received = 0
        #: Of those, the ones passed on to the browsers (``superseded_dropped``).
        self.sent = 0

    @property
    def source(self) -> str | None:
        """Where the records come from: ``history``, ``sockets`` or None (nowhere)."""
        if self._history is not None:
            return "history"
        return "sockets" if self._socket_dir is not None else None

    # --- lifecycle (in the event loop) ---

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.source is None:
            return
        target = self._follow_history if self._history is not None else self._follow
        self._thread = threading.Thread(target=target, name="smc-ui-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    # --- the reading thread ---

    def _hand(self, line: str, record: dict[str, Any]) -> bool:
        """Queue one record for the loop (one wake-up for a whole batch); False when the loop
        is gone (the server is stopping)."""
        return self._hand_all([(line, record)])

    def _hand_all(self, records: list[tuple[str, dict[str, Any]]]) -> bool:
        """:meth:`_hand` each of ``records``, in order, under one lock."""
        with self._lock:
            self._pending.extend(records)
            if self._flush_scheduled:
                return True
            self._flush_scheduled = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(self._flush)
        except RuntimeError:  # the loop closed meanwhile: the server is stopping
            return False
        return True

    def _follow(self) -> None:
        assert self._socket_dir is not None

        def lost(machine: str) -> None:
            # The machine stopped, or cut the feed off for falling behind (on a busy host,
            # where ``smc ui`` runs niced, it can): records may be missing, so the browsers
            # fetch the snapshot again and what the feed kept of the machine is dropped
            # (``_apply``), the registry's row standing in until its next record.
            record = {"kind": "ui_resync", "machine": machine}
            self._hand(_encode(record), record)

        try:
            for line, record in follow_lines(self._socket_dir, stop=self._stop, on_disconnect=lost):
                if not self._hand(line, record):
                    return
        except Exception:  # pragma: no cover - a bug; the page then shows the registry only
            _log.exception("smc ui: the monitor feed stopped")

    def _follow_history(self) -> None:
        """Every history row committed from the server's start on, as a monitor record
        (``history_record``: with the row's ``id`` and ``trace_id``). A database error is
        told to the browsers (``ui_error``) and the feed follows on from the last row it
        passed on once the database answers again."""
        assert self._history is not None
        store: Store | None = None
        # Where the feed is, kept across database errors with the ids of a gap still waited
        # for (PostgreSQL ids commit out of order): a row whose id was a gap when the
        # connection dropped is passed on when it commits (from the last id passed on alone,
        # it was skipped for ever, as it was by ``smc monitor``).
        cursor: HistoryCursor[HistoryLine] | None = None
        try:
            while not self._stop.is_set():
                try:
                    if store is None:
                        store = self._history()
                    if cursor is None:
                        cursor = HistoryCursor(store.last_history_id())
                    for lines in follow_history_lines(
                        store,
                        poll_seconds=self._poll_seconds,
                        stop=self._stop.is_set,
                        latest=True,
                        cursor=cursor,
                    ):
                        # The database made each record's JSON (every control character
                        # escaped: no raw line break can end the server-sent event's line);
                        # what ``_apply`` keeps of the machine is taken from the columns.
                        if not self._hand_all([(line.record, _moves(line)) for line in lines]):
                            return
                except StoreError as error:
                    _log.warning("smc ui: following the history: %s", error)
                    message = {"kind": "ui_error", "message": f"history: {error}"}
                    if not self._hand(json.dumps(message), message):
                        return
                    if store is not None:
                        with contextlib.suppress(Exception):
                            store.close()
                        store = None
                    self._stop.wait(HISTORY_RETRY_SECONDS)
        except Exception:  # pragma: no cover - a bug; the page then shows the registry only
            _log.exception("smc ui: the history feed stopped")
        finally:
            if store is not None:
                with contextlib.suppress(Exception):
                    store.close()

    # --- fan-out (in the event loop) ---

    def _flush(self) -> None:
        with self._lock:
            batch = list(self._pending)
            self._pending.clear()
            self._flush_scheduled = False
        messages: list[str] = []
        for _line, record in batch:
            self._apply(record)
        for line, record in superseded_dropped(batch):
            # The machine's own line is the message (one encoding fewer per record), unless it
            # holds a carriage return, which would end a server-sent event's line early: only a
            # line no smc machine writes (its JSON escapes control characters in strings).
            messages.append(line if "\r" not in line else json.dumps(record, default=str))
        for subscriber in self._subscribers:
            subscriber.offer_all(messages)
        self.received += len(batch)
        self.sent += len(messages)

    def seed(self, records: Sequence[dict[str, Any]]) -> None:
        """What the history says of each machine before the server started, oldest first
        (``transition`` and ``machine_started`` records): a machine that has not moved since
        shows its last transition, the time since it entered its state and a statechart's
        every active state, as one that moved does. Not passed on, and not activity: the
        page reads those from the database."""
        for record in records:
            self._apply(record, activity=False)

    def _apply(self, record: dict[str, Any], *, activity: bool = True) -> None:
        name = record.get("machine")
        if not isinstance(name, str):
            return
        kind = record.get("kind")
        if kind == "ui_resync":
            self.machines.pop(name, None)
            return
        if activity and kind in ACTIVITY_KINDS:
            self.activity.append(record)
        live = self.machines.get(name)
        if live is None:
            if kind not in MOVING_KINDS:
                # A history row about a job or an event: its ``machine`` may be a job's type
                # or a machine not started yet; nothing of a machine to keep.
                return
            live = self.machines[name] = MachineLive()
        ts = record.get("ts") if isinstance(record.get("ts"), int | float) else time.time()
        if kind in ("transition", "machine_started"):
            to = record.get("to")
            configuration = record.get("configuration")
            active = (
                [str(item) for item in configuration] if isinstance(configuration, list) else None
            )
            if isinstance(to, str):
                # A move into another state starts the time in it, even one back into the
                # state last seen: the feed may not see each step (superseded_dropped). A
                # loop (no_jobs) is no move: the first one seen says nothing of when the
                # machine entered its state (the registry's time for it stands). A parallel
                # chart's region moving is a move (from and to are the parallel state): its
                # time in state is the time since its configuration last changed.
                moved = kind == "machine_started" or record.get("from") != to
                entered = live.state is not None and to != live.state
                region_moved = active is not None and live.configuration not in (None, active)
                if moved or entered or region_moved:
                    live.since = ts
                live.state = to
            if kind == "machine_started":
                # A new run: the last run's move, job and configuration are not this one's
                # (a restarted machine once showed its old run's last transition).
                live.last_transition = live.job_id = live.configuration = None
            if active is not None:
                live.configuration = active
            if kind == "transition":
                live.last_transition = {
                    "from": record.get("from"),
                    "event": record.get("event"),
                    "to": to,
                    "ts": ts,
                }
        elif kind == "job_claimed":
            job_id = record.get("job_id")
            live.job_id = str(job_id) if job_id is not None else None
        elif kind in JOB_ENDS and live.job_id == record.get("job_id"):
            live.job_id = None

    def publish(self, message: dict[str, Any]) -> None:
        """Send a server-made message (``kind`` starting ``ui_``) to every subscriber."""
        encoded = json.dumps(message, separators=(",", ":"), default=str)
        for subscriber in self._subscribers:
            subscriber.offer(encoded)

    def subscribe(self) -> Subscriber:
        subscriber = Subscriber(self._queue_size, self._queue_chars)
        if self._closing:
            subscriber.close()
        self._subscribers.add(subscriber)
        return subscriber

    def close_subscribers(self) -> None:
        """End every stream, and every one opened from now on (in the loop's thread)."""
        self._closing = True
        for subscriber in list(self._subscribers):
            subscriber.close()

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
