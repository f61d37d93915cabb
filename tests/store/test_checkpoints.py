"""SQLite checkpoints (``smc.runtime.store.sqlite``, "Checkpoints"; docs/queue.md,
"Checkpoints"), against real database files and real processes:

- no store connection checkpoints on its own: SQLite's automatic checkpoint runs without the
  write lock, which is what the WAL-reset bug of SQLite 3.7.0-3.51.2 needs to lose commits;
- a checkpoint copies the log only while it holds the write lock: it waits for a writer, and
  gives up after ``CHECKPOINT_LOCK_WAIT`` rather than copy beside one;
- the checkpoints of one database are at least ``CHECKPOINT_GAP`` apart, whichever process
  runs them;
- a store with no worker beside it still bounds the log: it checkpoints every
  ``checkpoint_every`` statements of its own;
- without the lock file (no usable doorbell directory) a store still checkpoints, spaced by
  itself.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smc.runtime.store.sqlite import CHECKPOINT_GAP, CHECKPOINT_LOCK_WAIT, SqliteStore

PAD = "x" * 200

#: Another process holds the database's write lock for argv[2] seconds, writing nothing.
_WRITER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""

#: Another process's store, driven line by line on stdin: ``add N PREFIX`` adds N jobs,
#: ``checkpoint`` tries one; each answers a line (the checkpoint: whether it ran).
_OTHER_STORE = """
import sys
from smc.runtime.store.sqlite import SqliteStore
with SqliteStore(sys.argv[1], checkpoint_every=None) as store:
    for line in sys.stdin:
        command = line.split()
        if command[0] == "add":
            for number in range(int(command[1])):
                store.add_job("t", {"pad": "x" * 200}, job_id=f"{command[2]}-{number}")
            print("added", flush=True)
        else:
            print(store.backend.checkpoint(), flush=True)
"""


def _pages(path: Path) -> int:
    return path.stat().st_size // 4096 if path.exists() else 0


def _add(store: SqliteStore, count: int, prefix: str) -> None:
    for number in range(count):
        store.add_job("t", {"n": number, "pad": PAD}, job_id=f"{prefix}-{number}")


def _hold_write_lock(database: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(database), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_store_connections_never_checkpoint_at_commit(tmp_path: Path) -> None:
    database = tmp_path / "smc.db"
    with SqliteStore(database, checkpoint_every=None) as store:
        assert store.connection.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
        _add(store, 2000, "j")
        # ~2000 commits and no checkpoint: the rows are in the log, the file has not grown.
        assert _pages(Path(f"{database}-wal")) > 1000 and _pages(database) < 20
        assert store.backend.checkpoint() is True
        assert _pages(database) > 100  # the pages moved into the database file
        with sqlite3.connect(database) as other:
            busy, log_frames, moved = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert busy == 0 and log_frames == moved  # nothing was left to move
        assert store.queue_counts()["pending"] == 2000


def test_a_checkpoint_copies_the_log_only_while_it_holds_the_write_lock(tmp_path: Path) -> None:
    database = tmp_path / "smc.db"
    with SqliteStore(database, checkpoint_every=None) as store:
        _add(store, 300, "j")
        before = _pages(database)
        # A writer that keeps the lock past the wait: no copy beside it (a plain PASSIVE
        # checkpoint would copy the 300 jobs now, writer or not).
        holder = _hold_write_lock(database, CHECKPOINT_LOCK_WAIT + 1.5)
        try:
            started = time.monotonic()
            assert store.backend.checkpoint() is False
            waited = time.monotonic() - started
            assert _pages(database) == before
        finally:
            assert holder.wait(10) == 0
        assert CHECKPOINT_LOCK_WAIT * 0.8 <= waited < CHECKPOINT_LOCK_WAIT + 1.5
        # A writer that lets go within the wait: the checkpoint waits for it, then copies.
        holder = _hold_write_lock(database, CHECKPOINT_LOCK_WAIT / 3)
        try:
            started = time.monotonic()
            assert store.backend.checkpoint() is True
            waited = time.monotonic() - started
        finally:
            assert holder.wait(10) == 0
        assert waited >= CHECKPOINT_LOCK_WAIT / 6  # the lock was still held when it asked
        assert _pages(database) > before + 50
        assert store.queue_counts()["pending"] == 300


def test_checkpoints_of_one_database_are_a_gap_apart_whichever_process_runs_them(
    tmp_path: Path,
) -> None:
    database = tmp_path / "smc.db"
    with SqliteStore(database, checkpoint_every=None) as store:
        other = subprocess.Popen(
            [sys.executable, "-c", _OTHER_STORE, str(database)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert other.stdin is not None and other.stdout is not None

        def ask(command: str) -> str:
            assert other.stdin is not None and other.stdout is not None
            other.stdin.write(command + "\n")
            other.stdin.flush()
            return other.stdout.readline().strip()

        try:
            _add(store, 200, "a")
            assert ask("add 200 b") == "added"
            assert store.backend.checkpoint() is True
            copied = _pages(database)
            # The other process at once: within the gap, it leaves the log as it is.
            assert ask("checkpoint") == "False"
            assert ask("add 200 c") == "added"
            time.sleep(CHECKPOINT_GAP)
            assert ask("checkpoint") == "True"
            assert _pages(database) > copied + 20
            # And this store, right after that process's checkpoint, waits its turn too.
            assert store.backend.checkpoint() is False
        finally:
            other.stdin.close()
            assert other.wait(30) == 0
        assert store.queue_counts()["pending"] == 600


def test_a_store_checkpoints_every_checkpoint_every_statements(tmp_path: Path) -> None:
    database = tmp_path / "smc.db"
    with SqliteStore(database, checkpoint_every=100) as store:
        grew_at = None
        for number in range(300):
            store.add_job("t", {"n": number, "pad": PAD}, job_id=f"j{number}")
            if grew_at is None and _pages(database) > 20:
                grew_at = number + 1
        # One statement an add_job: the 100th tried, and nothing had checkpointed before it.
        assert grew_at == 100


def test_without_its_lock_file_a_store_still_checkpoints_spaced_by_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lock file lives in the doorbell directory; with $SMC_SOCKET_DIR unusable (a file, not
    # a directory) the log must still be copied, at most once a gap by this process.
    not_a_directory = tmp_path / "not-a-directory"
    not_a_directory.write_text("")
    monkeypatch.setenv("SMC_SOCKET_DIR", str(not_a_directory))
    database = tmp_path / "smc.db"
    with SqliteStore(database, checkpoint_every=None) as store:
        _add(store, 300, "a")
        assert store.backend.checkpoint() is True
        copied = _pages(database)
        assert copied > 20
        _add(store, 300, "b")
        assert store.backend.checkpoint() is False  # within the gap
        assert _pages(database) == copied
        time.sleep(CHECKPOINT_GAP)
        assert store.backend.checkpoint() is True
        assert _pages(database) > copied + 20
        assert store.queue_counts()["pending"] == 600
