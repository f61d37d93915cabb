"""The engine's parts on their own, on simulated time: a :class:`ManualClock` moves forward with
``advance()`` and a :class:`FakeScheduler` runs the calls that are due, so nothing sleeps.

The parts that talk to the database use a real SQLite file in ``tmp_path`` (the store keeps its
own clock: lease expiry times are real ones); a stub store stands in only where a test needs
the database to refuse.

(Over 500 lines: one short section per part of the engine, all sharing the fakes and fixtures
at the top.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from smc.runtime.children import ChildProcesses
from smc.runtime.clock import ManualClock
from smc.runtime.faults import STORE_ERROR_LOG_INTERVAL, FaultReporter, LogLimiter
from smc.runtime.heartbeat import Heartbeat, heartbeat_interval
from smc.runtime.inbox import Inbox
from smc.runtime.ledger import Claim, JobLedger
from smc.runtime.monitor_feed import MonitorFeed
from smc.runtime.registry_writer import IDLE_WRITE_GAP, REGISTRY_WRITE_INTERVAL, RegistryWriter
from smc.runtime.stopping import STOP_RETRY_SECONDS, give_back
from smc.runtime.store import JOBS_CHANNEL, EventRow, Store, StoreError, open_store
from smc.runtime.timers import StateTimers
from smc.runtime.wakeups import Wakeups
from tests.support.backends import age_rows
from tests.support.harness import compile_machine, run_engine

LOGGER_NAME = "smc.machine.parts_test"


class FakeHandle:
    def __init__(self, due: float, callback: Callable[[], None]) -> None:
        self.due = due
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeScheduler:
    """``call_later`` on a :class:`ManualClock`: :meth:`run_due` runs what is due by now."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.handles: list[FakeHandle] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> FakeHandle:
        handle = FakeHandle(self.clock.monotonic() + delay, callback)
        self.handles.append(handle)
        return handle

    def pending(self) -> list[FakeHandle]:
        return [handle for handle in self.handles if not handle.cancelled]

    def run_due(self) -> int:
        now = self.clock.monotonic()
        due = sorted((h for h in self.pending() if h.due <= now), key=lambda h: h.due)
        for handle in due:
            self.handles.remove(handle)
            handle.callback()
        return len(due)


class Published:
    """Collects what a part publishes (``publish(kind, **fields)``)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def __call__(self, kind: str, **fields: Any) -> None:
        self.records.append({"kind": kind, **fields})

    def kinds(self) -> list[str]:
        return [record["kind"] for record in self.records]


class RefusingStore:
    """A database that refuses every write (a lock held elsewhere, a lost server)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            raise StoreError(f"{name}: database is locked")

        return refuse


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


@pytest.fixture
def database(tmp_path: Path) -> str:
    return str(tmp_path / "smc.db")


@pytest.fixture
def store(database: str) -> Iterator[Store]:
    opened = open_store(database)
    yield opened
    opened.close()


def messages(caplog: pytest.LogCaptureFixture, level: int = logging.DEBUG) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == LOGGER_NAME and record.levelno >= level
    ]


# --- timers ---------------------------------------------------------------------------------


def test_timers_expire_in_order_as_the_clock_passes_them(clock: ManualClock) -> None:
    scheduler = FakeScheduler(clock)
    wakes: list[None] = []
    timers = StateTimers(
        {"waiting": ((1, "slow"), (0.25, "fast"))}, scheduler, lambda: wakes.append(None)
    )
    timers.start("waiting")
    assert len(scheduler.pending()) == 2
    clock.advance(0.2)
    scheduler.run_due()
    assert timers.expired == [] and wakes == []
    clock.advance(0.05)
    scheduler.run_due()
    assert timers.expired == ["fast"] and len(wakes) == 1
    clock.advance(0.75)
    scheduler.run_due()
    assert timers.expired == ["fast", "slow"] and len(wakes) == 2


def test_leaving_the_state_cancels_its_timers_and_drops_expired_ones(clock: ManualClock) -> None:
    scheduler = FakeScheduler(clock)
    timers = StateTimers({"a": ((0.5, "t1"), (2, "t2"))}, scheduler, lambda: None)
    timers.start("a")
    clock.advance(0.5)
    scheduler.run_due()
    assert timers.expired == ["t1"]
    timers.cancel()
    assert timers.expired == [] and scheduler.pending() == []
    clock.advance(10)
    assert scheduler.run_due() == 0
    assert timers.expired == []


