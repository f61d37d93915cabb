"""Data checked where it enters a worker (docs/runtime.md, "Typed data"): an inbound event
whose payload does not match its event's schema is dead-lettered, never applied, and the
worker goes on with the next one; a claimed job whose data does not match its type's schema
is failed (not retried), never run, and the next job is processed. Real engine, real SQLite
file, machines compiled by the real compiler.

Only smc's own wording is asserted (where the problem is, what was refused), never
jsonschema's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from smc.runtime.engine import Engine, StartupError
from smc.runtime.store import open_store
from smc.runtime.validation import DataChecks, job_data_error, payload_error, schema_error
from tests.support.harness import compile_machine, run_engine

EVENT_MACHINE = """
initial_state: idle
metadata: {machine_name: typed_listener}
events:
  go:
    payload:
      type: object
      properties: {n: {type: integer, minimum: 0}}
      required: [n]
  back: null
  stop: {payload: {type: object, properties: {why: {type: string}}}}
transitions:
  - {from: idle, to: working, event: go}
  - {from: working, to: idle, event: back}
  - {from: "*", to: done, event: stop}
actions:
  working:
    - {type: add_to_list, list_key: seen, value: "{payload.n}", success: back}
"""

JOB_MACHINE = """
initial_state: waiting
metadata: {machine_name: typed_worker}
jobs:
  task:
    data: {type: object, properties: {path: {type: string}}, required: [path]}
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: waiting, to: done, event: no_jobs}
  - {from: processing, to: waiting, event: job_done}
actions:
  waiting:
    - {type: check_database_queue, job_type: task, wait: 0}
  processing:
    - {type: add_to_list, list_key: processed, value: "{path}", success: job_done}
"""


def test_an_invalid_event_is_dead_lettered_and_the_next_one_handled(tmp_path: Path) -> None:
    machine = compile_machine(EVENT_MACHINE, tmp_path)
    database = tmp_path / "smc.db"
    with open_store(database) as store:
        wrong_type = store.send_event("typed_listener", "go", {"n": "one"}, source="test")
        missing = store.send_event("typed_listener", "go", None, source="test")
        below = store.send_event("typed_listener", "go", {"n": -1}, source="test")
        good = [store.send_event("typed_listener", "go", {"n": n}) for n in (1, 2)]
        stop = store.send_event("typed_listener", "stop", {"why": "done"})
    engine = run_engine(machine, database)
    assert engine.context["seen"] == [1, 2]
    assert engine.machine.payload == {"why": "done"}  # type: ignore[attr-defined]
    with open_store(database) as store:
        events = {event.id: event for event in store.list_events("typed_listener")}
    for event_id, where in ((wrong_type, "payload.n"), (missing, "payload"), (below, "payload.n")):
        event = events[event_id]
        assert event.status == "dead"
        assert event.last_error is not None
        assert event.last_error.startswith(f"invalid payload for event 'go': {where}: ")
    assert [events[i].status for i in (*good, stop)] == ["done"] * 3


def test_an_event_without_payload_is_checked_as_empty(tmp_path: Path) -> None:
    machine = compile_machine(EVENT_MACHINE, tmp_path)
    database = tmp_path / "smc.db"
    with open_store(database) as store:
        store.send_event("typed_listener", "stop")  # its fields are all optional
    engine = run_engine(machine, database)
    assert engine.machine.payload is None  # type: ignore[attr-defined]
    with open_store(database) as store:
        assert [event.status for event in store.list_events("typed_listener")] == ["done"]


def test_an_invalid_job_is_failed_not_retried_and_the_next_job_runs(tmp_path: Path) -> None:
    machine = compile_machine(JOB_MACHINE, tmp_path)
    database = tmp_path / "smc.db"
    with open_store(database) as store:
        first = store.add_job("task", {"path": "a"}).id
        wrong_type = store.add_job("task", {"path": 3}).id
        missing = store.add_job("task", {}).id
        last = store.add_job("task", {"path": "b"}).id
    engine = run_engine(machine, database)
    assert engine.context["processed"] == ["a", "b"]
    with open_store(database) as store:
        jobs = {job_id: store.get_job(job_id) for job_id in (first, wrong_type, missing, last)}
    for job_id, where in ((wrong_type, "job data.path"), (missing, "job data")):
        job = jobs[job_id]
        assert job is not None and job.status == "failed"
        assert job.attempts == 1  # failed at once, not retried
        assert job.last_error is not None
        assert job.last_error.startswith(f"invalid data for job type 'task': {where}: ")
    assert [jobs[i].status for i in (first, last)] == ["completed", "completed"]  # type: ignore[union-attr]


def test_claim_job_refuses_an_invalid_job_with_its_error_event(tmp_path: Path) -> None:
    machine = compile_machine(
        """
