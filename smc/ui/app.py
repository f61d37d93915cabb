"""The web monitor's ASGI application (Starlette): the page, its JSON API and the live stream.

``create_app(open_store, ...)`` builds it; ``smc ui`` serves it with uvicorn
(``smc.ui.server``). Routes:

- ``GET /`` the page; ``GET /static/...`` its script and style sheet (package data);
- ``GET /api/state`` every machine (the registry, plus what the live feed saw: state, since
  when, last transition, current job), the machine types, the queue counts;
- ``GET /api/types/{key}`` one machine type with its SVG diagram;
- ``GET /api/jobs?status=&type=`` the queue; ``GET /api/jobs/{id}`` one job and its history;
  ``POST /api/jobs/{id}/retry`` and ``/cancel``;
- ``GET /api/activity`` errors, unhandled and refused events, failures and retries;
- ``GET /api/trace/{id}`` one trace's history across machines;
- ``GET /api/workflows`` workflow runs, newest first, with their task counts by state;
  ``GET /api/workflows/{run_id}`` one run, its tasks and its DAG as SVG;
  ``POST /api/workflows/{run_id}/cancel`` asks its scheduler to cancel it (``smc.ui.workflows``);
- ``GET /api/stream`` server-sent events: JSON arrays of monitor records (from the durable
  history, or from the machines' monitor sockets: ``smc.ui.feed``) and ``ui_*`` messages
  (``ui_machines``, ``ui_queue``, ``ui_history``, ``ui_resync``, ``ui_error``).

Every store call runs in one worker thread of the app's own (the store objects are
synchronous and not shared between threads), so the event loop that serves the browsers never
waits on the database. The durable history (``store.history``) is used when the store has it;
without it the activity log holds what the live feed saw since the server started, and job
and trace histories say they are not kept.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import math
import os
import time
from collections.abc import AsyncIterator, Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from smc.runtime.history import history_ends, history_record
from smc.runtime.store import Job, JobRefusedError, Store, StoreError
from smc.ui.diagrams import DiagramCache, DiagramUnavailable, MachineType
from smc.ui.feed import LiveFeed
from smc.ui.security import CSRF_COOKIE, LOOPBACK_HOSTS, Guard, new_csrf_value
from smc.ui.workflows import (
    RUN_LIST_LIMIT,
    TASK_STATES,
    RunDiagrams,
    job_types,
    run_summary,
    task_dict,
)
from smc.workflow.diagram import STATE_COLOURS

T = TypeVar("T")

#: History kinds shown in the activity log.
ACTIVITY_HISTORY_KINDS = [
    "error",
    "event_dropped",
    "job_failed",
    "job_retried",
    "machine_started",
    "machine_stopped",
]
#: The activity log's rows read when the page loads: the newest of the last day (the page
#: shows the newest 300 of them and what comes live).
ACTIVITY_LIMIT = 1000
#: How far back the activity log reads when the page loads.
ACTIVITY_SECONDS = 24 * 3600.0
#: History rows read at the start for where the machines are (``LiveFeed.seed``): machines
#: whose last transition is older than that many rows show none until they move. One read:
#: 60 ms for 10,000 rows of a SQLite history, made into records (docs/monitor.md).
SEED_ROWS = 10_000
#: Ids looked through below the seed, in one scan, for the registry's machines it does not show
#: (a machine idle while others filled the newest rows): 74 ms for a million rows on SQLite
#: (docs/monitor.md). A machine idle for longer shows no last transition until it moves.
SEED_SCAN_ROWS = 1_000_000
#: How often the registry, the queue counts and the history are read for changes.
POLL_INTERVAL = 1.0
#: At most this share of the server's time goes to counting the finished jobs. Counting them
#: walks every job the store keeps until they are pruned (53 ms a count with a million kept,
#: on a 2-core machine: 5 % of a core once a second, and as much again for each browser
#: listing the jobs), so the whole count is read again only once the time since the last
#: began is that many times what it took, and the open jobs' counts (a seek to each of two
#: statuses) fill in meanwhile (``Monitor.queue_counts``).
FULL_COUNTS_SHARE = 0.01
#: Most messages sent to a browser in one server-sent event.
BATCH_LIMIT = 500
#: A comment line on an idle stream this often, so proxies and browsers keep it open and a
#: vanished browser is noticed.
KEEPALIVE_SECONDS = 15.0
JOB_LIST_LIMIT = 200
#: A job's story and a trace the page gets at most: their first and last halves when longer
#: (``history_ends``).
STORY_LIMIT = 1000
TRACE_LIMIT = 5000
#: Machine fields whose change alone does not make a ``ui_machines`` message.
UNCOMPARED = ("heartbeat_age", "heartbeat_at", "updated_at", "live")


#: The live feed's sources (``smc ui --feed``): ``auto`` is the history where the store keeps
#: it, else the sockets.
FEED_CHOICES = ("auto", "history", "sockets")


def no_history_feed(store: Store) -> str:
    """Why ``store`` gives no history feed (:func:`keeps_history` is false), in words."""
    if not getattr(store, "history_enabled", False):
        return "SMC_HISTORY is off in this process (it follows the history it would keep)"
    return "this database keeps no history"


def keeps_history(store: Store) -> bool:
    """Whether this store records the durable history and can read it: not with
    ``SMC_HISTORY=off`` (``history_enabled`` false), nor a store without ``history``."""
    if not getattr(store, "history_enabled", False) or history_of(store) is None:
        return False
    try:
        store.last_history_id()
    except StoreError:
        return False
    return True


def history_of(store: Store) -> Callable[..., list[Any]] | None:
    """The store's ``history`` method when it keeps the durable history (a store from before
    it, or one without it, has none: the page then says what it cannot show)."""
    found = getattr(store, "history", None)
    return found if callable(found) else None


class StoreThread:
    """A store opened at its first call and used on one thread of its own: a call waits there
    for the database without blocking the event loop, and calls run one at a time."""

    def __init__(self, open_store: Callable[[], Store], name: str) -> None:
        self._open_store = open_store
        #: The open store (None: not opened yet, or closed: the next call opens one).
        self.store: Store | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=name)

    def _call(self, call: Callable[[Store], T]) -> T:
        if self.store is None:
            self.store = self._open_store()
        return call(self.store)

    async def run(self, call: Callable[[Store], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, call)

    async def close(self) -> None:
        """Close the store, in its thread, after the calls already waiting."""

        def close() -> None:
            store, self.store = self.store, None
            if store is not None:
                store.close()

        await asyncio.get_running_loop().run_in_executor(self._executor, close)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False)


class Monitor:
    """The state behind the app: the store (in its own thread), the feed, the diagrams."""

    def __init__(
        self,
        open_store: Callable[[], Store],
        socket_dir: Path | None,
        *,
        poll_interval: float = POLL_INTERVAL,
        queue_size: int | None = None,
        feed: str = "auto",
        history_poll: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if feed not in FEED_CHOICES:
            raise ValueError(f"feed must be one of {FEED_CHOICES}, not {feed!r}")
        self._open_store = open_store
        self._reader = StoreThread(open_store, "smc-ui-db")
        # The buttons' writes (retry, cancel) run on a store and a thread of their own: a
        # write waits for the database's write lock (up to the store's busy timeout) while
        # the workers hold it, and the page's reads must not queue behind it.
        self._writer = StoreThread(open_store, "smc-ui-db-write")
        self._socket_dir = socket_dir
        self._feed_choice = feed
        self._feed_options: dict[str, Any] = {}
        if queue_size is not None:
            self._feed_options["queue_size"] = queue_size
        if history_poll is not None:
            self._feed_options["poll_seconds"] = history_poll
        # Replaced at start, once the store says whether it keeps the history.
        self.feed = LiveFeed(None, **self._feed_options)
        self.diagrams = DiagramCache()
        self.poll_interval = poll_interval
        self._poller: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Why the database file is gone, once the page was told (None: it is there).
        self._gone: str | None = None
        #: The SQLite file's path (None: a store without one).
        self._path: str | None = None
        #: Each machine's status at the last poll (a death is a change from running).
        self._statuses: dict[str, str] = {}
        self._last_machines: Any = None
        self._last_queue: Any = None
        self._history_after: int | None = None
        self._clock = clock
        #: The last whole count of the queue, and when the next one is due (``_clock``;
        #: minus infinity: at the next read).
        self._full_counts: dict[str, int] = {}
        self._full_counts_due = -math.inf
        self._history_since = time.time()
        #: Called when the database file was replaced: caches of the old file's data to clear.
        self.on_replaced: list[Callable[[], None]] = []

    # --- store access ---

    async def db(self, call: Callable[[Store], T]) -> T:
        """``call`` on the reading store, in its thread."""
        return await self._reader.run(call)

    async def db_write(self, call: Callable[[Store], T]) -> T:
        """``call`` on the writing store, in its own thread (reads go on meanwhile). Refused
        (``StoreError``: a 503 that says why) while the database file is deleted or replaced
        and the server has not yet opened the new one: opening the writing store would make a
        new file, and an open one writes into a file nobody reads."""
        path = self._path
        if path is not None and not os.path.lexists(path):
            raise StoreError(f"the database file {path} was deleted: nothing was changed")

        def guarded(store: Store) -> T:
            reason = store.replaced()
            if reason is not None:
                raise StoreError(f"{reason}: nothing was changed")
            return call(store)

        return await self._writer.run(guarded)

    @property
    def has_history(self) -> bool:
        store = self._reader.store
        return store is not None and history_of(store) is not None

    # --- lifecycle ---

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        # Opens the store now: a bad --db fails at start.
        keeps = await self.db(keeps_history)
        self._path = await self.db(lambda store: getattr(store, "path", None))
        if self._feed_choice == "history" and not keeps:
            raise StoreError(f"no history feed: {await self.db(no_history_feed)}")
        self.feed = self._new_feed(keeps)
        self.feed.seed(await self.db(_history_seed))
        self.feed.start()
        self._poller = asyncio.create_task(self._poll())

    def _new_feed(self, keeps: bool) -> LiveFeed:
        if keeps and self._feed_choice != "sockets":
            return LiveFeed(None, history=self._open_store, **self._feed_options)
        return LiveFeed(self._socket_dir, **self._feed_options)

    def close_streams(self) -> None:
        """End every browser's stream, from any thread (a signal handler's included): the
        server is stopping."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.feed.close_subscribers)

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        self.feed.stop()
        for thread in (self._reader, self._writer):
            await thread.close()
            thread.shutdown()

    async def _poll(self) -> None:
        while True:
            try:
                await self._poll_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database is away: say so, try again
                self.feed.publish({"kind": "ui_error", "message": f"database: {error}"})
            await asyncio.sleep(self.poll_interval)

    async def _poll_once(self) -> None:
        if await self._database_replaced():
            return
        machines = await self.machines()
        comparable = [
            {k: v for k, v in m.items() if k not in ("heartbeat_age", "heartbeat_at", "live")}
            for m in machines
        ]
        if comparable != self._last_machines:
            self._last_machines = comparable
            self.feed.publish({"kind": "ui_machines", "machines": machines})
        self._note_deaths(machines)
        counts = await self.queue_counts()
        if counts != self._last_queue:
            self._last_queue = counts
            self.feed.publish({"kind": "ui_queue", "counts": counts})
        if self.has_history and self.feed.source != "history":
            # Following the sockets, the activity kinds of the history come from here (the
            # history feed carries every row itself).
            rows = await self.db(self._new_history)
            if rows:
                self.feed.publish({"kind": "ui_history", "rows": rows})

    def _note_deaths(self, machines: list[dict[str, Any]]) -> None:
        """A machine seen running and now dead (its process gone, or its heartbeat stale)
        goes to the activity log: a death writes no history row, the process being gone."""
        statuses = {m["name"]: m["status"] for m in machines}
        for machine in machines:
            if machine["status"] == "dead" and self._statuses.get(machine["name"]) == "running":
                self.feed.publish({"kind": "ui_machine_dead", **machine_death(machine)})
        self._statuses = statuses

    async def _database_replaced(self) -> bool:
        """Whether the SQLite file this server opened was deleted or replaced (True: nothing
        else is read this poll). Deleted: the page is told once, and the server waits, never
        creating the file itself. Replaced (a file is there again): the page is told, the
        server opens the new file — its stores, its feed — and ends the browsers' streams,
        which reconnect to the new feed and read everything again."""
        reason = await self.db(lambda store: store.replaced())
        if reason is None:
            return False
        path = await self.db(lambda store: getattr(store, "path", None))
        if path is not None and not os.path.lexists(path):
            if self._gone != reason:
                self._gone = reason
                self.feed.publish(
                    {"kind": "ui_error", "message": f"{reason}: waiting for a new one"}
                )
            return True
        loop = asyncio.get_running_loop()
        try:
            # The stores open only a database that is there (``smc ui`` makes none): a file
            # a worker has made but not yet given its tables is taken at a later poll, the
            # old file's stores kept meanwhile.
            await loop.run_in_executor(None, lambda: self._open_store().close())
        except StoreError as error:
            if self._gone != str(error):
                self._gone = str(error)
                self.feed.publish({"kind": "ui_error", "message": f"{reason}: {error}"})
            return True
        self._gone = None
        old = self.feed
        old.publish({"kind": "ui_error", "message": f"{reason}: showing the new one"})

        # Closed in their own threads: the next call there opens the new file.
        await self._reader.close()
        await self._writer.close()
        self._last_machines = self._last_queue = self._history_after = None
        self._statuses = {}
        self._history_since = time.time()
        self._full_counts_due = -math.inf
        for forget in self.on_replaced:
            forget()
        self.feed = self._new_feed(await self.db(keeps_history))
        self.feed.seed(await self.db(_history_seed))
        self.feed.start()
        old.close_subscribers()
        await asyncio.get_running_loop().run_in_executor(None, old.stop)
        return True

    def _new_history(self, store: Store) -> list[dict[str, Any]]:
        history = history_of(store)
        if history is None:
            return []
        if self._history_after is None:
            rows = history(since=self._history_since, kinds=ACTIVITY_HISTORY_KINDS, limit=1000)
        else:
            rows = history(after_id=self._history_after, kinds=ACTIVITY_HISTORY_KINDS, limit=1000)
        if rows:
            self._history_after = max(int(row.id) for row in rows)
        return [row.to_dict() for row in rows]

    # --- what the page reads ---

    async def queue_counts(self) -> dict[str, int]:
        """The number of jobs in each status: the open ones counted now, the finished ones as
        of the last whole count, which runs again once :data:`FULL_COUNTS_SHARE` of the time
        since it began has gone to it (on a small store, every call)."""
        return await self.db(self._queue_counts)

    def _queue_counts(self, store: Store) -> dict[str, int]:
        # In the store's one thread: the cache needs no lock.
        started = self._clock()
        if started >= self._full_counts_due:
            counts = store.queue_counts()
            took = self._clock() - started
            self._full_counts, self._full_counts_due = counts, started + took / FULL_COUNTS_SHARE
            return dict(counts)
        return {**self._full_counts, **store.queue_counts(finished=False)}

    def moved_job(self, done: bool) -> bool:
        """After a retry or a cancel of this server's (in the store's thread): when ``done``,
        the next count is a whole one, so that the page shows the job's move at once."""
        if done:
            self._full_counts_due = -math.inf
        return done

    async def machines(self) -> list[dict[str, Any]]:
        rows, processing = await self.db(
            lambda store: (
                store.list_machines(),
                store.list_jobs("processing", limit=1000, with_data=False),
            )
        )
        job_of = {job.claimed_by: job.id for job in processing if job.claimed_by}
        out = []
        for row in rows:
            item = row.to_dict()
            item["type"] = self._type_key(row.config_path)
            live = self.feed.machines.get(row.name)
            item["live"] = live.to_dict() if live is not None else None
            item["job_id"] = (live.job_id if live is not None else None) or job_of.get(row.name)
            out.append(item)
        return out

    def _type_key(self, config_path: str | None) -> str | None:
        if not config_path:
            return None
        from smc.ui.diagrams import type_key

        key = type_key(config_path)
        self.diagrams.paths_by_key.setdefault(key, config_path)
        return key

    async def machine_type(self, key: str) -> MachineType | None:
        path = self.diagrams.paths_by_key.get(key)
        if path is None:
            return None
        loop = asyncio.get_running_loop()
        # Checking the file and running dot take tens of milliseconds: off the loop, and not
        # in the store's thread either.
        return await loop.run_in_executor(None, self.diagrams.get, path)


