"""Events between machines, the machine registry and wake-ups, on SQLite and PostgreSQL.

Leases and heartbeat ages run on simulated time (``tests.support.backends.StoreTime``), not sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from smc.runtime.store import (
    JOBS_CHANNEL,
    LoopWaker,
    Store,
    StoreError,
    Waker,
    machine_channel,
    open_store,
)
from smc.runtime.store.postgres import PostgresStore
from tests.support.backends import PG_URL, StoreTime, postgres_schema_url

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store_time(store_url: str) -> StoreTime:
    return StoreTime(store_url)


@pytest.fixture
def store(store_time: StoreTime) -> Iterator[Store]:
    opened = store_time.open(reap_interval=0.0)
    yield opened
    opened.close()


def _run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


# --- events ---


def test_events_are_claimed_in_order_and_acknowledged(store: Store) -> None:
    ids = [store.send_event("b", f"e{index}", {"n": index}, source="a") for index in range(5)]
    store.send_event("other", "not-mine")
    first = store.claim_events("b", limit=3)
    assert [event.id for event in first] == ids[:3]
    assert [event.payload for event in first] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert {event.source for event in first} == {"a"}
    assert {event.status for event in first} == {"processing"}
    rest = store.claim_events("b")
    assert [event.event_type for event in rest] == ["e3", "e4"]
    for event in first + rest:
        assert event.claim_token is not None
        assert store.ack_event(event.id, event.claim_token)
        assert not store.ack_event(event.id, event.claim_token)  # already done
    assert store.claim_events("b") == []
    assert [event.status for event in store.list_events(target="b")] == ["done"] * 5
    assert [event.target for event in store.list_events(status="pending")] == ["other"]


def test_a_one_megabyte_payload_round_trips(store: Store) -> None:
    payload = {"blob": "x" * (1024 * 1024), "nested": {"list": list(range(100))}}
    store.send_event("big", "upload", payload)
    (event,) = store.claim_events("big")
    assert event.payload == payload


def test_events_wait_while_the_target_is_not_running(store_url: str) -> None:
    sender = open_store(store_url)
    sender.send_event("absent", "hello", {"from": "sender"}, job_id="job-7")
    sender.close()
    # The target starts later, in another process: the event is waiting in the table.
    result = _run_python(
        "import sys\n"
        "from smc.runtime.store import open_store\n"
        "store = open_store(sys.argv[1])\n"
        "events = store.claim_events('absent')\n"
        "print(len(events), events[0].event_type, events[0].payload['from'], events[0].job_id)\n"
        "print(store.ack_event(events[0].id, events[0].claim_token))\n",
        store_url,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "hello", "sender", "job-7", "True"]


def test_a_dead_lettered_event_keeps_its_reason_and_is_never_claimed_again(store: Store) -> None:
    first, second = store.send_event("b", "bad"), store.send_event("b", "good")
    claimed = store.claim_events("b", limit=1)
    assert [event.id for event in claimed] == [first]
    token = claimed[0].claim_token
    assert token is not None
    assert not store.dead_letter_event(first, "not-the-token", "nope")
    assert store.dead_letter_event(first, token, "payload is broken")
    assert not store.dead_letter_event(first, token, "again")  # no longer processing
    assert [event.id for event in store.claim_events("b")] == [second]
    (dead,) = store.list_events(status="dead")
    assert (dead.id, dead.last_error, dead.claim_token) == (first, "payload is broken", token)
    assert dead.processed_at is not None
    assert store.event_counts() == {"pending": 0, "processing": 1, "done": 0, "dead": 1}


# --- upgrading a version-1 database ---

# The version-1 machine_events table and its index, as version 1 of smc created them.
_V1_SQLITE = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    "INSERT INTO schema_version (version) VALUES (1)",
    """CREATE TABLE machine_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        target_machine TEXT NOT NULL,
        source_machine TEXT,
        event_type TEXT NOT NULL,
        payload TEXT NOT NULL,
        job_id TEXT,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending','processing','done')),
        attempts INTEGER NOT NULL DEFAULT 0,
        claim_token TEXT,
        lease_expires_at REAL,
        created_at REAL NOT NULL,
        processed_at REAL
    )""",
    """CREATE INDEX machine_events_open ON machine_events (target_machine, id)
        WHERE status IN ('pending', 'processing')""",
)
_V1_POSTGRES = (
    "CREATE TABLE schema_version (version integer NOT NULL)",
    "INSERT INTO schema_version (version) VALUES (1)",
    """CREATE TABLE machine_events (
        id bigserial PRIMARY KEY,
        target_machine text NOT NULL,
        source_machine text,
        event_type text NOT NULL,
        payload jsonb NOT NULL,
        job_id text,
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','processing','done')),
        attempts integer NOT NULL DEFAULT 0,
        claim_token text,
        lease_expires_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        processed_at timestamptz
    )""",
    """CREATE INDEX machine_events_open ON machine_events (target_machine, id)
        WHERE status IN ('pending', 'processing')""",
)
# Three events (one done, two pending), the last deleted: its id must not be reused.
_V1_ROWS = (
    "INSERT INTO machine_events (target_machine, event_type, payload, status, created_at) "
    """VALUES ('m', 'old-done', '{"n": 1}', 'done', {now}), """
    """('m', 'old-open', '{"n": 2}', 'pending', {now}), ('m', 'deleted', '{}', 'pending', {now})""",
    "DELETE FROM machine_events WHERE event_type = 'deleted'",
)


def _create_version_1(store_url: str) -> None:
    if store_url.startswith("postgresql"):
        schema = store_url.split("schema=")[1]
        with psycopg.connect(PG_URL, autocommit=True) as connection, connection.transaction():
            connection.execute(f"CREATE SCHEMA {schema}")
            connection.execute(f"SET LOCAL search_path TO {schema}")
            for statement in _V1_POSTGRES + _V1_ROWS:
                connection.execute(statement.replace("{now}", "now()"))
        return
    with contextlib.closing(sqlite3.connect(store_url)) as connection, connection:
        for statement in _V1_SQLITE + _V1_ROWS:
            connection.execute(statement.replace("{now}", str(time.time())))


def test_a_version_1_database_is_upgraded_on_open_and_keeps_its_rows(store_url: str) -> None:
    _create_version_1(store_url)
    # Several processes open the old database at once: one upgrades it, none fails.
    opener = (
        "import sys\n"
        "from smc.runtime.store import open_store\n"
        "open_store(sys.argv[1]).event_counts()\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", opener, store_url],
            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for process in processes:
        _, errors = process.communicate(timeout=60)
        assert process.returncode == 0, errors
    with open_store(store_url) as store:
        old = sorted(store.list_events(target="m"), key=lambda event: event.id)
        assert [(event.id, event.event_type, event.status, event.payload) for event in old] == [
            (1, "old-done", "done", {"n": 1}),
            (2, "old-open", "pending", {"n": 2}),
        ]
        assert {event.last_error for event in old} == {None}
        new_id = store.send_event("m", "new")
        assert new_id == 4  # 3 was used (and deleted) before the upgrade
        claimed = store.claim_events("m")
        assert [event.id for event in claimed] == [2, 4]  # the open-events index still serves
        token = claimed[0].claim_token
        assert token is not None and store.dead_letter_event(2, token, "why")
        assert store.event_counts() == {"pending": 0, "processing": 1, "done": 1, "dead": 1}
    if store_url.startswith("postgresql"):
        schema = store_url.split("schema=")[1]
        with psycopg.connect(PG_URL, autocommit=True) as connection:
            version = connection.execute(f"SELECT version FROM {schema}.schema_version")
            assert version.fetchall() == [(3,)]
            with pytest.raises(psycopg.errors.CheckViolation):
                connection.execute(f"UPDATE {schema}.machine_events SET status = 'bogus'")
            indexes = connection.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s", (schema,)
            )
            assert "machine_events_open" in {row[0] for row in indexes.fetchall()}
        return
    with contextlib.closing(sqlite3.connect(store_url)) as connection:
        assert connection.execute("SELECT version FROM schema_version").fetchall() == [(3,)]
        with pytest.raises(sqlite3.IntegrityError):
            connection.execute("UPDATE machine_events SET status = 'bogus'")
        names = connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        assert "machine_events_open" in {row[0] for row in names.fetchall()}


def test_a_version_1_sqlite_database_is_not_upgraded_read_only(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    _create_version_1(path)
    with pytest.raises(StoreError, match="schema version 1"):
        open_store(path, read_only=True)
    with open_store(path) as store:
        assert [event.id for event in store.list_events()] == [2, 1]
    with open_store(path, read_only=True) as store:
        assert store.event_counts()["pending"] == 1


def test_an_unacknowledged_event_is_redelivered_after_its_lease(
    store: Store, store_time: StoreTime
) -> None:
    store.send_event("b", "once")
    (first,) = store.claim_events("b", lease_seconds=0.2)
    assert store.claim_events("b") == []  # leased
    store_time.advance(0.3)
    (again,) = store.claim_events("b")
    assert again.id == first.id and again.attempts == 2
    assert first.claim_token is not None and again.claim_token is not None
    assert not store.ack_event(first.id, first.claim_token)  # the stale holder is fenced out
    assert store.ack_event(again.id, again.claim_token)


def test_an_event_being_handled_keeps_its_lease_and_can_be_given_back(
    store: Store, store_time: StoreTime
) -> None:
    first, second = (store.send_event("b", name) for name in ("one", "two"))
    [held] = store.claim_events("b", limit=1, lease_seconds=0.5)
    assert held.id == first and held.claim_token is not None and held.attempts == 1
    assert store.heartbeat_event(held.id, held.claim_token, 30.0)
    store_time.advance(0.7)  # past the first lease: renewed, so not delivered again
    [other] = store.claim_events("b", limit=1)
    assert other.id == second
    assert not store.heartbeat_event(held.id, "not-the-token", 30.0)
    assert not store.release_event(held.id, "not-the-token")  # fenced
    assert store.release_event(held.id, held.claim_token)  # a stop gives it back...
    assert not store.heartbeat_event(held.id, held.claim_token, 30.0)
    [again] = store.claim_events("b", limit=1)
    assert again.id == first and again.attempts == 1  # ...its delivery not counted
    assert store.ack_event(again.id, again.claim_token or "")
    assert not store.release_event(again.id, again.claim_token or "")  # done stays done


def test_release_events_redelivers_at_once(store: Store) -> None:
    store.send_event("b", "one")
    store.send_event("b", "two")
    assert len(store.claim_events("b", lease_seconds=60)) == 2
    assert store.release_events("b") == 2
    assert [event.event_type for event in store.claim_events("b")] == ["one", "two"]


def test_state_change_and_outgoing_events_commit_together(store: Store) -> None:
    store.register_machine("a", "idle")
    ids = store.update_machine_and_send(
        "a", "sent", [("b", "ping", {"n": 1}), ("c", "ping", None), ("b", "pong", [1])]
    )
    assert len(ids) == 3
    machine = store.get_machine("a")
    assert machine is not None and machine.state == "sent"
    to_b = store.claim_events("b")
    assert [(event.event_type, event.source) for event in to_b] == [("ping", "a"), ("pong", "a")]
    # An unregistered sender: neither the state nor any event is written.
    with pytest.raises(StoreError, match="not registered"):
        store.update_machine_and_send("ghost", "x", [("b", "lost", None)])
    assert store.claim_events("b") == []


# --- machines ---


def test_machine_registry_reports_running_stopped_and_dead(store: Store) -> None:
    store.register_machine("me", "starting", config_path="machines/me.yaml")
    assert store.update_machine("me", "working")
    assert store.heartbeat_machine("me")
    assert not store.update_machine("nobody", "x")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: its pid names no process any more
    store.register_machine("ghost", "working", pid=gone.pid)
    store.register_machine("done", "finished")
    assert store.stop_machine("done")
    machines = {machine.name: machine for machine in store.list_machines()}
    assert machines["me"].status == "running"
    assert machines["me"].state == "working"
    assert machines["me"].pid == os.getpid()
    assert machines["me"].config_path == "machines/me.yaml"
    assert machines["me"].heartbeat_age is not None and machines["me"].heartbeat_age < 30
    assert machines["ghost"].status == "dead"
    assert machines["done"].status == "stopped"


def test_a_machine_with_a_stale_heartbeat_is_dead(store_time: StoreTime) -> None:
    store = store_time.open(machine_stale_after=0.3)
    try:
        store.register_machine("sleepy", "waiting")
        machine = store.get_machine("sleepy")
        assert machine is not None and machine.status == "running"
        store_time.advance(0.5)
        machine = store.get_machine("sleepy")
        assert machine is not None and machine.status == "dead"
        store.heartbeat_machine("sleepy")
        machine = store.get_machine("sleepy")
        assert machine is not None and machine.status == "running"
    finally:
        store.close()


def test_a_name_running_on_another_host_is_taken_only_once_its_machine_is_gone(
    store_time: StoreTime,
) -> None:
    """Registering a name that a live machine on another host holds writes nothing and says
    so (the engine then refuses to start), decided in the one statement; the same host may
    register again (its monitor socket decides there), and a stopped or stale one gives the
    name up."""
    store = store_time.open(machine_stale_after=30)
    try:
        assert store.register_machine("named", "waiting", pid=11, host="host-a")
        assert not store.register_machine("named", "other", pid=22, host="host-b")
        row = store.get_machine("named")
        assert row is not None and (row.pid, row.host, row.state) == (11, "host-a", "waiting")
        started = [r for r in store.history(machine="named") if r.kind == "machine_started"]
        assert len(started) == 1  # the refused registration recorded nothing
        assert store.register_machine("named", "again", pid=12, host="host-a")
        store_time.advance(31)  # host-a's machine silent: dead
        assert store.register_machine("named", "waiting", pid=22, host="host-b")
        assert store.stop_machine("named")
        assert store.register_machine("named", "waiting", pid=33, host="host-c")
    finally:
        store.close()


def test_hosts_starting_one_name_at_the_same_moment_give_it_to_one(store_url: str) -> None:
    """Eight stores (eight connections, as eight hosts' workers) register one name at once:
    one takes it, seven are refused (each engine first reads the row, and all eight may read
    it free)."""
    stores = [open_store(store_url) for _ in range(8)]
    barrier = threading.Barrier(len(stores))
    results: dict[int, bool] = {}

    def register(number: int) -> None:
        barrier.wait()
        results[number] = stores[number].register_machine(
            "contested", "waiting", pid=100 + number, host=f"host-{number}"
        )

    threads = [threading.Thread(target=register, args=(n,)) for n in range(len(stores))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(results.values()) == [False] * 7 + [True], results
        (winner,) = [n for n, taken in results.items() if taken]
        row = stores[0].get_machine("contested")
        assert row is not None and (row.pid, row.host) == (100 + winner, f"host-{winner}")
    finally:
        for opened in stores:
            opened.close()


# --- wake-ups ---


def test_an_event_from_another_process_wakes_a_waiting_machine(
    store: Store, store_url: str
) -> None:
    with store.open_waker([machine_channel("listener")]) as waker:
        assert not waker.wait(0.1)  # nothing sent: the timeout passes
        result = _run_python(
            "import sys\n"
            "from smc.runtime.store import open_store\n"
            "open_store(sys.argv[1]).send_event('listener', 'wake', {'n': 1})\n",
            store_url,
        )
        assert result.returncode == 0, result.stderr
        assert waker.wait(20.0)  # a lost wake-up would sit out the whole timeout and fail
        assert [event.event_type for event in store.claim_events("listener")] == ["wake"]
        assert not waker.wait(0.1)  # the poke was drained


def test_every_waiter_on_jobs_is_woken(store: Store) -> None:
    first = store.open_waker([JOBS_CHANNEL])
    second = store.open_waker([JOBS_CHANNEL, machine_channel("x")])
    unrelated = store.open_waker([machine_channel("y")])
    try:
        store.add_job("t")
        assert first.wait(20.0)
        assert second.wait(20.0)
        assert not unrelated.wait(0.2)
        store.notify(machine_channel("y"))
        assert unrelated.wait(20.0)
    finally:
        first.close()
        second.close()
        unrelated.close()


def test_the_waker_works_with_an_asyncio_reader(store: Store) -> None:
    async def scenario() -> bool:
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()
        with store.open_waker([machine_channel("async"), JOBS_CHANNEL]) as waker:

            def on_readable() -> None:
                waker.drain()
                woken.set()

            loop.add_reader(waker.fileno(), on_readable)
            try:
                await asyncio.to_thread(store.send_event, "async", "go")
                await asyncio.wait_for(woken.wait(), timeout=20.0)
            finally:
                loop.remove_reader(waker.fileno())
        return woken.is_set()

    assert asyncio.run(scenario())


def _rung_within(waker: Waker, seconds: float) -> frozenset[str]:
    """What ``waker`` drains once its descriptor turns readable (empty: it did not)."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([waker.fileno()], [], [], remaining)
        if readable and (rung := waker.drain()):
            return rung
    return frozenset()


def test_a_waker_takes_a_channel_later_and_tells_which_one_rang(store: Store) -> None:
    # A machine listens for its events first and for new jobs once an action asks: on one
    # waker (one LISTEN connection on PostgreSQL), so the waker must say which channel rang.
    events = machine_channel("mixed")
    with store.open_waker([events]) as waker:
        store.add_job("task", {})
        assert _rung_within(waker, 0.3) == frozenset()
        waker.add_channel(JOBS_CHANNEL)
        waker.add_channel(JOBS_CHANNEL)  # a second time: nothing changes
        assert waker.channels == (events, JOBS_CHANNEL)
        store.add_job("task", {})
        assert _rung_within(waker, 20.0) == {JOBS_CHANNEL}
        store.send_event("mixed", "hello")
        assert _rung_within(waker, 20.0) == {events}
        store.send_event("someone-else", "hello")
        assert _rung_within(waker, 0.3) == frozenset()
        store.add_job("task", {})
        store.send_event("mixed", "again")
        rung: set[str] = set()
        deadline = time.monotonic() + 20.0
        while rung != {events, JOBS_CHANNEL} and time.monotonic() < deadline:
            rung |= _rung_within(waker, deadline - time.monotonic())
        assert rung == {events, JOBS_CHANNEL}


def test_a_loop_waker_hands_on_the_channels_that_rang(store: Store) -> None:
    events = machine_channel("looped")

    async def scenario() -> tuple[list[frozenset[str]], list[frozenset[str]]]:
        loop = asyncio.get_running_loop()
        heard: list[frozenset[str]] = []
        bell = asyncio.Event()

        def on_ring(channels: frozenset[str]) -> None:
            heard.append(channels)
            bell.set()

        loop_waker = LoopWaker(loop, store.open_waker([events]), on_ring)
        try:
            await asyncio.to_thread(store.send_event, "looped", "go")
            await asyncio.wait_for(bell.wait(), timeout=20.0)
            bell.clear()
            loop_waker.add_channel(JOBS_CHANNEL)
            on_adding = heard[1:]
            bell.clear()
            await asyncio.to_thread(store.add_job, "task", {})
            await asyncio.wait_for(bell.wait(), timeout=20.0)
        finally:
            loop_waker.close()
        return heard, on_adding

    heard, on_adding = asyncio.run(scenario())
    assert heard[0] == {events}
    assert heard[-1] == {JOBS_CHANNEL}
    # PostgreSQL: rings that came while LISTEN ran went to psycopg, so the events channel
    # is rung as if they had come; SQLite's sockets lose none.
    assert on_adding == ([frozenset({events})] if isinstance(store, PostgresStore) else [])


def test_sqlite_doorbell_removes_sockets_of_dead_waiters(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "smc.db"))
    try:
        socket_dir = store.socket_dir
        assert socket_dir is not None
        waiter = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, time\n"
                "from smc.runtime.store import open_store\n"
                "waker = open_store(sys.argv[1]).open_waker(['machine:victim'])\n"
                "print('listening', flush=True)\n"
                "time.sleep(600)\n",
                str(tmp_path / "smc.db"),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        )
        assert waiter.stdout is not None
        assert waiter.stdout.readline().strip() == "listening"
        sockets = [name for name in os.listdir(socket_dir) if name.startswith("machine:victim@")]
        assert len(sockets) == 1
        os.kill(waiter.pid, signal.SIGKILL)  # dies without cleaning up its socket file
        waiter.wait()
        assert (socket_dir / sockets[0]).exists()
        store.send_event("victim", "anyone?")  # must not fail, and clears the stale socket
        assert not (socket_dir / sockets[0]).exists()
        assert len(store.claim_events("victim")) == 1
    finally:
        store.close()