def test_a_timer_of_a_state_entry_already_left_is_ignored(clock: ManualClock) -> None:
    """A callback already queued when its timer was cancelled (the loop runs it anyway) must
    not fire in the next entry of the state (a self-transition restarts the timers)."""
    scheduler = FakeScheduler(clock)
    timers = StateTimers({"a": ((1, "timeout"),)}, scheduler, lambda: None)
    timers.start("a")
    stale = scheduler.pending()[0]
    timers.cancel()
    timers.start("a")  # re-entered
    stale.callback()
    assert timers.expired == []
    clock.advance(1)
    scheduler.run_due()
    assert timers.expired == ["timeout"]


def test_a_state_without_timeouts_schedules_nothing(clock: ManualClock) -> None:
    scheduler = FakeScheduler(clock)
    timers = StateTimers({"a": ((1, "t"),)}, scheduler, lambda: None)
    timers.start("b")
    assert scheduler.handles == []
    timers.cancel()  # nothing to cancel: fine


# --- fault reporting ------------------------------------------------------------------------


def test_log_limiter_lets_a_message_through_once_per_interval(clock: ManualClock) -> None:
    limiter = LogLimiter(clock, interval=30)
    assert limiter.due()
    assert not limiter.due()
    clock.advance(29.9)
    assert not limiter.due()
    clock.advance(0.1)
    assert limiter.due()
    limiter.reset()
    assert limiter.due()


def test_a_fault_is_logged_at_once_then_at_most_every_interval(
    clock: ManualClock, logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER_NAME)
    published = Published()
    faults = FaultReporter(logger, published, clock)
    error = StoreError("disk I/O error")
    faults.report("read events", error)
    faults.report("read events", error)
    assert messages(caplog) == ["cannot read events: disk I/O error (will retry)"]
    assert published.records == [{"kind": "error", "error": "cannot read events: disk I/O error"}]
    clock.advance(STORE_ERROR_LOG_INTERVAL - 0.5)
    faults.report("acknowledge an event", error)
    assert len(messages(caplog)) == 1
    clock.advance(0.5)
    faults.report("acknowledge an event", error)
    assert messages(caplog)[-1] == "cannot acknowledge an event: disk I/O error (will retry)"
    assert len(published.records) == 2
    assert faults.what == "read events"  # the operation that failed first


def test_only_the_operation_that_failed_first_ends_the_fault(
    clock: ManualClock, logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER_NAME)
    faults = FaultReporter(logger, Published(), clock)
    faults.recovered("read events")  # no fault: nothing to say
    assert messages(caplog) == []
    faults.report("run bash", StoreError("database or disk is full"))
    clock.advance(42)
    faults.recovered("acknowledge an event")  # needs no new page: not a recovery
    assert faults.since is not None
    faults.recovered("run bash")
    assert messages(caplog)[-1] == "database usable again after 42.0s"
    assert faults.since is None
    faults.report("run bash", StoreError("full again"))  # a new fault is logged at once
    assert messages(caplog)[-1] == "cannot run bash: full again (will retry)"
    faults.recovered()  # None: any operation ends it
    assert faults.since is None


# --- registry writer ------------------------------------------------------------------------


class StateBox:
    def __init__(self, state: str) -> None:
        self.state = state

    def __call__(self) -> str:
        return self.state


def make_writer(
    clock: ManualClock, logger: logging.Logger, state: StateBox
) -> tuple[RegistryWriter, FakeScheduler]:
    scheduler = FakeScheduler(clock)
    faults = FaultReporter(logger, Published(), clock)
    return RegistryWriter("parts_test", state, faults, scheduler, clock), scheduler


def registry_state(store: Store) -> str | None:
    row = store.get_machine("parts_test")
    assert row is not None
    return row.state


def test_registry_writes_at_most_once_per_interval_and_then_the_latest_state(
    clock: ManualClock, logger: logging.Logger, store: Store
) -> None:
    state = StateBox("waiting")
    writer, scheduler = make_writer(clock, logger, state)
    writer.register(store, config_path="machine.yaml")
    assert registry_state(store) == "waiting"
    state.state = "processing"
    writer.state_changed()  # the first change is written at once
    assert registry_state(store) == "processing"
    clock.advance(0.1)
    state.state = "finishing"
    writer.state_changed()  # within the interval: deferred to its end
    state.state = "waiting"
    writer.state_changed()  # one deferred write is enough
    assert registry_state(store) == "processing"
    assert [round(h.due - clock.monotonic(), 6) for h in scheduler.pending()] == [
        round(REGISTRY_WRITE_INTERVAL - 0.1, 6)
    ]
    clock.advance(REGISTRY_WRITE_INTERVAL - 0.1)
    assert scheduler.run_due() == 1
    assert registry_state(store) == "waiting"  # the state by then, not the one that asked