def job_dict(job: Job, *, data: bool) -> dict[str, Any]:
    """A job as the page gets it: never its claim token (the fencing token a worker's
    completion must present), and without its data and result (``data=False``: each can be
    megabytes) for the list and the buttons' answers, which show neither."""
    item = job.to_dict()
    del item["claim_token"]
    if not data:
        del item["data"], item["result"]
    return item


def machine_death(machine: dict[str, Any]) -> dict[str, Any]:
    """The activity log's entry for a dead machine of the registry (``MachineRow.to_dict``),
    stamped when it was last heard from: the same whether the server's poll saw it die or the
    page opened after, so the page shows it once."""
    heard = machine["heartbeat_at"] or machine["updated_at"] or machine["started_at"]
    return {
        "machine": machine["name"],
        "ts": heard,
        "state": machine["state"],
        "message": f"pid {machine['pid']} on {machine['host']} stopped answering in "
        f"{machine['state']} (last heard from then)",
    }


def _history_seed(store: Store) -> list[dict[str, Any]]:
    """The newest :data:`SEED_ROWS` transitions and starts, oldest first, as monitor records
    (none from a store without history): where each machine was when the server started.
    A machine of the registry that is not among them has its last one found in the
    :data:`SEED_SCAN_ROWS` ids below them."""
    history = history_of(store)
    if history is None:
        return []
    kinds = ["transition", "machine_started"]
    rows = history(kinds=kinds, limit=SEED_ROWS, newest=True)
    if len(rows) == SEED_ROWS:
        shown = {row.machine for row in rows}
        missing = [m.name for m in store.list_machines() if m.name not in shown]
        if missing:
            below = int(rows[0].id)
            rows = store.last_history_rows(missing, kinds, below, SEED_SCAN_ROWS) + rows
    return [history_record(row) for row in rows]