def test_sqlite_long_channel_names_fit_the_socket_path_limit(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "smc.db"))
    try:
        name = "a-very-long-machine-name/" * 10
        with store.open_waker([machine_channel(name)]) as waker:
            assert store.socket_dir is not None
            paths = list(store.socket_dir.iterdir())
            assert paths and all(len(os.fsencode(path)) < 108 for path in paths)
            store.send_event(name, "hi")
            assert waker.wait(20.0)
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_waker_reconnects_after_losing_its_connection() -> None:
    from smc.runtime.store.waker import PostgresWaker

    with postgres_schema_url() as url:
        store = open_store(url)
        try:
            waker = store.open_waker([machine_channel("m")])
            assert isinstance(waker, PostgresWaker)
            with psycopg.connect(PG_URL, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(%s)", (waker._connection.info.backend_pid,)
                )
            # The broken connection counts as a wake-up (something may have been missed), then the
            # waker listens again on a new connection and real notifications reach it.
            assert waker.wait(20.0)
            if waker.broken:
                assert waker.wait(20.0)
            assert not waker.broken
            store.send_event("m", "after-reconnect")
            assert waker.wait(20.0)
            waker.close()
        finally:
            store.close()


def test_every_time_the_store_returns_is_epoch_seconds(store: Store) -> None:
    """Both backends report times as epoch floats (PostgreSQL stores timestamptz), close to now."""
    before = time.time()
    job = store.add_job("task", {"x": 1})
    claimed = store.claim_job("worker-1", ["task"], lease_seconds=30)
    assert claimed is not None and store.complete_job(claimed.id, claimed.claim_token)
    store.register_machine("timed", "working")
    event_id = store.send_event("timed", "ping", {})
    finished = store.get_job(job.id)
    machine = store.get_machine("timed")
    event = next(e for e in store.list_events("timed") if e.id == event_id)
    assert finished is not None and machine is not None
    times = {
        "job.created_at": finished.created_at,
        "job.run_after": finished.run_after,
        "job.started_at": finished.started_at,
        "job.finished_at": finished.finished_at,
        "machine.started_at": machine.started_at,
        "machine.heartbeat_at": machine.heartbeat_at,
        "machine.updated_at": machine.updated_at,
        "event.created_at": event.created_at,
    }
    for name, value in times.items():
        assert type(value) is float, f"{name} is {type(value).__name__}, not float"
        assert before - 5 < value < time.time() + 5, f"{name} = {value} is not about now"


def test_an_empty_inbox_is_checked_without_the_write_lock(tmp_path: Path) -> None:
    """On SQLite an idle machine's look at an empty inbox is a read: it answers at once while
    another process holds the write lock (a claim would wait ``busy_timeout`` for it, then
    fail). With an event waiting, the claim still waits for the lock and takes the event."""
    path = tmp_path / "smc.db"
    store = open_store(str(path), busy_timeout=0.3)
    for number in range(50):  # done events, which the look must not wade through
        store.send_event("idle", "old", {"n": number})
        [row] = store.claim_events("idle", 1)
        assert store.ack_event(row.id, row.claim_token or "")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process writing
    try:
        began = time.monotonic()
        assert store.claim_events("idle") == []
        assert time.monotonic() - began < 0.2
    finally:
        blocker.execute("ROLLBACK")
    store.send_event("busy", "go")
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError):
            store.claim_events("busy")  # something to claim: the claim needs the lock
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert [row.event_type for row in store.claim_events("busy")] == ["go"]
    store.close()