def test_registry_write_before_a_sleep_is_immediate_and_replaces_the_deferred_one(
    clock: ManualClock, logger: logging.Logger, store: Store
) -> None:
    state = StateBox("a")
    writer, scheduler = make_writer(clock, logger, state)
    writer.register(store, config_path=None)
    state.state = "b"
    writer.state_changed()
    state.state = "c"
    writer.state_changed()
    [deferred] = scheduler.pending()
    writer.write()  # going idle: written now
    assert registry_state(store) == "c"
    assert deferred.cancelled
    writer.write()  # unchanged: no write
    assert writer.written == "c"


def test_a_machine_going_to_sleep_writes_at_once_unless_it_just_wrote(
    clock: ManualClock, logger: logging.Logger, store: Store
) -> None:
    # A timer-driven machine sleeps between transitions dozens of times a second: its sleeps
    # write at most every IDLE_WRITE_GAP, each with the state it is in by then.
    state = StateBox("a")
    writer, scheduler = make_writer(clock, logger, state)
    writer.register(store, config_path=None)
    state.state = "b"
    writer.idle()  # nothing written since the start: at once
    assert registry_state(store) == "b" and scheduler.pending() == []
    clock.advance(0.01)
    state.state = "c"
    writer.state_changed()  # busy: deferred by the interval
    [busy] = scheduler.pending()
    assert round(busy.due - clock.monotonic(), 6) == round(REGISTRY_WRITE_INTERVAL - 0.01, 6)
    state.state = "d"
    writer.idle()  # written 10 ms ago: when the gap is up, sooner than the busy one
    assert registry_state(store) == "b"
    assert busy.cancelled
    [asleep] = scheduler.pending()
    assert round(asleep.due - clock.monotonic(), 6) == round(IDLE_WRITE_GAP - 0.01, 6)
    writer.idle()  # asked again: the same write
    assert scheduler.pending() == [asleep]
    state.state = "e"
    clock.advance(IDLE_WRITE_GAP - 0.01)
    assert scheduler.run_due() == 1
    assert registry_state(store) == "e"  # the state by then
    clock.advance(IDLE_WRITE_GAP)
    state.state = "f"
    writer.idle()  # the gap is up: at once
    assert registry_state(store) == "f" and scheduler.pending() == []


def test_a_refused_registry_write_is_reported_and_tried_at_the_next_chance(
    clock: ManualClock, logger: logging.Logger, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER_NAME)
    state = StateBox("a")
    writer, _ = make_writer(clock, logger, state)
    writer.register(store, config_path=None)
    writer._store = RefusingStore()  # type: ignore[assignment]
    state.state = "b"
    writer.write()
    assert writer.written == "a"
    assert messages(caplog) == [
        "cannot update the machine registry: update_machine: database is locked (will retry)"
    ]
    writer._store = store
    clock.advance(REGISTRY_WRITE_INTERVAL)
    writer.state_changed()
    assert registry_state(store) == "b"
    assert messages(caplog)[-1] == "database usable again after 0.5s"


# --- heartbeat ------------------------------------------------------------------------------


class HeartbeatProbe:
    """A heartbeat over ``claims`` and ``held``, recording its callbacks."""

    def __init__(
        self, database: str, store: Store, clock: ManualClock, logger: logging.Logger
    ) -> None:
        self.claims: list[Claim] = []
        self.held: EventRow | None = None
        self.reaped = 0
        self.lost: list[Claim] = []
        self.replaced: list[str] = []
        self.heartbeat = Heartbeat(
            database=database,
            main_store=store,
            machine_name="parts_test",
            lease_seconds=30,
            claims=lambda: tuple(self.claims),
            held_event=lambda: self.held,
            reap_children=self._reap,
            on_lease_lost=self.lost.append,
            on_database_replaced=self.replaced.append,
            logger=logger,
            clock=clock,
        )

    def _reap(self) -> None:
        self.reaped += 1


