"""SQLite store options and connection handling, against real database files:

- opening a new database while another process holds its write lock (workers and the CLI
  starting together) waits for the lock instead of failing;
- a read-only store's checkpoint does nothing (checkpoints: ``test_checkpoints.py``);
- ``?max_pages=N`` caps the file like a full disk (one-line error, nothing committed lost) until
  the database is opened without it.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smc.runtime.store import StoreError, open_store
from smc.runtime.store.sqlite import SqliteStore

HOLD_SECONDS = 0.5

#: Another process takes the write lock of a fresh (not yet WAL) database file and holds it.
_HOLDER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("CREATE TABLE other_tool (x)")
connection.execute("BEGIN IMMEDIATE")
connection.execute("INSERT INTO other_tool VALUES (1)")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


def test_open_waits_for_a_write_lock_held_on_a_fresh_file(tmp_path: Path) -> None:
    # Switching a file to WAL needs an exclusive lock, and SQLite answers BUSY at once (no busy
    # handler) while another connection holds the write lock: the open must wait and retry.
    database = tmp_path / "smc.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(database), str(HOLD_SECONDS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with open_store(database) as store:
            waited = time.monotonic() - started
            store.add_job("t", {"n": 1}, job_id="after-the-lock")
            assert [job.id for job in store.list_pending()] == ["after-the-lock"]
        assert holder.wait(10) == 0
    finally:
        holder.kill()
        holder.wait()
    assert waited < HOLD_SECONDS + 5.0  # it waited for the lock, well inside busy_timeout
    with sqlite3.connect(database) as check:
        assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert check.execute("SELECT count(*) FROM other_tool").fetchone() == (1,)


def test_checkpoint_of_a_read_only_store_does_nothing(tmp_path: Path) -> None:
    database = tmp_path / "smc.db"
    with open_store(database) as store:
        store.add_job("t", job_id="kept")
    with open_store(f"sqlite://{database}?mode=ro") as reader:
        reader.checkpoint()
        assert [job.id for job in reader.list_pending()] == ["kept"]


def test_max_pages_url_makes_a_full_disk_until_reopened_without_it(tmp_path: Path) -> None:
    database = tmp_path / "smc.db"
    with open_store(database) as store:
        for number in range(5):
            store.add_job("t", {"n": number}, job_id=f"kept-{number}")
        pages = store.connection.execute("PRAGMA page_count").fetchone()[0]
    capped = open_store(f"sqlite://{database}?max_pages={pages + 2}")
    assert isinstance(capped, SqliteStore) and capped.max_pages == pages + 2
    added = 0
    with pytest.raises(StoreError) as error:
        for number in range(1000):
            capped.add_job("t", {"blob": "x" * 3000}, job_id=f"big-{number}")
            added += 1
    assert str(error.value) == f"cannot write to {database}: database or disk is full"
    assert 0 < added < 10  # it took a few pages, then the cap
    # Writes that need no new page still work; nothing committed is lost.
    job = capped.claim_job("w", ["t"])
    assert job is not None and job.id == "kept-0"
    assert capped.complete_job(job.id, job.claim_token)
    capped.close()
    with open_store(database) as store:  # the limit is gone
        store.add_job("t", {"blob": "x" * 3000}, job_id="after")
        counts = store.queue_counts()
    assert counts["pending"] == 4 + added + 1 and counts["completed"] == 1


@pytest.mark.parametrize("value", ["0", "-3", "many", "2.5"])
def test_max_pages_must_be_a_positive_number(tmp_path: Path, value: str) -> None:
    url = f"sqlite://{tmp_path / 'smc.db'}?max_pages={value}"
    with pytest.raises(StoreError) as error:
        open_store(url)
    assert str(error.value) == f"cannot open {url}: max_pages must be a positive number of pages"
