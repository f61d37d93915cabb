"""Hostile input never jams a worker nor crashes the CLI (issue 10 items 3, 7, 9).

- JSON values are limited (64 levels, 4 MiB) at every entry: the CLI (exit 2, one line), the
  store API (``ValueError``), on both backends;
- a row beyond the limits written straight into the database is failed (a job) or dropped with
  the reason (an event) by a real ``smc run`` worker, which carries on with the next;
- bad ``--data``/``--payload``/``--initial-context`` (and other options) is exit 2 with one line
  naming the problem, never a traceback;
- newlines and terminal escapes in job data never reach the worker's log or ``smc monitor``
  raw.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from smc.runtime.jsonlimits import (
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    MAX_STORED_JSON_BYTES,
    JsonLimitError,
)
from smc.runtime.store import Store, open_store
from tests.support.backends import PG_URL
from tests.support.cli import command_name
from tests.support.harness import REPO, Runner, wait_until
from tests.support.machines import queue_worker


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- the limits, at the store API ----------------------------------------------------------------


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


def test_the_store_api_refuses_values_beyond_the_limits_on_both_backends(store: Store) -> None:
    deepest = json.loads(nested(MAX_JSON_DEPTH))
    too_deep = json.loads(nested(MAX_JSON_DEPTH + 1))
    store.add_job("t", data={"v": deepest[0]}, job_id="deepest")  # 64 levels with the object
    assert store.send_event("m", "e", deepest) > 0
    # Job data is an object: '{"v":""}' is 8 bytes of the limit, the string the rest.
    largest = {"v": "x" * (MAX_JSON_BYTES - 8)}
    store.add_job("t", data=largest, job_id="largest")
    # PostgreSQL returns this one half as long again ("[1, 1, …]"): still read back whole.
    ones = {"v": [1] * ((MAX_JSON_BYTES - 7) // 2)}  # '{"v":[' + '1,' * n - ',' + ']}'
    assert len(json.dumps(ones, separators=(",", ":"))) <= MAX_JSON_BYTES
    store.add_job("t", data=ones, job_id="ones")
    for job_id, value in (("largest", largest), ("ones", ones)):
        stored = store.get_job(job_id)
        assert stored is not None and stored.data_error() is None and stored.data == value
    too_large = {"v": "x" * (MAX_JSON_BYTES - 7)}
    for value in ({"v": too_deep[0]}, {"v": deepest}, too_large):
        with pytest.raises(JsonLimitError, match="job data"):
            store.add_job("t", data=value)
    for value in (too_deep, {"v": deepest}, "x" * (MAX_JSON_BYTES - 1)):
        with pytest.raises(JsonLimitError, match="event payload"):
            store.send_event("m", "e", value)
    store.register_machine("m", "s")
    with pytest.raises(JsonLimitError, match="event payload"):
        store.update_machine_and_send("m", "s", [("other", "e", too_deep)])
    job = store.claim_job("w")
    assert job is not None
    with pytest.raises(JsonLimitError, match="job result"):
        store.complete_job(job.id, job.claim_token, too_deep)
    for value in (float("nan"), "a\x00b", {"k\x00": 1}, "\ud800"):
        with pytest.raises(ValueError):
            store.add_job("t", data={"v": value})
    with pytest.raises(ValueError, match="32-bit"):
        store.add_job("t", priority=2**40)
    # nothing refused was stored; the boundary values round-trip
    assert {j.id for j in store.list_jobs()} == {"deepest", "largest", "ones"}
    deepest_job = store.get_job("deepest")
    assert deepest_job is not None and deepest_job.data == {"v": deepest[0]}


# --- rows beyond the limits, met by a real worker ------------------------------------------------

#: The queue worker, also taking the events the test sends it: ``ping`` (poisoned or not) and
#: ``stop``.
WORKER = queue_worker(
    "sturdy", transitions=[("waiting", "waiting", "ping"), ("waiting", "stopped", "stop")]
)

#: What the issue reported: an array nested ~980 deep, small enough to slip in anywhere.
POISON = nested(980)


def _insert_raw(store_url: str, table: str, values: dict[str, object]) -> None:
    """Write a row the way another tool (or an older smc) would: straight into the table."""
    columns = ", ".join(values)
    if store_url.startswith("postgresql"):
        schema = store_url.split("schema=")[1]
        marks = ", ".join(f"%({name})s" for name in values)
        with psycopg.connect(PG_URL, autocommit=True) as connection:
            connection.execute(f"INSERT INTO {schema}.{table} ({columns}) VALUES ({marks})", values)
        return
    now = time.time()
    values = {**values, "created_at": now} | ({"run_after": now} if table == "jobs" else {})
    columns = ", ".join(values)
    marks = ", ".join(f":{name}" for name in values)
    with sqlite3.connect(store_url) as connection:
        connection.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", values)


@pytest.mark.slow
def test_a_worker_fails_an_undecodable_job_dead_letters_an_undecodable_event_and_carries_on(
    runner: Runner, store_url: str
) -> None:
    (runner.cwd / "w.yaml").write_text(WORKER)
    db = ["--db", store_url]
    worker = runner.start("run", "w.yaml", *db)

    def statuses() -> dict[str, str]:
        with open_store(store_url) as store:
            return {job.id: job.status for job in store.list_jobs(limit=1000)}

    def running() -> bool:
        if worker.popen.poll() is not None:
            pytest.fail(f"the worker exited:\n{worker.output()}")
        with open_store(store_url) as store:
            row = store.get_machine("sturdy")
        return row is not None and row.status == "running"

    wait_until(running, 30, worker.output)
    _insert_raw(store_url, "jobs", {"id": "poison", "job_type": "t", "data": POISON})
    _insert_raw(
        store_url,
        "jobs",
        {"id": "too-big", "job_type": "t", "data": f'"{"x" * (MAX_STORED_JSON_BYTES + 1)}"'},
    )
    good = runner.run("jobs", "add", "--type", "t", *db).stdout.strip()
    wait_until(
        lambda: statuses().get(good) == "completed"
        and statuses().get("poison") == "failed"
        and statuses().get("too-big") == "failed",
        60,
        lambda: f"{statuses()}\n{worker.output()}",
    )
    with open_store(store_url) as store:
        poison, too_big = store.get_job("poison"), store.get_job("too-big")
    assert poison is not None and poison.attempts == 1 and poison.last_error is not None
    assert "deeper than the limit of 64" in poison.last_error
    assert too_big is not None and too_big.last_error is not None
    assert "the limit is" in too_big.last_error
    # Undecodable events are dead-lettered with the reason; the events behind them are delivered.
    _insert_raw(
        store_url,
        "machine_events",
        {"target_machine": "sturdy", "event_type": "ping", "payload": POISON},
    )
    _insert_raw(
        store_url,
        "machine_events",
        {
            "target_machine": "sturdy",
            "event_type": "pong",
            "payload": f'"{"x" * (MAX_STORED_JSON_BYTES + 1)}"',
        },
    )
    runner.run("send", "sturdy", "stop", "--payload", "{}", *db)
    assert worker.wait(30) == 0, worker.output()
    output = worker.output()
    assert "Traceback" not in output
    with open_store(store_url) as store:
        events = sorted(store.list_events(target="sturdy"), key=lambda event: event.id)
    assert [(event.event_type, event.status) for event in events] == [
        ("ping", "dead"),
        ("pong", "dead"),
        ("stop", "done"),
    ]
    ping, pong = events[0].last_error, events[1].last_error
    assert ping is not None and "deeper than the limit of 64" in ping
    assert pong is not None and "the limit is" in pong
    assert events[2].last_error is None
    status = json.loads(runner.run("status", "--format", "json", *db).stdout)
    assert status["events"] == {"pending": 0, "processing": 0, "done": 1, "dead": 2}
    assert (runner.cwd / "done.log").read_text().split() == [good]


# --- hostile command-line input ------------------------------------------------------------------


def _smc(
    cwd: Path, *args: str, stdin: bytes | None = None, db: str | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("SMC_DB", None)
    command = [sys.executable, "-m", "smc", *args]
    if db is not None:
        command += ["--db", db]
    return subprocess.run(
        command, cwd=cwd, env=env, input=stdin, capture_output=True, timeout=60, check=False
    )


def _bad_inputs(directory: Path) -> dict[str, tuple[str, bytes | None]]:
    """Name -> (option value, stdin) of every kind of bad JSON input."""
    files = {
        "not-utf8.json": b'{"a": "\xff\xfe"}',
        "deep.json": nested(980).encode(),
        "just-too-deep.json": nested(MAX_JSON_DEPTH + 1).encode(),
        "huge-value.json": json.dumps({"blob": "x" * MAX_JSON_BYTES}).encode(),
        "huge-file.json": b" " * (17 << 20) + b"{}",
    }
    for name, content in files.items():
        (directory / name).write_bytes(content)
    (directory / "a-directory").mkdir(exist_ok=True)
    return {
        "NaN": ("NaN", None),
        "Infinity": ("Infinity", None),
        "-Infinity": ('{"a": [-Infinity]}', None),
        "1e999": ("1e999", None),
        "huge integer": ("1" * 5000, None),
        "not JSON": ("{oops", None),
        "NUL character": ('"a\\u0000b"', None),
        "lone surrogate": ('{"k": "\\ud800"}', None),
        "@file not UTF-8": ("@not-utf8.json", None),
        "@missing file": ("@missing.json", None),
        "@directory": ("@a-directory", None),
        "@nested 980 deep": ("@deep.json", None),
        "@nested 65 deep": ("@just-too-deep.json", None),
        "@value over 4 MiB": ("@huge-value.json", None),
        "@file over 16 MiB": ("@huge-file.json", None),
        "stdin not UTF-8": ("-", b"\xff"),
        "stdin nested deep": ("-", nested(5000).encode()),
        "@name with escapes": ("@missing\n\x1b[2J.json", None),
    }


def _assert_one_line_usage_error(result: subprocess.CompletedProcess[bytes], prefix: str) -> None:
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    assert stderr.count("\n") == 1 and stderr.endswith("\n"), repr(stderr)
    assert stderr.startswith(prefix), stderr
    assert "\x1b" not in stderr
    assert result.stdout == b""


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ("jobs", "add", "--type", "t", "--data"),
        ("send", "m", "e", "--payload"),
        ("run", "m.yaml", "--initial-context"),
    ],
    ids=["jobs add --data", "send --payload", "run --initial-context"],
)
def test_bad_json_input_is_a_one_line_usage_error(tmp_path: Path, command: tuple[str, ...]) -> None:
    db = str(tmp_path / "smc.db")
    option = command[-1]
    for name, (value, stdin) in _bad_inputs(tmp_path).items():
        result = _smc(tmp_path, *command, value, stdin=stdin, db=db)
        try:
            _assert_one_line_usage_error(result, f"smc {command_name(command)}: error: {option}")
        except AssertionError as error:
            raise AssertionError(f"{name}: {error}") from None
    if Path(db).exists():
        with open_store(db) as store:
            assert store.list_jobs() == [] and store.list_events() == []


@pytest.mark.parametrize(
    "args",
    [
        ("jobs", "add", "--type", "t", "--priority", "99999999999999999999"),
        ("jobs", "add", "--type", "t", "--max-attempts", "0"),
        ("jobs", "add", "--type", "t", "--max-attempts", "4294967296"),
        ("jobs", "list", "--limit", "99999999999999999999"),
        ("run", "m.yaml", "--lease-seconds", "nan"),
        ("run", "m.yaml", "--lease-seconds", "inf"),
        ("run", "m.yaml", "--monitor-readers", "0"),
        ("run", "m.yaml", "--history-retention", "0"),
        ("run", "m.yaml", "--trace-id", ""),
        ("monitor", "--timeout", "nan"),
        ("history", "--limit", "9223372036854775808"),
        ("history", "--after-id", "99999999999999999999999"),
        ("jobs", "add", "--type", "t", "--id", ""),
        ("jobs", "add", "--type", "t", "--id", "."),
        ("jobs", "add", "--type", "t", "--id", ".."),
    ],
)
def test_out_of_range_options_are_one_line_usage_errors(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = _smc(tmp_path, *args, db=str(tmp_path / "smc.db"))
    _assert_one_line_usage_error(result, f"smc {command_name(args)}: error: --")


@pytest.mark.parametrize(
    "args",
    [
        ("jobs", "add", "--type", "t\udcff"),
        ("jobs", "add", "--type", "t", "--id", "x\udcffy"),
        ("send", "m\udcff", "e"),
        ("send", "m", "e\udcfe"),
    ],
)
def test_arguments_that_are_not_utf8_are_one_line_usage_errors(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """Bytes that are not UTF-8 on the command line (``$'t\\xff'``; Python holds them as
    lone surrogates, passed back as the same bytes here) once failed with an internal
    error's traceback where the text met the database."""
    db = str(tmp_path / "smc.db")
    result = _smc(tmp_path, *args, db=db)
    _assert_one_line_usage_error(result, f"smc {command_name(args)}: error: argument ")
    assert b"\\udc" in result.stderr  # the argument named, escaped
    with open_store(db) as store:
        assert store.list_jobs() == [] and store.list_events() == []