@pytest.fixture
def probe(
    database: str, store: Store, clock: ManualClock, logger: logging.Logger
) -> Iterator[HeartbeatProbe]:
    made = HeartbeatProbe(database, store, clock, logger)
    yield made
    made.heartbeat.close()


def lease_of(store: Store, job_id: str) -> float:
    job = store.get_job(job_id)
    assert job is not None and job.lease_expires_at is not None
    return job.lease_expires_at


def test_heartbeat_interval_is_a_third_of_the_lease_and_at_most_ten_seconds() -> None:
    assert heartbeat_interval(3) == 1
    assert heartbeat_interval(30) == 10
    assert heartbeat_interval(3600) == 10


def test_heartbeat_renews_leases_only_when_its_interval_has_passed(
    store: Store, clock: ManualClock, probe: HeartbeatProbe
) -> None:
    store.register_machine("parts_test", "waiting")
    store.add_job("task", job_id="j1")
    job = store.claim_job("parts_test", lease_seconds=1)
    assert job is not None and job.claim_token is not None
    probe.claims.append(Claim(job.id, job.claim_token, current=True))
    first_lease = lease_of(store, "j1")
    assert probe.heartbeat.interval == 10

    probe.heartbeat.beat_round()  # checkpoint only: the first beat is one interval away
    clock.advance(9.9)
    probe.heartbeat.beat_round()
    assert lease_of(store, "j1") == first_lease and probe.reaped == 0

    clock.advance(0.1)
    probe.heartbeat.beat_round()
    renewed = lease_of(store, "j1")
    assert renewed >= first_lease + 28  # now + 30 s instead of + 1 s
    assert probe.reaped == 1 and probe.lost == []

    clock.advance(5)
    probe.heartbeat.beat_round()
    assert probe.reaped == 1  # next beat 10 s after the last one
    clock.advance(5)
    probe.heartbeat.beat_round()
    assert probe.reaped == 2


def test_heartbeat_reports_a_lost_lease_and_skips_claims_already_lost(
    store: Store, clock: ManualClock, probe: HeartbeatProbe
) -> None:
    store.add_job("task", job_id="j1")
    job = store.claim_job("parts_test")
    assert job is not None
    stolen = Claim(job.id, "someone-else's token", current=True)
    gone = Claim("j-gone", "t", current=False, lost=True)
    probe.claims += [stolen, gone]
    clock.advance(probe.heartbeat.interval)
    probe.heartbeat.beat_round()
    assert probe.lost == [stolen]


def test_heartbeat_renews_the_held_event_and_warns_when_its_lease_is_lost(
    store: Store,
    clock: ManualClock,
    probe: HeartbeatProbe,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER_NAME)
    store.send_event("parts_test", "go")
    [row] = store.claim_events("parts_test", 1, lease_seconds=1)
    probe.held = row
    clock.advance(probe.heartbeat.interval)
    probe.heartbeat.beat_round()
    [renewed] = store.list_events("parts_test")
    assert renewed.lease_expires_at is not None and row.lease_expires_at is not None
    assert renewed.lease_expires_at >= row.lease_expires_at + 28
    assert messages(caplog) == []

    store.ack_event(row.id, row.claim_token or "")
    clock.advance(probe.heartbeat.interval)
    probe.heartbeat.beat_round()
    assert messages(caplog) == [f"lost the lease of event {row.id} (go): it may be delivered again"]


def test_heartbeat_reports_a_deleted_database_file_once(
    database: str, probe: HeartbeatProbe
) -> None:
    probe.heartbeat.beat_round()
    assert probe.replaced == []
    Path(database).unlink()
    probe.heartbeat.beat_round()
    probe.heartbeat.beat_round()
    assert len(probe.replaced) == 1
    assert "deleted" in probe.replaced[0]


def test_heartbeat_outlives_faults_and_logs_them_at_most_every_interval(
    tmp_path: Path,
    store: Store,
    clock: ManualClock,
    logger: logging.Logger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER_NAME)
    unreachable = str(tmp_path / "no such directory" / "smc.db")
    heartbeat = HeartbeatProbe(unreachable, store, clock, logger).heartbeat
    heartbeat.beat_round()
    heartbeat.beat_round()
    assert len(messages(caplog)) == 1
    assert messages(caplog)[0].startswith("checkpoint failed: ")
    clock.advance(STORE_ERROR_LOG_INTERVAL - 1)
    heartbeat.beat_round()
    assert len(messages(caplog)) == 1
    clock.advance(1)
    heartbeat.beat_round()
    assert len(messages(caplog)) == 2


