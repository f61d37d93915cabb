"""The history as the store keeps it, on both backends (``docs/history.md``): what each
write records and in which trace, the filters, following it as it commits (PostgreSQL's
NOTIFY waking the follower), and a follower's patience with ids that commit out of order."""

from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path
from typing import Any, cast

import pytest

from smc.runtime.history import HistoryCursor, follow_history, history_ends
from smc.runtime.store import HistoryRow, history_entry, open_store
from smc.runtime.store.postgres import PostgresStore


def test_writes_record_their_history_in_the_trace_they_belong_to(store_url: str) -> None:
    with open_store(store_url) as store:
        job = store.add_job("task", {"big": "x" * 5000}, job_id="j1")
        assert job.trace_id is not None and len(job.trace_id) == 26  # a ULID
        claimed = store.claim_job("w1", ["task"])
        assert claimed is not None and claimed.trace_id == job.trace_id
        store.trace_id = claimed.trace_id  # a worker works in its job's trace
        store.send_event("other", "ping", {"n": 1}, source="w1", job_id="j1")
        child = store.add_job("subtask", job_id="j2")
        assert store.fail_job("j1", "boom", claimed.claim_token, retry=True)
        store.trace_id = None
        outside = store.send_event("other", "pong")
        rows = store.history(limit=100)
        [event] = [e for e in store.list_events() if e.id == outside]
    assert [(row.kind, row.machine, row.job_id) for row in rows] == [
        ("job_added", "", "j1"),
        ("job_claimed", "w1", "j1"),
        ("event_sent", "other", "j1"),
        ("job_added", "", "j2"),
        ("job_retried", "w1", "j1"),
        ("event_sent", "other", None),
    ]
    # What the job caused carries its trace; what came from outside starts a new one.
    assert child.trace_id == job.trace_id
    assert {row.trace_id for row in rows[:5]} == {job.trace_id}
    assert rows[5].trace_id == event.trace_id != job.trace_id
    # Excerpts are bounded; the retry says why, and which attempt failed.
    assert rows[0].excerpt is not None and len(rows[0].excerpt) == 500
    assert rows[4].excerpt == "boom" and rows[4].attempt == 1
    # the payload as the database keeps it (PostgreSQL's jsonb spaces it)
    assert rows[2].source == "w1" and json.loads(rows[2].excerpt or "") == {"n": 1}
    assert [row.id for row in rows] == sorted({row.id for row in rows})


def test_history_filters(store_url: str) -> None:
    with open_store(store_url) as store:
        store.add_job("task", job_id="a")
        store.add_job("task", job_id="b", machine_type="m2")
        first = store.history()
        store.register_machine("m1", "idle")
        store.update_machine("m1", "busy")
        store.stop_machine("m1")
        everything = store.history()
        assert [row.job_id for row in store.history(job_id="b")] == ["b"]
        assert [row.kind for row in store.history(machine="m1")] == [
            "machine_started",
            "machine_stopped",
        ]
        assert store.history(machine="m1", kinds=["machine_stopped"])[0].from_state == "busy"
        assert store.history(kinds=[]) == []
        assert store.history(after_id=first[-1].id) == everything[2:]
        assert store.history(limit=1) == everything[:1]
        # The newest that match, still in the order recorded, with every filter.
        assert store.history(limit=2, newest=True) == everything[-2:]
        assert store.history(limit=99, newest=True) == everything
        assert store.history(machine="m1", limit=1, newest=True) == everything[-1:]
        assert store.history(after_id=first[0].id, kinds=["job_added"], limit=1, newest=True) == [
            first[1]
        ]
        assert store.history(trace_id=everything[0].trace_id) == everything[:1]
        trace = everything[0].trace_id
        assert trace is not None and store.history(trace_id=trace.lower()) == everything[:1]
        assert store.history(since=time.time() + 60) == []
        assert store.last_history_id() == everything[-1].id