initial_state: claiming
jobs:
  task: {data: {type: object, required: [path]}}
transitions:
  - {from: claiming, to: claimed, event: claimed}
  - {from: claiming, to: refused, event: error}
actions:
  claiming:
    - {type: claim_job, job_id: "{wanted}"}
""",
        tmp_path,
    )
    database = tmp_path / "smc.db"
    with open_store(database) as store:
        job = store.add_job("task", {"other": 1}).id
    engine = run_engine(machine, database, initial_context={"wanted": job})
    assert engine.context["current_state"] == "refused"
    with open_store(database) as store:
        refused = store.get_job(job)
    assert refused is not None and refused.status == "failed" and refused.attempts == 1


def test_the_typed_context_comes_from_the_initial_context(tmp_path: Path) -> None:
    machine = compile_machine(
        """
initial_state: a
context:
  owner: {type: string}
  limit: {type: integer, minimum: 1, default: 3}
transitions:
  - {from: a, to: b, event: go}
""",
        tmp_path,
    )
    engine = Engine(machine, database=str(tmp_path / "smc.db"), initial_context={"owner": "me"})
    context = engine.machine.context  # type: ignore[attr-defined]
    assert (context.owner, context.limit) == ("me", 3)
    for bad in ({}, {"owner": 1}, {"owner": "me", "limit": 0}):
        with pytest.raises(StartupError) as raised:
            Engine(machine, database=str(tmp_path / "smc.db"), initial_context=bad)
        assert raised.value.exit_code == 2
        assert str(raised.value).startswith("--initial-context: ")


def test_placeholders_read_the_typed_context_defaults_included(tmp_path: Path) -> None:
    machine = compile_machine(
        """
initial_state: a
context:
  owner: {type: string}
  limit: {type: integer, default: 3}
  tags: {type: array, items: {type: string}, default: [x, y]}
transitions:
  - {from: a, to: done, event: noted}
actions:
  a:
    - {type: add_to_list, list_key: seen, value: "{owner}/{limit}/{tags.1}", success: noted}
""",
        tmp_path,
    )
    engine = run_engine(machine, tmp_path / "smc.db", initial_context={"owner": "me"})
    assert engine.context["seen"] == ["me/3/y"]
    assert (engine.context["limit"], engine.context["tags"]) == (3, ["x", "y"])
    given = run_engine(machine, tmp_path / "smc.db", initial_context={"owner": "me", "limit": 5})
    assert given.context["seen"] == ["me/5/y"]


def test_classes_without_schemas_check_nothing(tmp_path: Path) -> None:
    machine = compile_machine(
        "initial_state: a\ntransitions:\n  - {from: a, to: b, event: go}\n", tmp_path
    )
    checks = DataChecks(machine)
    assert checks.payload_error("go", "not even a mapping") is None
    assert checks.job_data_error("task", 3) is None
    assert payload_error(machine, "go", 3) is None and job_data_error(machine, "t", 3) is None


def test_schema_errors_name_where_and_never_fetch_references() -> None:
    schema = {
        "type": "object",
        "properties": {"files": {"type": "array", "items": {"$ref": "#/$defs/file"}}},
        "$defs": {"file": {"type": "string"}},
    }
    assert schema_error(schema, {"files": ["a"]}, "payload") is None
    problem = schema_error(schema, {"files": ["a", 2]}, "payload")
    assert problem is not None and problem.startswith("payload.files[1]: ")
    # a hand-written class could hold one (the checker refuses it, SMC080): the value is
    # refused, nothing is fetched, nothing raises
    remote = {"$ref": "https://example.invalid/schema.json"}
    problem = schema_error(remote, {}, "payload")
    assert problem is not None and problem.startswith("payload: the schema cannot be used: ")