# --- job ledger -----------------------------------------------------------------------------


def make_ledger(
    clock: ManualClock, logger: logging.Logger
) -> tuple[JobLedger, dict[str, Any], Published]:
    context: dict[str, Any] = {"machine_name": "parts_test"}
    published = Published()
    faults = FaultReporter(logger, published, clock)
    return JobLedger(context, logger, published, faults), context, published


def test_ledger_puts_the_current_job_into_the_context_and_finishes_it(
    clock: ManualClock, logger: logging.Logger, store: Store
) -> None:
    ledger, context, published = make_ledger(clock, logger)
    store.add_job("task", data={"size": 3, "id": "not copied"}, job_id="j1")
    job = store.claim_job("parts_test")
    assert job is not None
    ledger.claimed(job, current=True)
    assert (context["id"], context["job_id"], context["size"]) == ("j1", "j1", 3)
    assert ledger.current is not None and ledger.token("j1") == job.claim_token
    assert ledger.snapshot == (ledger.current,)
    assert ledger.finish_current(store)
    assert "size" not in context and ledger.current is None and ledger.snapshot == ()
    finished = store.get_job("j1")
    assert finished is not None and finished.status == "completed"
    assert published.kinds() == ["job_claimed", "job_completed"]


def test_ledger_fails_the_current_job_after_a_failed_action(
    clock: ManualClock, logger: logging.Logger, store: Store
) -> None:
    ledger, _, published = make_ledger(clock, logger)
    store.add_job("task", job_id="j1", max_attempts=1)
    job = store.claim_job("parts_test")
    assert job is not None
    ledger.claimed(job, current=True)
    ledger.current_failed("bash exited 1")
    assert ledger.finish_current(store)
    failed = store.get_job("j1")
    assert failed is not None and failed.status == "failed"
    assert failed.last_error == "bash exited 1"
    assert published.records[-1]["kind"] == "job_failed"


def test_ledger_discards_the_outcome_of_a_job_whose_lease_was_lost(
    clock: ManualClock, logger: logging.Logger, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER_NAME)
    ledger, _, published = make_ledger(clock, logger)
    store.add_job("task", job_id="current")
    store.add_job("task", job_id="held")
    current = store.claim_job("parts_test")
    held = store.claim_job("parts_test")
    assert current is not None and held is not None
    ledger.claimed(current, current=True)
    ledger.claimed(held, current=False)
    current_claim, held_claim = ledger.claims["current"], ledger.claims["held"]

    ledger.lease_lost(held_claim)  # a held job no longer ours is simply forgotten
    assert "held" not in ledger.claims
    ledger.lease_lost(current_claim)  # the current one is kept, marked lost
    assert current_claim.lost and ledger.current is current_claim
    assert messages(caplog, logging.WARNING)[0].startswith("lost the lease of job current")
    assert ledger.finish_current(store)  # not attempted, not the action's failure
    untouched = store.get_job("current")
    assert untouched is not None and untouched.status == "processing"
    assert published.kinds()[-1] == "error"
    assert not ledger.finish(store, "unknown-job")


# --- inbox ----------------------------------------------------------------------------------


class FakeMachine:
    """Accepts the events in ``accepts`` (the inbox only asks ``can_fire`` and ``state``)."""

    def __init__(self, accepts: set[str]) -> None:
        self.accepts = accepts
        self.state = "idle"

    def can_fire(self, event: str) -> bool:
        return event in self.accepts


def test_inbox_drops_events_without_a_transition_and_holds_the_one_applied(
    clock: ManualClock, logger: logging.Logger, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER_NAME)
    published = Published()
    context: dict[str, Any] = {}
    inbox = Inbox(
        FakeMachine({"go"}),  # type: ignore[arg-type]
        "parts_test",
        30,
        context,
        {"go": {"size": "payload.size"}},
        logger,
        published,
        FaultReporter(logger, published, clock),
    )
    store.send_event("parts_test", "unknown", source="other")
    store.send_event("parts_test", "go", payload={"size": 7}, source="other")
    assert inbox.take(store)
    row = inbox.taken
    assert row is not None and row.event_type == "go"
    assert published.kinds() == ["unhandled_event"]
    inbox.taken = None
    inbox.apply(store, row)
    assert context["size"] == 7 and context["payload"] == {"size": 7}
    assert inbox.held is row
    statuses = {event.event_type: event.status for event in store.list_events("parts_test")}
    assert statuses["unknown"] == "done" and statuses["go"] != "done"
    assert inbox.done(store) and inbox.held is None
    assert {event.status for event in store.list_events("parts_test")} == {"done"}
    assert not inbox.take(store)


