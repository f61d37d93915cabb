"""Job queue semantics, run identically against a real SQLite file and the real PostgreSQL.

The PostgreSQL tests use a fresh schema each and FAIL (never skip) when the server is missing.
Leases, backoff and the reaper run on simulated time (``tests.support.backends.StoreTime``): nothing
here sleeps.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from smc.runtime.store import (
    JOB_STATUSES,
    Backoff,
    DuplicateJobError,
    Job,
    JobRefusedError,
    Store,
    open_store,
)
from tests.support.backends import PG_URL, StoreTime

FAST_BACKOFF = Backoff(base=0.01, cap=0.05)
#: The simulated time a claim loop moves forward between tries (a fifth of the backoff's cap).
CLAIM_STEP = FAST_BACKOFF.cap / 5


@pytest.fixture
def store_time(store_url: str) -> StoreTime:
    return StoreTime(store_url)


@pytest.fixture
def store(store_url: str, store_time: StoreTime) -> Iterator[Store]:
    opened = store_time.open(backoff=FAST_BACKOFF, reap_interval=0.0)
    yield opened
    opened.close()


def claim_within(
    store: Store, store_time: StoreTime, seconds: float, worker: str, **options: Any
) -> Job | None:
    """Claim, moving simulated time forward by ``CLAIM_STEP`` between tries, for at most
    ``seconds`` of it: waits out a (short) backoff the way a polling worker would."""
    waited = 0.0
    while True:
        job = store.claim_job(worker, **options)
        if job is not None or waited >= seconds:
            return job
        store_time.advance(CLAIM_STEP)
        waited += CLAIM_STEP


def test_add_and_get_round_trips_every_field(store: Store) -> None:
    job = store.add_job(
        "resize",
        data={"image": "a.png", "sizes": [1, 2]},
        job_id="job-1",
        priority=2,
        machine_type="worker",
        max_attempts=3,
        dedupe_key="a.png",
    )
    assert job.id == "job-1"
    fetched = store.get_job("job-1")
    assert fetched is not None
    assert fetched.data == {"image": "a.png", "sizes": [1, 2]}
    assert (fetched.job_type, fetched.priority, fetched.machine_type) == ("resize", 2, "worker")
    assert (fetched.status, fetched.attempts, fetched.max_attempts) == ("pending", 0, 3)
    assert fetched.dedupe_key == "a.png"
    assert abs(fetched.created_at - time.time()) < 60
    assert store.get_job("missing") is None


def test_no_data_is_stored_as_an_empty_object(store: Store) -> None:
    store.add_job("t", job_id="empty")
    claimed = store.claim_job("w")
    assert claimed is not None and claimed.data == {}


def test_unserialisable_data_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="JSON-serialisable"):
        store.add_job("t", data={"when": object()})
    with pytest.raises(ValueError, match="JSON-serialisable"):
        store.add_job("t", data={"x": float("nan")})
    assert store.queue_counts()["pending"] == 0


def test_duplicate_id_is_a_clear_error(store: Store) -> None:
    store.add_job("t", job_id="same")
    with pytest.raises(DuplicateJobError, match="'same' already exists"):
        store.add_job("t", job_id="same")
    assert store.queue_counts()["pending"] == 1


def test_an_empty_dot_or_dot_dot_job_id_is_refused(store: Store) -> None:
    """No page could name them: a browser sends ``/api/jobs/..`` as ``/api/``."""
    for job_id in ("", ".", ".."):
        with pytest.raises(ValueError, match="a job id must not be"):
            store.add_job("t", job_id=job_id)
    assert store.list_jobs() == []
    assert store.add_job("t", job_id="...").id == "..."  # a name like any other


def test_claim_order_is_priority_then_age(store: Store) -> None:
    store.add_job("t", job_id="low-old", priority=5)
    store.add_job("t", job_id="high", priority=1)
    store.add_job("t", job_id="low-new", priority=5)
    order = []
    while (job := store.claim_job("w")) is not None:
        order.append(job.id)
    assert order == ["high", "low-old", "low-new"]


def test_claim_sets_lease_token_and_attempt(store: Store) -> None:
    store.add_job("t", job_id="j")
    job = store.claim_job("worker-a", lease_seconds=30)
    assert job is not None
    assert job.status == "processing"
    assert job.claimed_by == "worker-a"
    assert job.attempts == 1
    assert job.claim_token
    assert job.lease_expires_at is not None
    assert job.started_at is not None
    assert 25 < job.lease_expires_at - job.started_at < 35
    assert store.claim_job("worker-b") is None


def test_job_type_and_machine_type_filters(store: Store) -> None:
    store.add_job("a", job_id="a-any")
    store.add_job("b", job_id="b-any")
    store.add_job("a", job_id="a-x", machine_type="x")
    store.add_job("a", job_id="a-y", machine_type="y")
    assert store.claim_job("w", job_types=[]) is None
    # machine_type x takes its own jobs and the untargeted (NULL) ones, never y's.
    taken = set()
    while (job := store.claim_job("w", job_types=["a"], machine_type="x")) is not None:
        taken.add(job.id)
    assert taken == {"a-any", "a-x"}
    remaining = {job.id for job in store.list_pending()}
    assert remaining == {"b-any", "a-y"}
    # No machine_type filter: any job.
    job = store.claim_job("w", job_types=["a"])
    assert job is not None and job.id == "a-y"


def test_run_after_in_the_future_is_not_claimable(store: Store, store_time: StoreTime) -> None:
    store.add_job("t", job_id="later", run_after=store_time.time() + 3600)
    store.add_job("t", job_id="soon", run_after=store_time.time() + 0.3)
    assert store.claim_job("w") is None
    assert store.list_pending() == []
    assert store.claim_job_by_id("later", "w") is None
    store_time.advance(0.4)
    job = store.claim_job("w")
    assert job is not None and job.id == "soon"


def test_claim_by_id_is_atomic_and_reports_already_claimed(store: Store) -> None:
    store.add_job("t", job_id="j")
    first = store.claim_job_by_id("j", "controller", lease_seconds=10)
    assert first is not None and first.status == "processing"
    assert store.claim_job_by_id("j", "other", lease_seconds=10) is None
    assert store.claim_job_by_id("unknown", "other", lease_seconds=10) is None


def test_complete_is_fenced_by_token(store: Store) -> None:
    store.add_job("t", job_id="j")
    job = store.claim_job("w")
    assert job is not None and job.claim_token is not None
    assert not store.complete_job("j", claim_token="not-the-token")
    assert store.complete_job("j", claim_token=job.claim_token, result={"n": 3})
    done = store.get_job("j")
    assert done is not None
    assert (done.status, done.result) == ("completed", {"n": 3})
    assert done.finished_at is not None
    # A completed job cannot be completed or failed again.
    assert not store.complete_job("j", claim_token=job.claim_token)
    assert not store.fail_job("j", "late", claim_token=job.claim_token)


def test_lease_expiry_fences_out_the_stale_holder(store: Store, store_time: StoreTime) -> None:
    store.add_job("t", job_id="slow")
    stale = store.claim_job("w1", lease_seconds=0.2)
    assert stale is not None and stale.claim_token is not None
    assert store.heartbeat("slow", stale.claim_token, 0.2)
    store_time.advance(0.35)
    assert store.reap_expired() == 1
    reaped = store.get_job("slow")
    assert reaped is not None and reaped.status == "pending"
    assert reaped.last_error is not None and "lease expired" in reaped.last_error
    # waits out the (short) backoff
    fresh = claim_within(store, store_time, 5, "w2", lease_seconds=30)
    assert fresh is not None and fresh.id == "slow" and fresh.attempts == 2
    # The first holder wakes up: every write it attempts is refused.
    assert not store.heartbeat("slow", stale.claim_token, 30)
    assert not store.complete_job("slow", claim_token=stale.claim_token, result="stale")
    assert not store.fail_job("slow", "stale", claim_token=stale.claim_token)
    assert not store.release_job("slow", stale.claim_token)
    assert fresh.claim_token is not None
    assert store.complete_job("slow", claim_token=fresh.claim_token, result="fresh")
    final = store.get_job("slow")
    assert final is not None and final.result == "fresh"


def test_claim_reaps_expired_leases_itself(store: Store, store_time: StoreTime) -> None:
    store.add_job("t", job_id="j")
    assert store.claim_job("w1", lease_seconds=0.1) is not None
    store_time.advance(0.2)
    job = claim_within(store, store_time, 5, "w2")
    assert job is not None and job.id == "j" and job.attempts == 2


def test_retry_backs_off_then_fails_when_attempts_are_used_up(
    store: Store, store_time: StoreTime
) -> None:
    store.add_job("t", job_id="flaky", max_attempts=3)
    for attempt in (1, 2, 3):
        job = claim_within(store, store_time, 5, "w")
        assert job is not None and job.attempts == attempt
        assert store.fail_job("flaky", f"boom {attempt}", claim_token=job.claim_token, retry=True)
        after = store.get_job("flaky")
        assert after is not None
        assert after.status == ("pending" if attempt < 3 else "failed")
    final = store.get_job("flaky")
    assert final is not None
    assert (final.status, final.attempts, final.last_error) == ("failed", 3, "boom 3")
    assert store.claim_job("w") is None


def test_retry_delay_is_exponential_and_blocks_claims(store_url: str) -> None:
    slow = open_store(store_url, backoff=Backoff(base=10.0, cap=3600.0, jitter=0.1))
    try:
        slow.add_job("t", job_id="j")
        job = slow.claim_job("w")
        assert job is not None
        assert slow.fail_job("j", "try later", claim_token=job.claim_token, retry=True)
        pending = slow.get_job("j")
        assert pending is not None and pending.status == "pending"
        delay = pending.run_after - time.time()
        assert 10 * 2**1 * 0.9 - 1 < delay < 10 * 2**1 * 1.1 + 1  # base * 2**attempts ± 10 %
        assert slow.claim_job("w") is None
    finally:
        slow.close()


def test_fail_without_retry_is_final(store: Store) -> None:
    store.add_job("t", job_id="j", max_attempts=5)
    job = store.claim_job("w")
    assert job is not None
    assert store.fail_job("j", "bad input", claim_token=job.claim_token)
    failed = store.get_job("j")
    assert failed is not None and (failed.status, failed.last_error) == ("failed", "bad input")


def test_reaper_fails_a_job_whose_attempts_are_used_up(store: Store, store_time: StoreTime) -> None:
    store.add_job("t", job_id="j", max_attempts=1)
    assert store.claim_job("w", lease_seconds=0.1) is not None
    store_time.advance(0.2)
    assert store.reap_expired() == 1
    job = store.get_job("j")
    assert job is not None and job.status == "failed"
    assert job.last_error is not None and job.last_error.startswith("lease expired")


def test_release_returns_the_job_without_counting_the_attempt(store: Store) -> None:
    store.add_job("t", job_id="j")
    job = store.claim_job("w")
    assert job is not None and job.claim_token is not None
    start = store.last_history_id()
    assert store.release_job("j", job.claim_token)
    assert not store.release_job("j", job.claim_token)  # released: no second row
    again = store.claim_job("w")
    assert again is not None and again.id == "j" and again.attempts == 1
    # the history says the worker gave attempt 1 back, then the job was claimed again
    assert [(r.kind, r.machine, r.job_id, r.attempt) for r in store.history(after_id=start)] == [
        ("job_released", "w", "j", 1),
        ("job_claimed", "w", "j", 1),
    ]


def test_malformed_data_fails_at_once_and_the_next_job_is_claimed(
    store: Store, store_url: str
) -> None:
    store.add_job("t", job_id="good", priority=5)
    if store_url.startswith("postgresql"):
        # jsonb cannot hold malformed JSON: another tool's bad insert is refused at the door.
        schema = store_url.split("schema=")[1]
        with (
            psycopg.connect(PG_URL, autocommit=True) as connection,
            pytest.raises(psycopg.errors.InvalidTextRepresentation),
        ):
            connection.execute(
                f"INSERT INTO {schema}.jobs (id, job_type, data) VALUES ('bad', 't', "
                "'{not json')"
            )
        job = store.claim_job("w")
        assert job is not None and job.id == "good"
        return
    with sqlite3.connect(store_url) as connection:  # another tool writing the table directly
        connection.execute(
            "INSERT INTO jobs (id, job_type, data, priority, run_after, created_at) "
            "VALUES ('bad', 't', '{not json', 1, 0, 0)"
        )
    job = store.claim_job("w")
    assert job is not None and job.id == "good"
    bad = store.get_job("bad")
    assert bad is not None
    assert bad.status == "failed" and bad.attempts == 1
    assert bad.last_error is not None and "not valid JSON" in bad.last_error
    assert bad.to_dict()["data"] == "{not json"
    assert store.claim_job("w") is None  # never retried


def test_job_data_that_is_not_an_object_is_refused_when_added_and_failed_when_claimed(
    store: Store, store_url: str
) -> None:
    """A job's keys fill the machine's context: an array, a string or a number was queued, then
    failed every attempt on an unresolved placeholder. Adding one is refused; a row another
    tool wrote is failed at its first claim, never retried, and the next job is claimed."""
    for data in ([1, 2], "text", 5, True):
        with pytest.raises(ValueError, match=r"job data is an? [a-z]+, not a JSON object"):
            store.add_job("t", data, job_id=f"refused-{type(data).__name__}")
    assert store.queue_counts()["pending"] == 0
    store.add_job("t", {"k": 1}, job_id="good", priority=5)
    store.add_job("t", None, job_id="empty", priority=6)
    if store_url.startswith("postgresql"):  # another tool writing the table
        schema = store_url.split("schema=")[1]
        with psycopg.connect(PG_URL, autocommit=True) as connection:
            connection.execute(
                f"INSERT INTO {schema}.jobs (id, job_type, data, priority) "
                "VALUES ('array', 't', '[1, 2]', 1)"
            )
    else:
        with sqlite3.connect(store_url) as connection:
            connection.execute(
                "INSERT INTO jobs (id, job_type, data, priority, run_after, created_at) "
                "VALUES ('array', 't', '[1, 2]', 1, 0, 0)"
            )
    job = store.claim_job("w")
    assert job is not None and job.id == "good" and job.data == {"k": 1}
    array = store.get_job("array")
    assert array is not None and array.status == "failed" and array.attempts == 1
    assert array.last_error == "job data is an array, not a JSON object"
    assert array.to_dict()["data"] == [1, 2]
    empty = store.claim_job("w")
    assert empty is not None and empty.id == "empty" and empty.data == {}
    assert store.claim_job("w") is None  # the array is never retried


def test_dedupe_key_returns_the_existing_job_while_it_is_open(store: Store) -> None:
    first = store.add_job("t", job_id="one", dedupe_key="file.png")
    second = store.add_job("t", job_id="two", dedupe_key="file.png")
    assert second.id == "one"
    assert store.get_job("two") is None
    job = store.claim_job("w")
    assert job is not None and job.id == first.id
    assert store.add_job("t", job_id="three", dedupe_key="file.png").id == "one"  # processing
    assert store.complete_job("one", claim_token=job.claim_token)
    third = store.add_job("t", job_id="three", dedupe_key="file.png")
    assert third.id == "three"  # the key is free once the holder finished


def test_retry_and_cancel(store: Store) -> None:
    store.add_job("t", job_id="j")
    assert not store.retry_job("j")  # pending: nothing to retry
    assert store.cancel_job("j")
    assert not store.cancel_job("j")
    # The cancellation is in the job's history, in its transaction: once.
    rows = store.history(job_id="j")
    assert [(r.kind, r.machine, r.event, r.attempt) for r in rows] == [
        ("job_added", "", "t", None),
        ("job_cancelled", "", "t", 0),
    ]
    assert rows[1].trace_id == rows[0].trace_id is not None
    assert store.claim_job("w") is None
    assert store.retry_job("j")
    job = store.claim_job("w")
    assert job is not None and job.id == "j" and job.attempts == 1
    assert store.fail_job("j", "x", claim_token=job.claim_token)
    assert store.retry_job("j")
    again = store.get_job("j")
    assert again is not None and (again.status, again.attempts) == ("pending", 0)
    assert not store.retry_job("nope") and not store.cancel_job("nope")
    # A retry by hand is a person's act: not recorded under the worker that last ran the
    # job (it once was), but as a cancel is, under the job's machine type.
    by_hand = [r for r in store.history(job_id="j") if r.excerpt and "by hand" in r.excerpt]
    assert [(r.kind, r.machine) for r in by_hand] == [("job_retried", "")] * 2
    # Each says how many attempts came before it: the story's next "attempt 1" is a new run.
    assert [(r.attempt, r.excerpt) for r in by_hand] == [
        (0, "retried by hand after 0 attempts; attempts start again at 1"),
        (1, "retried by hand after 1 attempt; attempts start again at 1"),
    ]
    store.add_job("t", job_id="typed", machine_type="mt")
    assert store.cancel_job("typed") and store.retry_job("typed")
    [retried] = store.history(job_id="typed", kinds=["job_retried"])
    assert retried.machine == "mt"


def test_a_retry_by_hand_clears_the_last_runs_worker_start_error_and_result(
    store: Store,
) -> None:
    """A pending job once showed the worker, start time and error of the run before its
    retry (and kept the error once it completed); its story keeps them."""
    store.add_job("t", job_id="j", max_attempts=1)
    claimed = store.claim_job("w1")
    assert claimed is not None
    assert store.fail_job("j", "broke", claim_token=claimed.claim_token)
    failed = store.get_job("j")
    assert failed is not None and (failed.claimed_by, failed.last_error) == ("w1", "broke")
    assert failed.started_at is not None
    assert store.retry_job("j")
    again = store.get_job("j")
    assert again is not None and again.status == "pending"
    assert (again.claimed_by, again.started_at, again.last_error, again.result_json) == (
        None,
        None,
        None,
        None,
    )


def test_a_retry_that_another_jobs_dedupe_key_blocks_is_a_refusal(store: Store) -> None:
    """Not a database that cannot be used (the web monitor answered 503 for it): the
    queue's rule, ``JobRefusedError`` (a 409 there)."""
    store.add_job("t", job_id="a", dedupe_key="k")
    assert store.cancel_job("a")
    store.add_job("t", job_id="b", dedupe_key="k")
    with pytest.raises(JobRefusedError, match="dedupe key"):
        store.retry_job("a")
    job = store.get_job("a")
    assert job is not None and job.status == "cancelled"


