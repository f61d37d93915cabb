"""Opening a new SQLite database while other processes open or write it (workers and the CLI
starting together): the open waits for the lock instead of failing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from smc.runtime.store import open_store

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
