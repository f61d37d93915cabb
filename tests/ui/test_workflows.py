"""The web monitor's Workflows section without a browser (Starlette's TestClient; a real
SQLite file and a real PostgreSQL database): the run list and its counts, one run with its
tasks and its DAG drawn by ``dot``, hostile task names as text in the SVG, and the cancel
button's endpoint behind the CSRF check."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from smc.runtime.store import Store, open_store
from smc.runtime.store.sqlite import SqliteStore
from smc.ui.app import create_app
from smc.ui.diagrams import ALLOWED_ATTRIBUTES, ALLOWED_ELEMENTS, SVG_NS
from smc.ui.security import CSRF_COOKIE
from smc.ui.workflows import SCHEDULER_SILENT_SECONDS
from smc.workflow.diagram import STATE_COLOURS
from tests.support.backends import age_rows
from tests.ui.test_app import HTML_NAMES

#: Task names no workflow file may hold (the schema wants identifiers), but a stored
#: definition is data: the page must show them as text.
HOSTILE_TASK = '<img src=x onerror="window.pwned=1">"]; &amp; \\N\n}; digraph x { "a'


def _definition(names: list[str], needs: dict[str, list[str]]) -> dict[str, object]:
    return {
        "workflow": "wf<b>",
        "on_failure": "skip_dependents",
        "tasks": {
            name: {"job_type": f"type of {name}", "needs": needs.get(name, [])} for name in names
        },
    }


@pytest.fixture
def database(store_url: str) -> str:
    open_store(store_url).close()
    return store_url


@pytest.fixture
def client(database: str) -> Iterator[TestClient]:
    app = create_app(lambda: open_store(database), socket_dir=None)
    with TestClient(app, base_url="http://127.0.0.1:8520") as test_client:
        yield test_client


def _move(store: Store, run_id: str, token: str, task: str, to: str, **fields: object) -> None:
    current = {t.task: t for t in store.list_workflow_tasks(run_id)}[task]
    moved = store.update_workflow_task(
        run_id,
        task,
        token,
        from_state=current.state,
        from_attempt=current.attempt,
        state=to,
        attempt=int(fields.get("attempt", current.attempt)),  # type: ignore[call-overload]
        event=f"to {to}",
        job_id=fields.get("job_id"),  # type: ignore[arg-type]
        last_error=fields.get("last_error"),  # type: ignore[arg-type]
    )
    assert moved


def _make_run(database: str, run_id: str) -> str:
    """A run of four tasks (a hostile one among them) as a scheduler leaves it: one
    completed, one running, one failed with an error, one pending; the scheduler's token."""
    names = ["build", HOSTILE_TASK, "test", "publish"]
    needs = {HOSTILE_TASK: ["build"], "test": ["build"], "publish": [HOSTILE_TASK, "test"]}
    with open_store(database) as store:
        assert store.create_workflow_run(
            run_id, "wf<b>", f"trace-{run_id}", _definition(names, needs), names, "PENDING"
        )
        token = store.take_workflow_run(run_id, stale_after=30)
        assert token is not None
        _move(store, run_id, token, "build", "RUNNING", attempt=1, job_id=f"{run_id}.build.1")
        _move(store, run_id, token, "build", "COMPLETED", job_id=f"{run_id}.build.1")
        _move(store, run_id, token, "test", "RUNNING", attempt=1, job_id=f"{run_id}.test.1")
        _move(store, run_id, token, HOSTILE_TASK, "RUNNING", attempt=1, job_id="j<x>")
        _move(store, run_id, token, HOSTILE_TASK, "FAILED", job_id="j<x>", last_error=HTML_NAMES[0])
    return token


def test_the_run_list_counts_tasks_by_state_and_names_the_scheduler(
    client: TestClient, database: str
) -> None:
    assert client.get("/api/workflows").json()["runs"] == []
    token = _make_run(database, "r1")
    data = client.get("/api/workflows").json()
    assert data["states"] == list(STATE_COLOURS) and data["colours"] == STATE_COLOURS
    [run] = data["runs"]
    assert run["run_id"] == "r1" and run["workflow"] == "wf<b>" and run["status"] == "running"
    assert run["counts"] == {"COMPLETED": 1, "FAILED": 1, "PENDING": 1, "RUNNING": 1}
    assert run["tasks"] == 4 and run["finished_at"] is None and run["created_at"] > 0
    assert run["scheduler_pid"] is not None and run["scheduler_host"]
    assert "scheduler_token" not in run and "definition" not in run
    # The run goes on and finishes: the list follows (a finished run is then read once).
    with open_store(database) as store:
        _move(store, "r1", token, "test", "COMPLETED", job_id="r1.test.1")
        _move(store, "r1", token, "publish", "SKIPPED")
        assert store.finish_workflow_run("r1", token, "failed")
    for _ in range(2):
        [run] = client.get("/api/workflows").json()["runs"]
        assert run["status"] == "failed" and run["finished_at"] is not None
        assert run["counts"] == {"COMPLETED": 2, "FAILED": 1, "SKIPPED": 1}
        assert run["scheduler_pid"] is None


def test_a_running_runs_silent_scheduler_is_said_to_be_silent(
    client: TestClient, database: str
) -> None:
    """A run whose scheduler was killed showed "pid N on HOST" as if it ran, and a cancel
    request then seemed to do nothing. Not heard from for 10 s, it is marked silent."""
    _make_run(database, "quiet")
    [run] = client.get("/api/workflows").json()["runs"]
    assert run["scheduler_silent"] is False
    with open_store(database) as store:
        age_rows(store, SCHEDULER_SILENT_SECONDS + 5)
    [run] = client.get("/api/workflows").json()["runs"]
    assert run["scheduler_silent"] is True and run["scheduler_pid"] is not None
    assert client.get("/api/workflows/quiet?svg=0").json()["run"]["scheduler_silent"] is True