# --- stopping -------------------------------------------------------------------------------


def test_give_back_releases_the_job_and_events_and_marks_the_machine_stopped(
    clock: ManualClock, logger: logging.Logger, store: Store
) -> None:
    store.register_machine("parts_test", "waiting")
    store.add_job("task", job_id="j1")
    job = store.claim_job("parts_test")
    store.send_event("parts_test", "go")
    [row] = store.claim_events("parts_test", 1)
    assert job is not None and job.claim_token is not None
    released = give_back(
        store,
        machine_name="parts_test",
        state="processing",
        job=Claim(job.id, job.claim_token, current=True),
        events=(row, None),
        lease_seconds=30,
        logger=logger,
        clock=clock,
        sleep=clock.advance,
    )
    assert released == "j1"
    pending = store.get_job("j1")
    assert pending is not None and (pending.status, pending.attempts) == ("pending", 0)
    assert [event.status for event in store.list_events("parts_test")] == ["pending"]
    machine = store.get_machine("parts_test")
    assert machine is not None and (machine.state, machine.status) == ("processing", "stopped")


def test_give_back_retries_a_refused_write_until_the_lease_would_have_ended(
    clock: ManualClock, logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER_NAME)
    refusing = RefusingStore()
    started = clock.monotonic()
    released = give_back(
        refusing,  # type: ignore[arg-type]
        machine_name="parts_test",
        state="waiting",
        job=Claim("j1", "token", current=True),
        events=(),
        lease_seconds=1,
        logger=logger,
        clock=clock,
        sleep=clock.advance,
    )
    assert released is None
    attempts = int(1 / STOP_RETRY_SECONDS) + 1
    assert refusing.calls.count("release_job") == attempts
    assert clock.monotonic() - started == pytest.approx(1.0)
    logged = messages(caplog)
    assert logged[0] == (
        "cannot release job j1 yet: release_job: database is locked (retrying for up to 1s; "
        "Ctrl-C again to exit now)"
    )
    assert logged[1] == (
        "cannot release job j1: release_job: database is locked (giving up: its lease ends "
        "meanwhile)"
    )
    # past the deadline, the state and the stop are tried once each
    assert refusing.calls[-2:] == ["update_machine", "stop_machine"]


def test_give_back_leaves_a_job_whose_lease_was_lost(
    clock: ManualClock, logger: logging.Logger
) -> None:
    refusing = RefusingStore()
    give_back(
        refusing,  # type: ignore[arg-type]
        machine_name="parts_test",
        state="waiting",
        job=Claim("j1", "token", current=True, lost=True),
        events=(),
        lease_seconds=0,
        logger=logger,
        clock=clock,
        sleep=clock.advance,
    )
    assert "release_job" not in refusing.calls


# --- children -------------------------------------------------------------------------------


class FakeChild:
    def __init__(self) -> None:
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode


def test_children_are_forgotten_once_they_have_exited() -> None:
    children = ChildProcesses()
    running, finished = FakeChild(), FakeChild()
    children.track(running)
    children.track(finished)
    finished.returncode = 0
    children.reap()
    assert children._running == [running]


# --- monitor feed, and the engine on a manual clock -----------------------------------------


class RecordingPublisher:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def publish(self, record: dict[str, Any]) -> None:
        self.records.append(record)


def test_monitor_feed_stamps_records_with_the_clock_and_the_current_job(
    clock: ManualClock, logger: logging.Logger, store: Store
) -> None:
    ledger, _, _ = make_ledger(clock, logger)
    feed = MonitorFeed("parts_test", ledger, clock)
    feed.publish("transition")  # not open: nothing, no error
    publisher = RecordingPublisher()
    feed._publisher = publisher
    store.add_job("task", job_id="j1")
    job = store.claim_job("parts_test")
    assert job is not None
    ledger.claimed(job, current=True)
    clock.advance(2.5)
    feed.publish("transition", **{"from": "a", "event": "go", "to": "b"})
    assert publisher.records == [
        {
            "kind": "transition",
            "machine": "parts_test",
            "from": "a",
            "event": "go",
            "to": "b",
            "job_id": "j1",
            "ts": clock.time(),
        }
    ]
    assert clock.time() == 1_800_000_002.5