def test_last_history_rows_are_each_machines_newest_of_the_kinds_in_the_id_range(
    store_url: str,
) -> None:
    """What the web monitor asks for the machines its seed does not show: the newest row of
    each named machine among the kinds, inside the range of ids, and nothing for a machine
    with none there."""
    with open_store(store_url) as store:
        for machine, kind, to in (
            ("d", "transition", "too_old"),  # below the range
            ("a", "transition", "one"),
            ("b", "machine_started", "idle"),
            ("a", "transition", "two"),
            ("a", "error", None),  # not a kind asked for
            ("c", "transition", "not_named"),
            ("b", "transition", "at_the_bound"),  # at before_id: not below it
            ("a", "transition", "after"),
        ):
            store.stage_history(
                history_entry(kind, machine, ts=time.time(), to_state=to, event="e")
            )
        store.flush_history()
        ids = [row.id for row in store.history()]
        found = store.last_history_rows(
            ["b", "a", "d", "nobody"], ["transition", "machine_started"], ids[6], rows=5
        )
        assert [(row.machine, row.to_state, row.id) for row in found] == [
            ("b", "idle", ids[2]),
            ("a", "two", ids[3]),
        ]
        # Two ids fewer to look through: the row of b is out of reach.
        shorter = store.last_history_rows(["a", "b"], ["transition", "machine_started"], ids[6], 3)
        assert [(row.machine, row.to_state) for row in shorter] == [("a", "two")]
        assert store.last_history_rows([], ["transition"], ids[6], rows=6) == []
        assert store.last_history_rows(["a"], [], ids[6], rows=6) == []


def test_a_ulid_set_in_lower_case_is_stored_as_trace_ids_are_made(store_url: str) -> None:
    """A trace id is looked for in upper case whatever case it is typed in: one set in lower
    case through the API is stored so (it was once kept as given, and never found)."""
    lower = "01m8fyvgq05j72ypbpkjtf9qzz"
    with open_store(store_url) as store:
        store.trace_id = lower
        assert store.trace_id == lower.upper()
        store.send_event("sink", "e", {"p": 2})
        job = store.add_job("task", trace_id="01m8fyvgq05j72ypbpkjtf9qzy")
        store.trace_id = "not-a-ulid-but-kept"  # other text is taken as it is
        other = store.add_job("task")
        assert [row.kind for row in store.history(trace_id=lower)] == ["event_sent"]
        assert job.trace_id == "01M8FYVGQ05J72YPBPKJTF9QZY"
        assert other.trace_id == "not-a-ulid-but-kept"


def test_a_machines_stop_is_in_the_trace_it_works_in_and_a_received_event_has_no_attempt(
    store_url: str,
) -> None:
    """A child stopping while it handles its parent's event stops in that trace; an event's
    delivery count is not the attempt of the job that sent it (once it stood there)."""
    with open_store(store_url) as store:
        store.register_machine("child", "working")
        job = store.add_job("task", job_id="parent-job")
        claimed = store.claim_job("parent", ["task"])
        assert claimed is not None
        store.trace_id = claimed.trace_id
        store.send_event("child", "done", job_id="parent-job")
        assert len(store.claim_events("child", 1)) == 1
        store.stop_machine("child")
        rows = store.history(limit=100)
    by_kind = {row.kind: row for row in rows}
    assert by_kind["machine_stopped"].trace_id == job.trace_id
    received = by_kind["event_received"]
    assert (received.job_id, received.attempt, received.trace_id) == (
        "parent-job",
        None,
        job.trace_id,
    )


def test_history_ends_are_every_row_up_to_the_limit_then_the_first_and_last_halves(
    store_url: str,
) -> None:
    with open_store(store_url) as store:
        for n in range(7):
            store.stage_history(history_entry("transition", "m", ts=time.time(), event=f"e{n}"))
        store.flush_history()

        def events(limit: int) -> tuple[list[str | None], bool]:
            rows, cut = history_ends(store.history, limit, machine="m")
            return [row.event for row in rows], cut

        every = [f"e{n}" for n in range(7)]
        assert events(8) == (every, False)
        assert events(7) == (every, False)  # exactly the limit: nothing left out
        assert events(6) == (["e0", "e1", "e2", "e4", "e5", "e6"], True)
        assert events(4) == (["e0", "e1", "e5", "e6"], True)