def test_the_limits_are_inclusive_at_the_command_line(tmp_path: Path) -> None:
    db = str(tmp_path / "smc.db")
    deepest = '{"v":' + nested(MAX_JSON_DEPTH - 1) + "}"
    (tmp_path / "deepest.json").write_text(deepest)
    added = _smc(tmp_path, "jobs", "add", "--type", "t", "--data", "@deepest.json", db=db)
    assert added.returncode == 0, added.stderr
    pretty = json.dumps({"blob": "x" * (MAX_JSON_BYTES - 20)}, indent=8)
    sent = _smc(tmp_path, "send", "m", "e", "--payload", "-", stdin=pretty.encode(), db=db)
    assert sent.returncode == 0, sent.stderr
    with open_store(db) as store:
        (job,) = store.list_jobs()
        (event,) = store.list_events()
    assert job.data == json.loads(deepest)
    assert event.payload == json.loads(pretty)


# --- log forging ---------------------------------------------------------------------------------

FORGER = """
initial_state: waiting
metadata: {machine_name: scribe}
transitions:
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: waiting, to: working, event: new_job}
  - {from: working, to: waiting, event: error}
  - {from: working, to: waiting, event: job_done}
actions:
  waiting:
    - {type: check_database_queue}
  working:
    - {type: log, message: "note: {note}"}
    - {type: activity_log, message: "note: {note}"}
    - {type: bash, command: "printf '%s\\\\n' {note} >&2; exit 3"}
"""