class StagingStore:
    """Takes what a feed stages (the feed reads ``history_enabled`` and ``trace_id``)."""

    history_enabled = True
    trace_id = "01JQ8ZK5V3A5B2C7D9E0F1G2H3"

    def __init__(self) -> None:
        self.staged: list[tuple[Any, ...]] = []

    def stage_history(self, entry: tuple[Any, ...]) -> None:
        self.staged.append(entry)


def test_monitor_feed_stages_the_rows_history_entry_makes(
    clock: ManualClock, logger: logging.Logger, store: Store
) -> None:
    """The feed builds its staged rows itself (every transition of every job: the hot path),
    so they are checked against ``history_entry``, the one definition of a row."""
    from smc.runtime.store import configuration_text, history_entry

    ledger, _, _ = make_ledger(clock, logger)
    feed = MonitorFeed("parts_test", ledger, clock)
    staging = StagingStore()
    feed.record_to(cast(Store, staging))
    feed.publish("transition", **{"from": "a", "event": "go", "to": "b"})
    store.add_job("task", job_id="j1")
    job = store.claim_job("parts_test")
    assert job is not None
    ledger.claimed(job, current=True)
    feed.publish(
        "transition", **{"from": "b", "event": "on", "to": "c"}, configuration=["c", "r.x"]
    )
    feed.publish("error", error="e" * 900, job_id="other")
    feed.publish("unhandled_event", event="nope", source="sender")
    feed.publish("job_claimed", job_id="j1")  # the store writes that one: not staged
    now, trace = clock.time(), staging.trace_id
    assert staging.staged == [
        history_entry(
            "transition", "parts_test", ts=now, from_state="a", event="go", to_state="b",
            trace_id=trace,
        ),
        history_entry(
            "transition", "parts_test", ts=now, from_state="b", event="on", to_state="c",
            job_id="j1", attempt=1, trace_id=trace,
            configuration=configuration_text(["c", "r.x"]),
        ),
        history_entry(
            "error", "parts_test", ts=now, job_id="other", attempt=1, trace_id=trace,
            excerpt_text="e" * 900,
        ),
        history_entry(
            "event_dropped", "parts_test", ts=now, event="nope", job_id="j1", attempt=1,
            trace_id=trace, source="sender",
        ),
    ]  # fmt: skip


def test_the_engine_runs_on_an_injected_clock(tmp_path: Path) -> None:
    machine = compile_machine(
        """
initial_state: waiting
transitions:
  - {from: waiting, to: done, event: new_job}
  - {from: waiting, to: done, event: no_jobs}
actions:
  waiting:
    - {type: check_database_queue, wait: 0.2}
""",
        tmp_path,
    )
    database = tmp_path / "smc.db"
    with contextlib.closing(open_store(str(database))) as store:
        store.add_job("task", job_id="j1")
    engine = run_engine(machine, database, clock=ManualClock())
    assert engine.context["current_state"] == "done"
    with contextlib.closing(open_store(str(database))) as store:
        job = store.get_job("j1")
        machine_row = store.get_machine(engine.machine_name)
    assert job is not None and job.status == "completed"
    assert machine_row is not None and machine_row.status == "stopped"


def _pruning_heartbeat(
    database: str,
    store: Store,
    clock: ManualClock,
    logger: logging.Logger,
    retention: float,
    claims: list[Claim] | None = None,
) -> Heartbeat:
    """A heartbeat with a history retention, holding ``claims``, its callbacks doing nothing."""
    return Heartbeat(
        database=database,
        main_store=store,
        machine_name="parts_test",
        lease_seconds=30,
        claims=lambda: claims or [],
        held_event=lambda: None,
        reap_children=lambda: None,
        on_lease_lost=lambda claim: None,
        on_database_replaced=lambda reason: None,
        logger=logger,
        clock=clock,
        history_retention=retention,
    )