def test_a_prune_goes_in_batches_and_keeps_a_young_row_below_an_old_ones_id(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleted a batch at a time (one transaction for millions of rows held SQLite's lock
    past every writer's timeout), and by each row's own time: on PostgreSQL a row whose id
    is below an old row's may commit after the prune looked (it was deleted however young)."""
    monkeypatch.setattr("smc.runtime.store.sql.PRUNE_BATCH", 3)
    with open_store(store_url) as store:
        for n in range(7):
            store.add_job("old", job_id=f"j{n}")
            claimed = store.claim_job("w", ["old"])
            assert claimed is not None and store.complete_job(f"j{n}", claimed.claim_token)
        store.add_job("old", job_id="open")  # pending: never pruned
        time.sleep(0.05)
        removed = store.prune_history(0.02)
        assert (removed["jobs"], removed["history"]) == (7, 7 * 3)  # added, claimed, completed
        assert [job.id for job in store.list_jobs(limit=100)] == ["open"]

        now = time.time()
        ages = [7200] * 5 + [0] + [7200] * 4 + [0, 0]
        for n, age in enumerate(ages):
            store.stage_history(history_entry("transition", "m", ts=now - age, event=f"e{n}"))
        store.flush_history()
        # The prune looks for the first young row before e5 commits (PostgreSQL's ids commit
        # out of order): its window of ids then reaches past e5.
        statements = store._sql  # type: ignore[attr-defined]
        monkeypatch.setattr(statements, "first_young_history", statements.last_history_id)
        removed = store.prune_history(60)
        assert [row.event for row in store.history(machine="m", limit=100)] == [
            "e5",
            "e10",
            "e11",
        ]
        assert removed["history"] == 9


def test_an_excerpt_of_non_ascii_data_reads_as_the_data_on_both_backends(store_url: str) -> None:
    """SQLite keeps the JSON text Python makes, all ASCII: its excerpts read ``\\u00e9``
    (a sixth as much data in 500 characters, cut inside an escape) where PostgreSQL's read
    ``é``. Written out, both hold the data; escapes that must stay do."""
    with open_store(store_url) as store:
        job = store.add_job("exc", {"k": "é" * 600})
        other = store.add_job("exc", {"e": "😀 \\u00e9 \x01"})
        [long_row] = store.history(job_id=job.id)
        [short_row] = store.history(job_id=other.id)
    text = (long_row.excerpt or "").replace(" ", "")
    assert text.startswith('{"k":"éééé') and text.endswith("é…")
    assert len(long_row.excerpt or "") == 500
    assert json.loads(short_row.excerpt or "") == {"e": "😀 \\u00e9 \x01"}
    assert "😀" in (short_row.excerpt or "")


def test_follow_history_sees_rows_as_they_commit(store_url: str) -> None:
    postgres = store_url.startswith("postgresql")
    with open_store(store_url) as reader, open_store(store_url) as writer:
        if isinstance(writer, PostgresStore):
            writer.backend.history_ring_gap = 0.0  # every write rings (see the next test)
        writer.add_job("task", job_id="before")  # before the follower: not seen
        seen: list[tuple[HistoryRow, float]] = []
        stop = threading.Event()

        def follow() -> None:
            # PostgreSQL: a long poll, so only the NOTIFY can bring the rows in time.
            rows = follow_history(reader, poll_seconds=30.0 if postgres else 0.05, stop=stop.is_set)
            for row in rows:
                seen.append((row, time.monotonic()))
                if len(seen) == 5:
                    return

        thread = threading.Thread(target=follow)
        thread.start()
        time.sleep(0.5)  # the follower is waiting
        added = time.monotonic()
        for name in ("one", "two", "three"):
            writer.add_job("task", job_id=name)
        time.sleep(0.2)
        job = writer.claim_job("w", ["task"])  # a write recording in its own statement (PG)
        assert job is not None
        claimed = time.monotonic()
        writer.complete_job(job.id, job.claim_token)
        thread.join(10)
        stop.set()
        assert not thread.is_alive()
    assert [(row.kind, row.job_id) for row, _ in seen] == [
        ("job_added", "one"),
        ("job_added", "two"),
        ("job_added", "three"),
        ("job_claimed", "before"),
        ("job_completed", "before"),
    ]
    assert seen[2][1] - added < 3.0 and seen[-1][1] - claimed < 3.0


@pytest.mark.postgres
def test_a_postgres_connection_rings_the_history_channel_at_most_once_a_gap() -> None:
    # A NOTIFY costs the server about 20 µs per connection listening on any channel (each
    # machine's wake-up connection): one per history write took two cores for 50 machines.
    import psycopg

    from smc.runtime.store import HISTORY_CHANNEL
    from smc.runtime.store.waker import postgres_channel_name
    from tests.support.backends import PG_URL, postgres_schema_url

    with postgres_schema_url() as url, open_store(url) as writer:
        assert isinstance(writer, PostgresStore)
        name = postgres_channel_name(writer.schema, HISTORY_CHANNEL)
        with psycopg.connect(PG_URL, autocommit=True) as listener:
            listener.execute(f'LISTEN "{name}"')

            def rings() -> int:
                return sum(1 for note in listener.notifies(timeout=1.0) if note.channel == name)

            writer.backend.history_ring_gap = 30.0
            for number in range(3):
                writer.add_job("task", job_id=f"gap-{number}")  # a transaction of its own
            job = writer.claim_job("w", ["task"])  # recorded in the statement itself
            assert job is not None
            writer.complete_job(job.id, job.claim_token)
            assert rings() == 1
            writer.backend.history_ring_gap = 0.0
            for number in range(3):
                writer.add_job("task", job_id=f"each-{number}")
            assert rings() == 3
        assert len(writer.history(kinds=["job_added"])) == 6  # every row is written


@pytest.mark.postgres
def test_rows_after_a_gap_that_never_fills_flow_on_while_it_is_waited_for() -> None:
    """A rolled-back insert leaves a gap in PostgreSQL's ids for ever. Followers wait a while
    for it (it may be a row not committed yet), and meanwhile once read from below it, the
    same ``batch`` rows each time, in a loop without a pause: more than a batch of rows
    after the gap stalled every follower for 5 s. Here the 25 rows after the gap come, 10 a
    read, in the first three turns of the loop."""
    import psycopg

    from smc.runtime.history import follow_history
    from tests.support.backends import PG_URL, postgres_schema_url

    with postgres_schema_url() as url, open_store(url) as store:
        assert isinstance(store, PostgresStore)
        store.add_job("task", job_id="before")
        start = store.last_history_id()
        with psycopg.connect(PG_URL, autocommit=True) as connection:
            connection.execute(f"SELECT nextval('\"{store.schema}\".history_id_seq')")
        for number in range(25):
            store.add_job("task", job_id=f"after-{number}")
        turns = []

        def stop() -> bool:
            turns.append(None)
            return len(turns) > 20

        seen = []
        for row in follow_history(store, start, stop=stop, batch=10, poll_seconds=0.01):
            seen.append(row.job_id)
            if len(seen) == 25:
                break
    assert seen == [f"after-{number}" for number in range(25)]
    assert len(turns) <= 3  # the gap still waited for (GAP_PATIENCE): no turn lost to it


def _row(row_id: int) -> HistoryRow:
    return HistoryRow(row_id, 0.0, "m", "transition", "a", "go", "b", None, None, None, None, None)


def test_a_follower_waits_for_ids_that_commit_out_of_order() -> None:
    now = [100.0]
    cursor = HistoryCursor(after_id=9, clock=lambda: now[0])
    # 11 committed before 10 (a PostgreSQL sequence hands ids out before commit)
    assert [row.id for row in cursor.take([_row(11)])] == [11]
    assert cursor.low == 9  # still reading from below the gap
    assert [row.id for row in cursor.take([_row(10), _row(11), _row(12)])] == [10, 12]
    assert cursor.low == 12
    # a gap that never fills (a rolled-back insert) is given up after the patience
    assert [row.id for row in cursor.take([_row(14)])] == [14]
    assert cursor.low == 12
    now[0] += 6.0
    assert cursor.take([_row(14)]) == []
    assert cursor.low == 14
    # ids that follow on with none missing (every read of a busy SQLite history) pass whole
    assert [row.id for row in cursor.take([_row(15), _row(16), _row(17)])] == [15, 16, 17]
    assert cursor.low == 17
    assert cursor.take([_row(16), _row(17)]) == []  # read again: nothing new
    # and a gap among them is still noted and waited for
    assert [row.id for row in cursor.take([_row(18), _row(20)])] == [18, 20]
    assert cursor.low == 18
    assert [row.id for row in cursor.take([_row(19), _row(20), _row(21)])] == [19, 21]
    assert cursor.low == 21


def test_follow_history_filters_and_ends_with_the_caller(store_url: str) -> None:
    from smc.runtime.history import follow_history

    with open_store(store_url) as reader, open_store(store_url) as writer:
        start = reader.last_history_id()
        for name in ("a", "b", "a"):
            writer.register_machine(name, "idle")
        seen = []
        deadline = time.monotonic() + 20
        rows = follow_history(
            reader, start, machine="a", poll_seconds=0.05, stop=lambda: time.monotonic() > deadline
        )
        for row in rows:
            seen.append(row)
            if len(seen) == 2:
                break
        rows.close()
    assert [(row.machine, row.kind) for row in seen] == [("a", "machine_started")] * 2


def test_staged_rows_ride_the_next_write_before_its_own(store_url: str) -> None:
    from smc.runtime.store import history_entry

    with open_store(store_url) as store:
        store.add_job("task", job_id="j")
        start = store.last_history_id()
        for event in ("first", "second"):
            store.stage_history(
                history_entry("transition", "w", ts=time.time(), event=event, job_id="j")
            )
        assert store.history(after_id=start) == []  # staged: not written yet
        job = store.claim_job("w", ["task"])
        assert job is not None
        store.stage_history(history_entry("transition", "w", ts=time.time(), event="third"))
        store.complete_job("j", job.claim_token)
        story = [(row.kind, row.event) for row in store.history(after_id=start)]
        # in the order they happened, each write's own row after what was staged before it
        assert story == [
            ("transition", "first"),
            ("transition", "second"),
            ("job_claimed", "task"),
            ("transition", "third"),
            ("job_completed", "task"),
        ]
        store.stage_history(history_entry("error", "w", ts=time.time(), excerpt_text="x" * 900))
        store.flush_history()
        [error] = store.history(after_id=start, kinds=["error"])
        assert error.excerpt == "x" * 499 + "…"


def test_staged_rows_keep_every_value_exactly(store_url: str) -> None:
    """A staged row comes back as it was staged, field by field: PostgreSQL binds the staged
    rows as one JSON array (docs/history.md, "Cost"), which must not round a time, turn an
    attempt into text, or mangle quotes, backslashes, non-ASCII text or NULLs."""
    from smc.runtime.store import configuration_text, history_entry

    staged = [
        history_entry(
            "transition",
            'w "quoted" \\ back',
            ts=1764150000.123456,
            from_state="fetching",
            event="job_done",
            to_state="waiting",
            job_id="j-ü",
            attempt=3,
            trace_id="01JQ8ZK5V3A5B2C7D9E0F1G2H3",
            source="sender",
            excerpt_text='{"a": "b\\n", "c": [1, 2]} ✓',
            configuration=configuration_text(["fetching", 'r "1" \\', "ü"]),
        ),
        history_entry("error", "w", ts=0.1 + 0.2, excerpt_text="x" * 499 + "…"),
        history_entry("event_dropped", "w", ts=1.5),
    ]
    with open_store(store_url) as store:
        store.add_job("task", job_id="j")
        start = store.last_history_id()
        for entry in staged:
            store.stage_history(entry)
        # a write that records in its own statement on PostgreSQL
        assert store.claim_job("w", ["task"]) is not None
        rows = store.history(after_id=start)
    assert [row.kind for row in rows] == ["transition", "error", "event_dropped", "job_claimed"]
    fields = ("ts", "machine", "kind", "from_state", "event", "to_state", "job_id", "attempt")
    fields += ("trace_id", "source", "excerpt")
    for row, entry in zip(rows, staged, strict=False):
        assert tuple(getattr(row, name) for name in fields) == entry[:-1]
    assert type(rows[0].attempt) is int
    assert rows[0].configuration == ("fetching", 'r "1" \\', "ü")
    assert [row.configuration for row in rows[1:]] == [None, None, None]


def test_history_lines_carry_the_record_history_record_makes_for_every_kind(
    store_url: str,
) -> None:
    """``Store.history_lines`` (what the web monitor's feed reads) has the database make each
    row's monitor record as JSON: for every kind it parses to exactly what
    ``history_record`` makes of the same row (``error`` or ``excerpt``, a statechart's
    configuration only where there is one, the time to the last digit), with no raw line
    break whatever a name or excerpt holds, and its columns are the row's."""
    from smc.runtime.history import follow_history_lines, history_record
    from smc.runtime.store import HISTORY_KINDS, configuration_text, history_entry

    hostile = 'w "q" \\ <b>ü</b>\r\n\u2028'
    with open_store(store_url) as store:
        start = store.last_history_id()
        for number, kind in enumerate(HISTORY_KINDS):
            store.stage_history(
                history_entry(
                    kind,
                    f"{hostile}{number}",
                    ts=1764150000.123456 + number / 7,
                    from_state="a\nb",
                    event="e\r",
                    to_state="c",
                    job_id=f"j{number}" if number % 2 else None,
                    attempt=number if number % 3 else None,
                    trace_id="01JQ8ZK5V3A5B2C7D9E0F1G2H3",
                    source="s" if number % 2 else None,
                    excerpt_text=f"text {hostile}" if number % 4 else None,
                    configuration=(
                        configuration_text(["a", 'r "1"']) if kind == "transition" else None
                    ),
                )
            )
        store.flush_history()
        rows = store.history(after_id=start)
        lines = store.history_lines(start, limit=5)
        lines += store.history_lines(lines[-1].id)
        follower = follow_history_lines(store, start, poll_seconds=0.01, batch=7)
        batches = list(itertools.islice(follower, 3))
        follower.close()
    assert [row.kind for row in rows] == list(HISTORY_KINDS)
    assert [line.id for line in lines] == [row.id for row in rows]
    for line, row in zip(lines, rows, strict=True):
        assert "\r" not in line.record and "\n" not in line.record
        assert json.loads(line.record) == history_record(row)
        assert line[:9] == (
            row.id,
            row.kind,
            row.machine,
            row.from_state,
            row.event,
            row.to_state,
            row.job_id,
            row.source,
            row.ts,
        )
        if row.configuration is None:
            assert line.configuration is None
        else:
            assert json.loads(line.configuration or "") == list(row.configuration)
    assert "configuration" in json.loads(lines[0].record)  # the transition
    assert "configuration" not in json.loads(lines[1].record)
    # each once, in order, a list a read (of at most 7)
    assert [len(batch) for batch in batches] == [7, 7, len(HISTORY_KINDS) - 14]
    assert [line for batch in batches for line in batch] == lines


def test_latest_history_lines_keep_each_machines_last_move_claim_and_completion(
    store_url: str,
) -> None:
    """Where ids commit in order (SQLite), ``latest_history_lines`` reads every id up to the
    newest and keeps, of each machine, only the last transition into another state, the last
    one within a state, the last claim and the last completion; everything else, and every
    move of a workflow's task (``source``), passes. PostgreSQL says it cannot (None)."""
    from smc.runtime.store import history_entry

    def move(machine: str, going: str, to: str, **extra: Any) -> tuple[Any, ...]:
        return history_entry(
            "transition", machine, ts=1.0, from_state=going, event="e", to_state=to, **extra
        )

    staged = [
        move("w", "idle", "busy"),  # 1 superseded by 8
        history_entry("job_claimed", "w", ts=1.0, job_id="j1"),  # 2 superseded by 9
        move("v", "a", "b"),  # 3 kept: v's last
        move("wf/t", "PENDING", "RUNNING", source="run"),  # 4 kept: a task's move
        history_entry("job_completed", "w", ts=1.0, job_id="j1"),  # 5 kept: w's last completion
        history_entry("error", "w", ts=1.0, excerpt_text="boom"),  # 6 kept
        move("w", "busy", "busy"),  # 7 kept: w's last move within a state
        move("w", "busy", "idle"),  # 8 kept: w's last move into another state
        history_entry("job_claimed", "w", ts=1.0, job_id="j2"),  # 9 kept
        move("wf/t", "RUNNING", "COMPLETED", source="run"),  # 10 kept
    ]
    with open_store(store_url) as store:
        start = store.last_history_id()
        for entry in staged:
            store.stage_history(entry)
        store.flush_history()
        read = store.latest_history_lines(start)
        if "postgres" in store_url:
            assert read is None
            return
        assert read is not None
        upto, lines = read
        assert upto == start + len(staged)
        assert [line.id - start for line in lines] == [3, 4, 5, 6, 7, 8, 9, 10]
        assert store.latest_history_lines(upto) == (upto, [])
        # at most ``limit`` ids a read, and the next read goes on from there
        first, some = store.latest_history_lines(start, limit=4) or (0, [])
        assert first == start + 4 and [line.id - start for line in some] == [1, 2, 3, 4]
        _, rest = store.latest_history_lines(first) or (0, [])
        assert [line.id - start for line in rest] == [5, 6, 7, 8, 9, 10]


def test_plain_transitions_are_written_without_their_null_tail_and_keep_every_value(
    store_url: str,
) -> None:
    """A batch of transitions whose source, excerpt and configuration are NULL (a worker's
    every claim and completion) is written by the lean statement that does not bind them; a
    batch with one full row among them by the full one. Both come back as staged."""
    from smc.runtime.store import history_entry

    def transition(event: str, job_id: str | None, attempt: int | None) -> tuple[Any, ...]:
        return history_entry(
            "transition",
            "w ü",
            ts=1764150000.5,
            from_state="a",
            event=event,
            to_state="b",
            job_id=job_id,
            attempt=attempt,
            trace_id="01JQ8ZK5V3A5B2C7D9E0F1G2H3",
        )

    lean = [transition("one", "j", 1), transition("two", None, None)]
    mixed = [transition("three", "j", 2), history_entry("error", "w", ts=1.5, source="s")]
    with open_store(store_url) as store:
        start = store.last_history_id()
        for batch in (lean, mixed):
            for entry in batch:
                store.stage_history(entry)
            store.flush_history()
        rows = store.history(after_id=start)
    fields = ("ts", "machine", "kind", "from_state", "event", "to_state", "job_id", "attempt")
    fields += ("trace_id", "source", "excerpt")
    assert [tuple(getattr(row, name) for name in fields) for row in rows] == [
        entry[:-1] for entry in lean + mixed
    ]
    assert [row.configuration for row in rows] == [None] * 4


def test_a_statecharts_configuration_round_trips_and_a_flat_machine_has_none(
    store_url: str,
) -> None:
    """A statechart's start and transitions keep every active state (both regions of a
    parallel state: what the web monitor lights), written staged (in a transaction around a
    write, or in its own statement on PostgreSQL) or by the registration itself; a flat
    machine's rows keep NULL (docs/history.md)."""
    from smc.runtime.store import configuration_text, history_entry

    started = ["active", "download.idle", "verify.idle"]
    moved = ["active", "download.fetching", "verify.idle"]
    with open_store(store_url) as store:
        store.add_job("task", job_id="j")
        start = store.last_history_id()
        store.register_machine("chart", "download.idle", configuration=started)
        store.register_machine("flat", "idle")
        store.stage_history(
            history_entry(
                "transition",
                "chart",
                ts=time.time(),
                from_state="download.idle",
                event="fetch",
                to_state="download.fetching",
                configuration=configuration_text(moved),
            )
        )
        store.stage_history(
            history_entry("transition", "flat", ts=time.time(), from_state="idle", to_state="busy")
        )
        assert store.claim_job("w", ["task"]) is not None  # records in its statement on PG
        store.stage_history(
            history_entry(
                "transition",
                "chart",
                ts=time.time(),
                event="done",
                configuration=configuration_text(started),
            )
        )
        store.flush_history()  # its own transaction
        rows = store.history(after_id=start)
        # the column itself (the store's own connection: either driver's execute)
        stored = (
            cast(Any, store)
            .connection.execute(
                f"SELECT machine, kind, configuration FROM history WHERE id > {int(start or 0)} "
                "ORDER BY id"
            )
            .fetchall()
        )
    assert [(row.machine, row.kind, row.configuration) for row in rows] == [
        ("chart", "machine_started", tuple(started)),
        ("flat", "machine_started", None),
        ("chart", "transition", tuple(moved)),
        ("flat", "transition", None),
        ("w", "job_claimed", None),
        ("chart", "transition", tuple(started)),
    ]
    # a JSON array of state names, NULL where there is none
    assert [tuple(row) for row in stored] == [
        ("chart", "machine_started", json.dumps(started)),
        ("flat", "machine_started", None),
        ("chart", "transition", json.dumps(moved)),
        ("flat", "transition", None),
        ("w", "job_claimed", None),
        ("chart", "transition", json.dumps(started)),
    ]
    assert rows[2].to_dict()["configuration"] == moved
    assert rows[3].to_dict()["configuration"] is None


def test_claims_and_completions_record_their_rows_exactly(store_url: str) -> None:
    """Each claim and completion records one row, from the job as the write left it: the
    worker, the attempt, the trace, the job's time, the result's excerpt cut as ``excerpt``
    cuts it (SQLite writes these rows with triggers, PostgreSQL in the statement)."""
    from smc.runtime.store import excerpt
    from smc.runtime.store.rows import encode_json

    result = {"text": "ü" * 700}
    with open_store(store_url) as store:
        added = store.add_job("task", job_id="a")
        store.add_job("task", job_id="b")
        start = store.last_history_id()
        first = store.claim_job("w1", ["task"])
        assert first is not None and store.complete_job("a", first.claim_token, result)
        second = store.claim_job_by_id("b", "w2")
        assert second is not None and store.complete_job("b", second.claim_token)
        assert not store.complete_job("b", second.claim_token)  # done: no second row
        rows = store.history(after_id=start)
        done_a, done_b = store.get_job("a"), store.get_job("b")
    assert done_a is not None and done_b is not None
    assert [(r.kind, r.machine, r.job_id, r.event, r.attempt) for r in rows] == [
        ("job_claimed", "w1", "a", "task", 1),
        ("job_completed", "w1", "a", "task", 1),
        ("job_claimed", "w2", "b", "task", 1),
        ("job_completed", "w2", "b", "task", 1),
    ]
    assert {r.trace_id for r in rows[:2]} == {added.trace_id}
    assert rows[0].ts == pytest.approx(done_a.started_at or 0, abs=0.01)
    assert rows[1].ts == pytest.approx(done_a.finished_at or 0, abs=0.01)
    # the result's text as the database keeps it (PostgreSQL's jsonb spaces it), its ü
    # written out (SQLite keeps \u00fc), cut to 500 characters
    kept = encode_json(result, "job result")
    if store_url.startswith("postgresql"):
        kept = json.dumps(result, ensure_ascii=False)
    assert rows[1].excerpt == excerpt(kept) and (rows[1].excerpt or "").endswith("üü…")
    assert rows[1].excerpt is not None and len(rows[1].excerpt) == 500
    assert rows[3].excerpt is None  # no result
    assert [r.from_state for r in rows] == [None] * 4


def test_sqlite_triggers_record_only_for_the_store_that_keeps_history(tmp_path: Path) -> None:
    """SQLite's claim and completion rows come from TEMP triggers, which live in the
    connection of a store with history on: a store with history off (``SMC_HISTORY=off``)
    writing to the same file records nothing, and a store with it on records each row once."""
    database = tmp_path / "smc.db"
    with open_store(database) as keeping, open_store(database, history=False) as silent:
        for job_id in ("quiet", "kept"):
            keeping.add_job("task", job_id=job_id)
        start = keeping.last_history_id()
        quiet = silent.claim_job_by_id("quiet", "w-off")
        assert quiet is not None and silent.complete_job("quiet", quiet.claim_token)
        assert keeping.history(after_id=start) == []
        kept = keeping.claim_job("w-on", ["task"])
        assert kept is not None and keeping.complete_job("kept", kept.claim_token)
        assert [(r.kind, r.job_id) for r in keeping.history(after_id=start)] == [
            ("job_claimed", "kept"),
            ("job_completed", "kept"),
        ]
    with open_store(database, read_only=True) as reader:  # a reader makes no trigger
        assert [r.kind for r in reader.history(after_id=start)] == [
            "job_claimed",
            "job_completed",
        ]


def test_a_prune_that_waited_for_a_retry_keeps_the_job_it_made_pending() -> None:
    """PostgreSQL: the prune chose a failed job, waited for the lock a retry held on it, and
    then deleted the job the retry had made pending (the delete tested only the row's key
    again). SQLite has one writer at a time, so there the retry comes first or after."""
    from tests.support.backends import postgres_schema_url

    with postgres_schema_url() as url, open_store(url) as store, open_store(url) as retrier:
        store.add_job("task", job_id="r", max_attempts=1)
        claimed = store.claim_job("w", ["task"])
        assert claimed is not None
        assert store.fail_job("r", "boom", claimed.claim_token, retry=False)
        time.sleep(0.05)
        connection = cast(PostgresStore, retrier).connection
        pruned: list[dict[str, int]] = []
        with connection.transaction():  # a retry under way: the row is locked, then pending
            connection.execute("UPDATE jobs SET status = 'pending' WHERE id = 'r'")
            prune = threading.Thread(target=lambda: pruned.append(store.prune_history(0.01)))
            prune.start()
            prune.join(1.0)
            assert prune.is_alive()  # waiting for the row's lock
        prune.join(30)
        assert pruned and pruned[0]["jobs"] == 0
        job = store.get_job("r")
        assert job is not None and job.status == "pending"