FORGED = "\n2026-01-01 FAKE ERROR"
CLEAR_SCREEN = "\x1b[2J"
#: The start of every record the worker's log formatter writes.
RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")
#: The start of every line of ``smc monitor``'s human format.
MONITOR_LINE = re.compile(r"\d\d:\d\d:\d\d\.\d{3} ")


def test_newlines_and_escapes_in_job_data_never_reach_the_log_or_monitor_raw(
    runner: Runner,
) -> None:
    (runner.cwd / "w.yaml").write_text(FORGER)
    worker = runner.start("run", "w.yaml")
    runner.wait_running(worker, "scribe")
    monitors = {form: runner.start("monitor", "--format", form) for form in ("human", "json")}
    # Each monitor follows once it has found the socket, which a loaded host can take more
    # than a second to reach: its first record (the worker's next idle poll) shows that.
    wait_until(
        lambda: MONITOR_LINE.match(monitors["human"].output())
        and monitors["json"].output().startswith("{"),
        30,
        lambda: "\n".join(monitor.output() for monitor in monitors.values()),
    )
    note = f"{FORGED} {CLEAR_SCREEN} \u202eevil\u202c"
    job_id = runner.run(
        "jobs", "add", "--type", "t", "--id", f"job{FORGED}{CLEAR_SCREEN}", "--max-attempts", "1",
        "--data", json.dumps({"note": note}),
    ).stdout.strip()  # fmt: skip
    wait_until(
        lambda: runner.job_statuses().get(f"job{FORGED}{CLEAR_SCREEN}") == "failed",
        60,
        lambda: f"{runner.job_statuses()}\n{worker.output()}",
    )
    time.sleep(1.0)  # the last records reach the monitors
    for monitor in monitors.values():
        monitor.signal(signal.SIGINT)  # how a live tail ends
        assert monitor.wait(10) == 0, monitor.output()
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == 0
    log = worker.output()
    assert job_id.startswith("job")
    for text in [log, *(monitor.output() for monitor in monitors.values())]:
        assert "\x1b" not in text and "\u202e" not in text
    lines = log.splitlines()
    assert all(RECORD.match(line) for line in lines), log
    # the data did reach the log, escaped: the test cannot pass by logging nothing
    assert any("note: \\n2026-01-01 FAKE ERROR \\x1b[2J \\u202eevil" in line for line in lines)
    assert any("bash stderr" in line and "FAKE ERROR" in line for line in lines), log
    human = monitors["human"].output().splitlines()
    assert human and all(MONITOR_LINE.match(line) for line in human), human
    assert any("job=job\\n2026-01-01 FAKE ERROR\\x1b[2J" in line for line in human), human
    assert any("note: \\n2026-01-01 FAKE ERROR \\x1b[2J" in line for line in human), human
    records = [json.loads(line) for line in monitors["json"].output().splitlines()]
    assert any(record.get("message") == f"note: {note}" for record in records), records
    listed = runner.run("jobs", "list").stdout
    assert "\x1b" not in listed and "FAKE ERROR" in listed
    assert not any(line.startswith("2026-01-01") for line in listed.splitlines())