def test_a_run_has_its_tasks_and_its_dag_with_every_node_marked_by_task_name(
    client: TestClient, database: str
) -> None:
    _make_run(database, "r2")
    data = client.get("/api/workflows/r2").json()
    tasks = {t["task"]: t for t in data["tasks"]}
    assert [t["task"] for t in data["tasks"]] == ["build", HOSTILE_TASK, "test", "publish"]
    assert tasks["build"]["state"] == "COMPLETED" and tasks["build"]["job_id"] == "r2.build.1"
    assert tasks[HOSTILE_TASK]["last_error"] == HTML_NAMES[0]
    assert tasks[HOSTILE_TASK]["attempt"] == 1 and tasks["publish"]["attempt"] == 0
    assert tasks["test"]["job_type"] == "type of test"
    assert data["svg_error"] is None
    root = ET.fromstring(data["svg"])
    q = "{" + SVG_NS + "}"
    marked = {g.get("data-state") for g in root.iter(q + "g") if g.get("data-state")}
    assert marked == {"build", HOSTILE_TASK, "test", "publish"}
    for element in root.iter():
        assert element.tag.removeprefix(q) in ALLOWED_ELEMENTS
        assert set(element.attrib) <= ALLOWED_ATTRIBUTES | {"data-state"}
    # The hostile name is a label's text (dot drew it as such), never an element.
    texts = "\n".join(t.text or "" for t in root.iter(q + "text"))
    # (Graphviz would draw ``&amp;`` as ``&`` and ``\\N`` as the node's id: escaped.)
    assert '<img src=x onerror="window.pwned=1">"]; &amp; \\N' in texts
    # Four nodes, four edges: the name did not close the node or open another graph.
    assert len([g for g in root.iter(q + "g") if g.get("class") == "edge"]) == 4
    without = client.get("/api/workflows/r2?svg=0").json()
    assert "svg" not in without and without["tasks"] == data["tasks"]
    assert client.get("/api/workflows/nope").status_code == 404


def test_a_definition_that_cannot_be_drawn_says_why(client: TestClient, database: str) -> None:
    cyclic = _definition(["a", "b"], {"a": ["b"], "b": ["a"]})
    with open_store(database) as store:
        assert store.create_workflow_run("cyc", "wf", "t", cyclic, ["a", "b"], "PENDING")
    data = client.get("/api/workflows/cyc").json()
    assert data["svg"] is None and "cannot be drawn" in data["svg_error"]
    assert [t["state"] for t in data["tasks"]] == ["PENDING", "PENDING"]


def test_a_priority_too_large_for_an_integer_says_it_cannot_be_drawn(tmp_path: Path) -> None:
    """A stored ``"priority": 1e400`` (infinity once read) made ``int`` raise OverflowError,
    which the drawing did not catch: the run's page was a 500. (SQLite only: PostgreSQL's
    jsonb reads 1e400 back as an integer, which draws.)"""
    database = str(tmp_path / "smc.db")
    text = json.dumps(_definition(["a"], {})).replace('"needs"', '"priority": 1e400, "needs"')
    with open_store(database) as store:
        assert isinstance(store, SqliteStore)
        assert store.create_workflow_run(
            "huge", "wf", "t", _definition(["a"], {}), ["a"], "PENDING"
        )
        # No store writes it (it refuses infinities): written as another program could.
        store.connection.execute("UPDATE workflow_runs SET definition = :d", {"d": text})
        assert store.get_workflow_run("huge").definition["tasks"]["a"]["priority"] == math.inf
    app = create_app(lambda: open_store(database), socket_dir=None)
    with TestClient(app, base_url="http://127.0.0.1:8520") as client:
        response = client.get("/api/workflows/huge")
    assert response.status_code == 200
    data = response.json()
    assert data["svg"] is None and "cannot be drawn" in data["svg_error"]
    assert [t["state"] for t in data["tasks"]] == ["PENDING"]


def test_cancel_needs_the_csrf_header_and_sets_cancel_requested(
    client: TestClient, database: str
) -> None:
    token = _make_run(database, "r3")
    url = "/api/workflows/r3/cancel"
    assert client.post(url).status_code == 403
    client.get("/")
    csrf = client.cookies.get(CSRF_COOKIE)
    assert csrf
    assert client.post(url, headers={"x-smc-csrf": "forged"}).status_code == 403
    with open_store(database) as store:
        run = store.get_workflow_run("r3")
        assert run is not None and not run.cancel_requested
    done = client.post(url, headers={"x-smc-csrf": csrf})
    assert done.status_code == 200, done.text
    assert done.json()["run"]["cancel_requested"] is True
    with open_store(database) as store:
        run = store.get_workflow_run("r3")
        assert run is not None and run.cancel_requested and run.status == "running"
        # The scheduler sees the request and finishes the run cancelled; a second cancel
        # has nothing to do.
        assert store.finish_workflow_run("r3", token, "cancelled")
    again = client.post(url, headers={"x-smc-csrf": csrf})
    assert again.status_code == 409 and again.json()["ok"] is False
    assert (
        client.post("/api/workflows/nope/cancel", headers={"x-smc-csrf": csrf}).status_code == 404
    )
    assert client.get(url).status_code in (404, 405)