def test_a_list_without_data_reads_neither_data_nor_result(store: Store) -> None:
    store.add_job("t", {"big": "x" * 100_000}, job_id="a")
    claimed = store.claim_job("w")
    assert claimed is not None
    store.complete_job("a", claim_token=claimed.claim_token, result={"out": 1})
    store.add_job("t", {"n": 2}, job_id="b")
    [_, full_a] = store.list_jobs()
    assert full_a.data == {"big": "x" * 100_000} and full_a.result == {"out": 1}
    listed = store.list_jobs(with_data=False)
    assert [(j.id, j.status, j.data, j.result) for j in listed] == [
        ("b", "pending", None, None),
        ("a", "completed", None, None),
    ]
    only = store.list_jobs("completed", job_type="t", with_data=False)
    assert [(j.id, j.claimed_by, j.attempts) for j in only] == [("a", "w", 1)]


def test_counts_lists_and_statuses(store: Store) -> None:
    for index in range(5):
        store.add_job("t", job_id=f"j{index}")
    claimed = store.claim_job("w")
    assert claimed is not None
    store.complete_job(claimed.id, claim_token=claimed.claim_token)
    store.cancel_job("j4")
    counts = store.queue_counts()
    assert set(counts) == set(JOB_STATUSES)
    assert counts == {"pending": 3, "processing": 0, "completed": 1, "failed": 0, "cancelled": 1}
    assert [job.id for job in store.list_jobs(limit=2)] == ["j4", "j3"]
    assert [job.id for job in store.list_jobs(status="completed")] == ["j0"]
    assert [job.id for job in store.list_pending(limit=2)] == ["j1", "j2"]
    assert store.wait_job_statuses(["j0", "j4", "missing"]) == {
        "j0": "completed",
        "j4": "cancelled",
    }
    assert store.wait_job_statuses([]) == {}


