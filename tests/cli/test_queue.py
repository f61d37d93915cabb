"""``smc jobs``, ``smc send``, ``smc status`` through real ``python -m smc`` subprocesses."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from smc.runtime.store import open_store

REPO_ROOT = Path(__file__).resolve().parents[2]


def smc(
    *args: str, cwd: Path, db: str | None = None, env_db: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    env.pop("SMC_DB", None)
    if env_db is not None:
        env["SMC_DB"] = env_db
    command = [sys.executable, "-m", "smc", *args]
    if db is not None:
        command += ["--db", db]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "queue.db")


def test_add_list_show_cancel_retry(tmp_path: Path, db: str) -> None:
    added = smc(
        "jobs", "add", "--type", "resize", "--data", '{"file": "a.png"}', "--id", "job-1",
        "--priority", "2", "--machine-type", "worker", "--max-attempts", "3",
        cwd=tmp_path, db=db,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "job-1"
    generated = smc("jobs", "add", "--type", "other", cwd=tmp_path, db=db)
    assert generated.returncode == 0
    generated_id = generated.stdout.strip()
    assert len(generated_id) == 32

    listed = smc("jobs", "list", cwd=tmp_path, db=db)
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split() == [
        "ID", "TYPE", "STATUS", "PRIORITY", "ATTEMPTS", "MACHINE_TYPE", "CREATED", "ERROR"
    ]  # fmt: skip
    assert lines[1].split()[:6] == [generated_id, "other", "pending", "5", "0/5", "-"]
    assert lines[2].split()[:6] == ["job-1", "resize", "pending", "2", "0/3", "worker"]
    assert lines[1].index("other") == lines[0].index("TYPE")  # columns are aligned

    as_json = json.loads(smc("jobs", "list", "--format", "json", cwd=tmp_path, db=db).stdout)
    assert [job["id"] for job in as_json] == [generated_id, "job-1"]
    assert as_json[1]["data"] == {"file": "a.png"}
    assert set(as_json[0]) >= {"id", "job_type", "status", "priority", "attempts", "data"}

    shown = json.loads(smc("jobs", "show", "job-1", "--format", "json", cwd=tmp_path, db=db).stdout)
    assert (shown["status"], shown["max_attempts"], shown["machine_type"]) == (
        "pending",
        3,
        "worker",
    )
    shown_table = smc("jobs", "show", "job-1", cwd=tmp_path, db=db)
    assert "job_type" in shown_table.stdout and "resize" in shown_table.stdout

    not_retryable = smc("jobs", "retry", "job-1", cwd=tmp_path, db=db)
    assert not_retryable.returncode == 1
    assert "is pending" in not_retryable.stderr
    cancelled = smc("jobs", "cancel", "job-1", cwd=tmp_path, db=db)
    assert cancelled.returncode == 0, cancelled.stderr
    only_cancelled = smc("jobs", "list", "--status", "cancelled", cwd=tmp_path, db=db)
    assert [line.split()[0] for line in only_cancelled.stdout.splitlines()[1:]] == ["job-1"]
    only_other = smc("jobs", "list", "--type", "other", cwd=tmp_path, db=db)
    assert [line.split()[0] for line in only_other.stdout.splitlines()[1:]] == [generated_id]
    none_of_both = smc(
        "jobs", "list", "--type", "other", "--status", "cancelled", cwd=tmp_path, db=db
    )  # fmt: skip
    assert none_of_both.returncode == 0 and none_of_both.stdout.splitlines()[1:] == []
    retried = smc("jobs", "retry", "job-1", cwd=tmp_path, db=db)
    assert retried.returncode == 0, retried.stderr
    store = open_store(db)
    job = store.get_job("job-1")
    assert job is not None and job.status == "pending"
    store.close()


def test_job_data_that_is_not_an_object_is_a_usage_error(tmp_path: Path, db: str) -> None:
    """An array or a string was queued, then failed every attempt (its keys fill the context)."""
    for data in ("[1, 2]", '"hello"', "3"):
        result = smc("jobs", "add", "--type", "t", "--data", data, cwd=tmp_path, db=db)
        assert result.returncode == 2
        assert result.stderr.startswith("smc jobs add: error: --data is a")
        assert "not a JSON object" in result.stderr
    assert not Path(db).exists()  # nothing made, nothing queued


def test_an_empty_job_type_machine_or_event_is_a_usage_error(tmp_path: Path, db: str) -> None:
    """Each was queued or sent where nothing would ever take it."""
    for args in (
        ("jobs", "add", "--type", ""),
        ("jobs", "add", "--type", "t", "--machine-type", " "),
        ("send", "m", ""),
        ("send", "", "go"),
    ):
        result = smc(*args, cwd=tmp_path, db=db)
        assert result.returncode == 2, args
        assert result.stderr.rstrip().endswith("must not be empty"), result.stderr
    assert not Path(db).exists()


def test_unknown_ids_exit_1_with_a_message(tmp_path: Path, db: str) -> None:
    open_store(db).close()
    for command in ("show", "retry", "cancel"):
        result = smc("jobs", command, "nope", cwd=tmp_path, db=db)
        assert result.returncode == 1
        assert result.stderr.strip() == f"smc jobs {command}: error: no job with id 'nope' in {db}"


def test_cancel_and_retry_print_a_hostile_id_escaped(tmp_path: Path, db: str) -> None:
    """A job id is untrusted text (``--id``, the API): what the commands print of it on
    success is escaped, as their errors and tables are."""
    hostile = "c\x1b[31mX\u202e"
    assert smc("jobs", "add", "--type", "t", "--id", hostile, cwd=tmp_path, db=db).returncode == 0
    cancelled = smc("jobs", "cancel", hostile, cwd=tmp_path, db=db)
    retried = smc("jobs", "retry", hostile, cwd=tmp_path, db=db)
    assert cancelled.stdout == "job c\\x1b[31mX\\u202e cancelled\n", cancelled.stderr
    assert retried.stdout == "job c\\x1b[31mX\\u202e is pending again\n", retried.stderr


def test_invalid_json_is_a_usage_error(tmp_path: Path, db: str) -> None:
    result = smc("jobs", "add", "--type", "t", "--data", "{oops", cwd=tmp_path, db=db)
    assert result.returncode == 2
    assert result.stderr.startswith("smc jobs add: error: --data is not valid JSON")
    sent = smc("send", "m", "e", "--payload", "[1,", cwd=tmp_path, db=db)
    assert sent.returncode == 2
    assert "--payload is not valid JSON" in sent.stderr
    assert open_store(db).queue_counts()["pending"] == 0


def test_duplicate_id_and_dedupe_key(tmp_path: Path, db: str) -> None:
    first = smc("jobs", "add", "--type", "t", "--id", "a", "--dedupe-key", "k", cwd=tmp_path, db=db)
    assert first.returncode == 0, first.stderr
    duplicate = smc("jobs", "add", "--type", "t", "--id", "a", cwd=tmp_path, db=db)
    assert duplicate.returncode == 1
    assert "a job with id 'a' already exists" in duplicate.stderr
    deduped = smc("jobs", "add", "--type", "t", "--dedupe-key", "k", cwd=tmp_path, db=db)
    assert deduped.returncode == 0
    assert deduped.stdout.strip() == "a"
    assert "dedupe key 'k' is held by pending job 'a'" in deduped.stderr


def test_send_stores_the_event_for_a_machine_that_is_not_running(tmp_path: Path, db: str) -> None:
    result = smc(
        "send", "worker-1", "start", "--payload", '{"n": 5}', "--source", "cli",
        cwd=tmp_path, db=db,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    event_id = int(result.stdout.strip())
    store = open_store(db)
    (event,) = store.claim_events("worker-1")
    assert (event.id, event.event_type, event.payload, event.source) == (
        event_id,
        "start",
        {"n": 5},
        "cli",
    )
    store.close()


def test_status_shows_machines_and_queue_counts(tmp_path: Path, db: str) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store = open_store(db)
    store.register_machine("alive", "working")  # our pid: alive
    store.register_machine("crashed", "working", pid=gone.pid)
    store.register_machine("finished", "done")
    store.stop_machine("finished")
    store.add_job("t")
    store.add_job("t")
    store.send_event("alive", "ping")
    store.close()

    table = smc("status", cwd=tmp_path, db=db)
    assert table.returncode == 0, table.stderr
    # Three tables, blank-line separated: machines, job counts, event counts.
    machines, jobs, events = (
        {line.split()[0]: line.split() for line in block.splitlines()}
        for block in table.stdout.strip().split("\n\n")
    )
    assert machines["MACHINE"][:3] == ["MACHINE", "STATE", "STATUS"]
    assert machines["alive"][1:3] == ["working", "running"]
    assert machines["crashed"][1:4] == ["working", "dead", str(gone.pid)]
    assert machines["finished"][1:3] == ["done", "stopped"]
    assert jobs["JOBS"] == ["JOBS", "COUNT"] and jobs["pending"] == ["pending", "2"]
    assert events["EVENTS"] == ["EVENTS", "COUNT"] and events["pending"] == ["pending", "1"]
    assert events["dead"] == ["dead", "0"]

    as_json = json.loads(smc("status", "--format", "json", cwd=tmp_path, db=db).stdout)
    statuses = {machine["name"]: machine["status"] for machine in as_json["machines"]}
    assert statuses == {"alive": "running", "crashed": "dead", "finished": "stopped"}
    assert as_json["jobs"]["pending"] == 2
    assert as_json["events"] == {"pending": 1, "processing": 0, "done": 0, "dead": 0}


def test_database_from_env_then_default_file(tmp_path: Path) -> None:
    env_db = str(tmp_path / "from-env.db")
    from_env = smc("jobs", "add", "--type", "t", "--id", "e", cwd=tmp_path, env_db=env_db)
    assert from_env.returncode == 0, from_env.stderr
    listed = smc("jobs", "list", "--format", "json", cwd=tmp_path, env_db=env_db)
    assert [job["id"] for job in json.loads(listed.stdout)] == ["e"]
    default = smc("jobs", "add", "--type", "t", "--id", "d", cwd=tmp_path)
    assert default.returncode == 0, default.stderr
    assert (tmp_path / "smc.db").exists()
    assert open_store(str(tmp_path / "smc.db")).get_job("d") is not None


def test_store_errors_are_one_line_exit_1(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "smc.db"
    result = smc("jobs", "add", "--type", "t", cwd=tmp_path, db=str(missing))
    assert result.returncode == 1
    assert result.stderr == (
        f"smc jobs add: error: cannot open {missing}: directory {missing.parent} does not exist\n"
    )
    assert "Traceback" not in result.stderr
    path = tmp_path / "ro.db"
    open_store(str(path)).close()
    read_only = smc("jobs", "add", "--type", "t", cwd=tmp_path, db=f"sqlite://{path}?mode=ro")
    assert read_only.returncode == 1
    assert (
        read_only.stderr == f"smc jobs add: error: cannot write to {path}: database is read-only\n"
    )


def test_commands_work_against_postgres(tmp_path: Path, pg_url: str) -> None:
    added = smc("jobs", "add", "--type", "t", "--id", "pg-1", cwd=tmp_path, db=pg_url)
    assert added.returncode == 0, added.stderr
    sent = smc("send", "m", "go", cwd=tmp_path, db=pg_url)
    assert sent.returncode == 0, sent.stderr
    status = json.loads(smc("status", "--format", "json", cwd=tmp_path, db=pg_url).stdout)
    assert status["jobs"]["pending"] == 1
    cancelled = smc("jobs", "cancel", "pg-1", cwd=tmp_path, db=pg_url)
    assert cancelled.returncode == 0, cancelled.stderr
    shown = json.loads(
        smc("jobs", "show", "pg-1", "--format", "json", cwd=tmp_path, db=pg_url).stdout
    )
    assert shown["status"] == "cancelled"


TYPED_MACHINE = """\
initial_state: a
metadata: {machine_name: typed}
events:
  go: {payload: {type: object, properties: {n: {type: integer}}, required: [n]}}