def _json(data: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status_code)


def _page() -> str:
    return (resources.files("smc.ui") / "static" / "index.html").read_text(encoding="utf-8")


def create_app(
    open_store: Callable[[], Store],
    *,
    socket_dir: Path | None,
    token: str | None = None,
    loopback_only: bool = True,
    poll_interval: float = POLL_INTERVAL,
    queue_size: int | None = None,
    feed: str = "auto",
    history_poll: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    bound_host: str | None = None,
) -> Starlette:
    """The web monitor. ``open_store`` is called once, in the app's store thread;
    ``socket_dir`` is where the machines' monitor sockets are (``monitor_dir(store)``), None
    to follow none. ``token``: required on every request when given. ``loopback_only``:
    accept only requests addressed to 127.0.0.1/localhost (the default bind; pass False when
    serving on another address, which needs a token). ``feed``: where the live records come
    from (:data:`FEED_CHOICES`; ``smc.ui.feed``), ``history_poll`` how often the history is
    read when nothing wakes the feed (None: ``HISTORY_POLL_SECONDS``). ``clock`` times the
    whole counts of the queue (:data:`FULL_COUNTS_SHARE`). ``bound_host``: the address the
    server listens on, a name requests may use besides the loopback names (127.0.0.2)."""
    if not loopback_only and token is None:
        raise ValueError("a server reachable from other hosts needs a token")
    monitor = Monitor(
        open_store,
        socket_dir,
        poll_interval=poll_interval,
        queue_size=queue_size,
        feed=feed,
        history_poll=history_poll,
        clock=clock,
    )

    async def index(request: Request) -> Response:
        response = HTMLResponse(_page())
        if not request.cookies.get(CSRF_COOKIE):
            response.set_cookie(
                CSRF_COOKIE, new_csrf_value(), httponly=False, samesite="strict", path="/"
            )
        return response

    async def state(request: Request) -> Response:
        machines = await monitor.machines()
        keys = {m["type"] for m in machines if m["type"]}
        types: dict[str, Any] = {}
        for key in sorted(keys):
            try:
                machine_type = await monitor.machine_type(key)
            except DiagramUnavailable as error:
                types[key] = {"key": key, "error": str(error)}
                continue
            if machine_type is not None:
                summary = machine_type.to_dict()
                summary.pop("svg")
                types[key] = summary
        counts = await monitor.queue_counts()
        return _json(
            {
                "now": time.time(),
                "machines": machines,
                "types": types,
                "queue": counts,
                "history": monitor.has_history,
                "feed": monitor.feed.source,
            }
        )

    async def machine_type(request: Request) -> Response:
        key = request.path_params["key"]
        try:
            found = await monitor.machine_type(key)
        except DiagramUnavailable as error:
            return _json({"key": key, "error": str(error)}, 200)
        if found is None:
            return _json({"error": "unknown machine type"}, 404)
        return _json(found.to_dict())

    async def jobs(request: Request) -> Response:
        status = request.query_params.get("status") or None
        job_type = request.query_params.get("type") or None
        from smc.runtime.store import JOB_STATUSES

        if status is not None and status not in JOB_STATUSES:
            return _json({"error": "unknown status"}, 400)
        found = await monitor.db(
            lambda store: store.list_jobs(
                status, limit=JOB_LIST_LIMIT, job_type=job_type, with_data=False
            )
        )
        counts = await monitor.queue_counts()
        return _json({"jobs": [job_dict(job, data=False) for job in found], "counts": counts})

    async def job(request: Request) -> Response:
        job_id = request.path_params["job_id"]

        def read(store: Store) -> tuple[Any, Any, bool]:
            found = store.get_job(job_id)
            history = history_of(store)
            if history is None:
                return found, None, False
            rows, cut = history_ends(history, STORY_LIMIT, job_id=job_id)
            return found, [r.to_dict() for r in rows], cut

        found, rows, cut = await monitor.db(read)
        if found is None:
            return _json({"error": "unknown job"}, 404)
        data = request.query_params.get("data") != "0"
        return _json({"job": job_dict(found, data=data), "history": rows, "cut": cut})

    async def job_action(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        action = request.path_params["action"]
        try:
            if action == "retry":
                done = await monitor.db_write(
                    lambda store: monitor.moved_job(store.retry_job(job_id))
                )
                refusal = "only a failed or cancelled job can be retried"
            elif action == "cancel":
                done = await monitor.db_write(
                    lambda store: monitor.moved_job(store.cancel_job(job_id))
                )
                refusal = "only a pending job can be cancelled"
            else:
                return _json({"error": "unknown action"}, 404)
        except JobRefusedError as error:
            # A rule of the queue, not a database that cannot be used (503).
            done, refusal = False, str(error)
        found = await monitor.db(lambda store: store.get_job(job_id))
        if found is None:
            return _json({"error": "unknown job"}, 404)
        body = {"ok": done, "job": job_dict(found, data=False)}
        if not done:
            body["error"] = refusal
        return _json(body, 200 if done else 409)

    async def activity(request: Request) -> Response:
        since = time.time() - ACTIVITY_SECONDS

        def read(store: Store) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]]]:
            # A dead process writes no history row: the registry's dead machines of the day
            # stand for them (their deaths, seen live, are ``ui_machine_dead`` messages).
            dead = [machine_death(m.to_dict()) for m in store.list_machines() if m.status == "dead"]
            deaths = [death for death in dead if (death["ts"] or 0) >= since]
            history = history_of(store)
            if history is None:
                return None, deaths
            rows = history(
                since=since, kinds=ACTIVITY_HISTORY_KINDS, limit=ACTIVITY_LIMIT, newest=True
            )
            return [r.to_dict() for r in rows], deaths

        rows, deaths = await monitor.db(read)
        return _json({"history": rows, "live": list(monitor.feed.activity), "deaths": deaths})

    async def trace(request: Request) -> Response:
        trace_id = request.path_params["trace_id"]

        def read(store: Store) -> tuple[list[dict[str, Any]], bool] | None:
            history = history_of(store)
            if history is None:
                return None
            rows, cut = history_ends(history, TRACE_LIMIT, trace_id=trace_id)
            return [r.to_dict() for r in rows], cut

        found = await monitor.db(read)
        if found is None:
            return _json({"error": "this store keeps no history", "rows": []}, 200)
        rows, cut = found
        return _json({"rows": rows, "cut": cut})

    run_diagrams = RunDiagrams()

    # A finished run's tasks never move again: its summary is read once, so the list that
    # the page reads every second costs one query plus one per running run.
    finished_runs: dict[str, dict[str, Any]] = {}
    # A replaced database file holds other runs (under the same ids, perhaps).
    monitor.on_replaced += [run_diagrams.clear, finished_runs.clear]

    async def workflow_runs(request: Request) -> Response:
        def read(store: Store) -> list[dict[str, Any]]:
            out = []
            for run in store.list_workflow_runs(limit=RUN_LIST_LIMIT):
                summary = finished_runs.get(run.run_id)
                if summary is None:
                    summary = run_summary(run, store.list_workflow_tasks(run.run_id))
                    if run.status != "running":
                        finished_runs[run.run_id] = summary
                out.append(summary)
            for run_id in list(finished_runs)[: max(0, len(finished_runs) - RUN_LIST_LIMIT)]:
                del finished_runs[run_id]
            return out

        runs = await monitor.db(read)
        return _json({"runs": runs, "states": list(TASK_STATES), "colours": STATE_COLOURS})

    async def workflow_run(request: Request) -> Response:
        run_id = request.path_params["run_id"]

        def read(store: Store) -> tuple[Any, Any]:
            found = store.get_workflow_run(run_id)
            return found, [] if found is None else store.list_workflow_tasks(run_id)

        found, tasks = await monitor.db(read)
        if found is None:
            return _json({"error": "unknown workflow run"}, 404)
        body: dict[str, Any] = {
            "run": run_summary(found, tasks),
            "tasks": [],
            "states": list(TASK_STATES),
            "colours": STATE_COLOURS,
        }
        types = job_types(found.definition)
        body["tasks"] = [task_dict(task, types.get(task.task)) for task in tasks]
        if request.query_params.get("svg") != "0":
            # Drawing runs dot (tens of milliseconds): off the loop and off the store's thread.
            loop = asyncio.get_running_loop()
            svg, error = await loop.run_in_executor(
                None, run_diagrams.get, run_id, found.definition
            )
            body["svg"] = svg
            body["svg_error"] = error
        return _json(body)

    async def workflow_cancel(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        done = await monitor.db_write(lambda store: store.cancel_workflow_run(run_id))
        found = await monitor.db(lambda store: store.get_workflow_run(run_id))
        if found is None:
            return _json({"error": "unknown workflow run"}, 404)
        tasks = await monitor.db(lambda store: store.list_workflow_tasks(run_id))
        body: dict[str, Any] = {"ok": done, "run": run_summary(found, tasks)}
        if not done:
            body["error"] = "only a running workflow run can be cancelled"
        return _json(body, 200 if done else 409)

    async def stream(request: Request) -> Response:
        subscriber = monitor.feed.subscribe()

        async def events() -> AsyncIterator[str]:
            try:
                yield "retry: 2000\n\n"
                while True:
                    if not await subscriber.wait(KEEPALIVE_SECONDS):
                        if subscriber.closed:
                            return  # the server is stopping; the page reconnects
                        yield ": keep-alive\n\n"
                        continue
                    yield "data: [" + ",".join(subscriber.drain(BATCH_LIMIT)) + "]\n\n"
            finally:
                monitor.feed.unsubscribe(subscriber)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await monitor.start()
        try:
            yield
        finally:
            await monitor.stop()

    async def database_error(request: Request, error: Exception) -> Response:
        # The database is away, or busy past the store's wait (a worker holds the write
        # lock): the page says so in its own words; the server goes on.
        return _json({"error": f"the database: {error}"}, 503)

    app = Starlette(
        exception_handlers={StoreError: database_error},
        routes=[
            Route("/", index),
            Route("/api/state", state),
            Route("/api/types/{key}", machine_type),
            Route("/api/jobs", jobs),
            Route("/api/jobs/{job_id:path}/{action}", job_action, methods=["POST"]),
            Route("/api/jobs/{job_id:path}", job),
            Route("/api/activity", activity),
            Route("/api/trace/{trace_id:path}", trace),
            Route("/api/workflows", workflow_runs),
            Route("/api/workflows/{run_id}/cancel", workflow_cancel, methods=["POST"]),
            Route("/api/workflows/{run_id}", workflow_run),
            Route("/api/stream", stream),
            Mount("/static", StaticFiles(packages=[("smc.ui", "static")]), name="static"),
        ],
        lifespan=lifespan,
    )
    app.state.monitor = monitor
    allowed = None
    if loopback_only and token is None:
        allowed = list(LOOPBACK_HOSTS)
        if bound_host is not None and bound_host not in allowed:
            allowed.append(f"[{bound_host}]" if ":" in bound_host else bound_host)
    app.add_middleware(Guard, token=token, allowed_hosts=allowed)
    return app