def test_jobs_are_listed_by_type_and_status_newest_first(store: Store) -> None:
    store.add_job("resize", job_id="old")
    for index in range(5):
        store.add_job("other", job_id=f"o{index}")
    store.add_job("resize", job_id="new")
    store.cancel_job("new")
    # The filter is the query's: an old job of the type is found past newer jobs of others.
    assert [job.id for job in store.list_jobs(job_type="resize", limit=2)] == ["new", "old"]
    assert [job.id for job in store.list_jobs(job_type="resize", limit=1)] == ["new"]
    assert [job.id for job in store.list_jobs("pending", job_type="resize")] == ["old"]
    assert [job.id for job in store.list_jobs("cancelled", job_type="other")] == []
    assert store.list_jobs(job_type="missing") == []


def test_the_open_counts_leave_the_finished_jobs_out(store: Store) -> None:
    for index in range(4):
        store.add_job("t", job_id=f"j{index}")
    assert store.queue_counts(finished=False) == {"pending": 4, "processing": 0}
    claimed = [store.claim_job("w") for _ in range(2)]
    first, second = (job for job in claimed if job is not None)
    store.complete_job(first.id, claim_token=first.claim_token)
    store.cancel_job("j3")
    assert store.queue_counts(finished=False) == {"pending": 1, "processing": 1}
    assert store.queue_counts() == {
        "pending": 1,
        "processing": 1,
        "completed": 1,
        "failed": 0,
        "cancelled": 1,
    }
    store.fail_job(second.id, "x", claim_token=second.claim_token)
    assert store.queue_counts(finished=False) == {"pending": 1, "processing": 0}


def test_a_second_store_object_sees_the_same_queue(store: Store, store_url: str) -> None:
    store.add_job("t", job_id="shared")
    other = open_store(store_url)
    try:
        job = other.claim_job("w")
        assert job is not None and job.id == "shared"
    finally:
        other.close()
    reopened = store.get_job("shared")
    assert reopened is not None and reopened.status == "processing"


def test_backoff_policy_values() -> None:
    policy = Backoff(base=1.0, cap=100.0, jitter=0.1)
    for attempts in range(12):
        expected = min(100.0, 2.0**attempts)
        for _ in range(20):
            assert expected * 0.9 <= policy.delay(attempts) <= expected * 1.1
    assert Backoff(base=1.0, cap=5.0, jitter=0.0).delay(10_000) == 5.0