jobs:
  task: {data: {type: object, properties: {path: {type: string}}, required: [path]}}
transitions:
  - {from: a, to: b, event: go}
"""


def test_machine_file_checks_job_data_and_payloads(tmp_path: Path, db: str) -> None:
    """``--machine-file``: data its schema refuses is a usage error and nothing is stored."""
    (tmp_path / "typed.yaml").write_text(TYPED_MACHINE)
    flag = ("--machine-file", "typed.yaml")
    bad_job = smc(
        "jobs", "add", "--type", "task", "--data", '{"path": 3}', *flag, cwd=tmp_path, db=db
    )
    assert bad_job.returncode == 2
    assert bad_job.stderr.startswith(
        "smc jobs add: error: --data does not match the schema of job type 'task': job data.path: "
    )
    bad_event = smc("send", "typed", "go", *flag, cwd=tmp_path, db=db)
    assert bad_event.returncode == 2
    assert bad_event.stderr.startswith(
        "smc send: error: --payload does not match the schema of event 'go': payload: "
    )
    unknown = smc("send", "typed", "og", "--payload", '{"n": 1}', *flag, cwd=tmp_path, db=db)
    assert unknown.returncode == 2 and "has no event 'og'" in unknown.stderr
    with open_store(db) as store:
        assert store.queue_counts()["pending"] == 0 and store.list_events() == []
    good_job = smc(
        "jobs", "add", "--type", "task", "--data", '{"path": "a"}', *flag, cwd=tmp_path, db=db
    )
    assert good_job.returncode == 0, good_job.stderr
    other = smc("jobs", "add", "--type", "other", "--data", '{"n": 1}', *flag, cwd=tmp_path, db=db)
    assert other.returncode == 0 and "no data schema for job type 'other'" in other.stderr
    good_event = smc("send", "typed", "go", "--payload", '{"n": 1}', *flag, cwd=tmp_path, db=db)
    assert good_event.returncode == 0, good_event.stderr
    with open_store(db) as store:
        assert store.queue_counts()["pending"] == 2 and len(store.list_events()) == 1


def test_a_machine_file_that_does_not_check_is_a_usage_error(tmp_path: Path, db: str) -> None:
    (tmp_path / "broken.yaml").write_text("initial_state: a\ntransitions: 3\n")
    result = smc("send", "m", "go", "--machine-file", "broken.yaml", cwd=tmp_path, db=db)
    assert result.returncode == 2
    assert result.stderr.startswith("smc send: error: --machine-file broken.yaml:2:")
    missing = smc("jobs", "add", "--type", "t", "--machine-file", "nope.yaml", cwd=tmp_path, db=db)
    assert missing.returncode == 2 and "nope.yaml: no such file" in missing.stderr


def test_reading_a_database_that_is_not_there_makes_none(tmp_path: Path) -> None:
    """A mistyped ``--db`` made an empty database there: `smc status` said "no machines
    registered" and `smc jobs list` listed nothing, as if all were well. Only adding a job or
    sending an event makes one (and a send to a machine never seen says so)."""
    typo = tmp_path / "typo.db"
    for args in (("status",), ("jobs", "list"), ("jobs", "show", "x"), ("jobs", "cancel", "x")):
        result = smc(*args, cwd=tmp_path, db=str(typo))
        assert result.returncode == 2, (args, result.stderr)
        assert str(typo) in result.stderr and "makes none" in result.stderr
        assert not typo.exists()
    # ... nor smc tables into an empty file, or another program's SQLite database
    other = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as connection:
        connection.execute("CREATE TABLE foo (x)")
        connection.commit()
    (tmp_path / "empty.db").touch()
    for path in (other, tmp_path / "empty.db"):
        result = smc("status", cwd=tmp_path, db=str(path))
        assert result.returncode == 2 and "not an smc database" in result.stderr
    with contextlib.closing(sqlite3.connect(other)) as connection:
        names = connection.execute("SELECT name FROM sqlite_master").fetchall()
        assert names == [("foo",)]
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert (tmp_path / "empty.db").stat().st_size == 0
    sent = smc("send", "simple_wroker", "stop", cwd=tmp_path, db=str(typo))
    assert sent.returncode == 0 and sent.stdout.strip().isdigit()
    assert "no machine named 'simple_wroker' has run with this database" in sent.stderr
    assert smc("status", cwd=tmp_path, db=str(typo)).returncode == 0