def test_the_heartbeat_prunes_by_the_retention_a_minute_after_start_then_hourly(
    database: str, store: Store, clock: ManualClock, logger: logging.Logger
) -> None:
    import time

    from smc.runtime.heartbeat import FIRST_PRUNE_DELAY, PRUNE_INTERVAL
    from smc.runtime.store import history_entry

    week = 7 * 86400.0

    def record(age: float, event: str) -> None:
        store.stage_history(history_entry("error", "m", ts=time.time() - age, event=event))
        store.flush_history()

    def events() -> list[str | None]:
        return [row.event for row in store.history()]

    heartbeat = _pruning_heartbeat(database, store, clock, logger, week)
    try:
        record(8 * 86400, "old")
        record(60, "young")
        heartbeat.beat_round()
        assert events() == ["old", "young"]  # not in the first minute
        clock.advance(FIRST_PRUNE_DELAY)
        heartbeat.beat_round()
        heartbeat.join_prune(10)  # on its own thread
        assert events() == ["young"]
        # Finished jobs go by the same policy: one finished 8 days ago (its row aged).
        job = store.add_job("task", job_id="done-long-ago")
        store.claim_job("w", ["task"])
        store.complete_job(job.id)
        age_rows(store, 8 * 86400)
        clock.advance(PRUNE_INTERVAL / 2)
        heartbeat.beat_round()
        heartbeat.join_prune(10)
        assert store.get_job("done-long-ago") is not None  # not again within the hour
        clock.advance(PRUNE_INTERVAL / 2)
        heartbeat.beat_round()
        heartbeat.join_prune(10)
        assert store.get_job("done-long-ago") is None
    finally:
        heartbeat.close()


def test_a_long_prune_never_holds_up_the_renewal_of_a_lease(
    database: str, store: Store, clock: ManualClock, logger: logging.Logger
) -> None:
    """The hourly prune runs beside the heartbeat: on its thread, a prune of millions of rows
    (7 s on PostgreSQL, in a review) let a job's lease expire, and another worker ran it."""
    import threading
    import time

    from smc.runtime.heartbeat import FIRST_PRUNE_DELAY

    store.add_job("task", job_id="held")
    claimed = store.claim_job("w", ["task"], lease_seconds=30)
    assert claimed is not None and claimed.claim_token is not None
    claim = Claim(claimed.id, claimed.claim_token, current=True)
    pruning, release = threading.Event(), threading.Event()

    def slow_prune(pruned_store: Store, retention: float) -> None:
        pruning.set()
        release.wait(20)

    heartbeat = _pruning_heartbeat(database, store, clock, logger, 86400.0, [claim])
    heartbeat.prune = slow_prune  # type: ignore[method-assign, assignment]
    try:
        clock.advance(FIRST_PRUNE_DELAY)
        started = time.monotonic()
        heartbeat.beat_round()  # a beat is due too: the renewal comes first, then the prune
        assert pruning.wait(10)
        before = store.get_job("held")
        assert before is not None and before.lease_expires_at is not None
        time.sleep(0.05)
        clock.advance(heartbeat.interval)
        heartbeat.beat_round()  # the prune still going: the lease is renewed all the same
        renewed = store.get_job("held")
        assert renewed is not None and renewed.lease_expires_at is not None
        assert renewed.lease_expires_at > before.lease_expires_at
        assert time.monotonic() - started < 5
    finally:
        release.set()
        heartbeat.join_prune(10)
        heartbeat.close()


class _Exited(BaseException):
    """Stands for ``os._exit`` after a forced close: nothing after it runs."""


def test_a_forced_close_interrupting_the_normal_one_still_removes_the_socket_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logger: logging.Logger
) -> None:
    # A second Ctrl-C runs its handler in the main thread between two steps of whatever it
    # interrupted: here the machine's own close of its waker, halfway. The forced close that
    # the handler makes (then os._exit) must still remove the socket files.
    sockets = Path(tempfile.mkdtemp(prefix="smc-s-", dir="/tmp"))  # a short path, for bind()
    monkeypatch.setenv("SMC_SOCKET_DIR", str(sockets))
    with open_store(tmp_path / "smc.db") as store:
        waker = store.open_waker(["machine:w", JOBS_CHANNEL])
        loop = asyncio.new_event_loop()
        try:
            wakeups = Wakeups(logger)
            wakeups.listen_events(loop, waker)
            files = list(sockets.rglob("*.sock"))
            assert len(files) == 2
            close = waker.close
            interrupted = False

            def close_interrupted() -> None:
                nonlocal interrupted
                if not interrupted:  # the signal arrives once, inside the first close
                    interrupted = True
                    wakeups.close(forced=True)
                    raise _Exited
                close()

            monkeypatch.setattr(waker, "close", close_interrupted)
            with pytest.raises(_Exited):
                wakeups.close()
            assert [path for path in files if path.exists()] == []
        finally:
            loop.close()
            shutil.rmtree(sockets, ignore_errors=True)
