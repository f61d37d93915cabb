"""The web monitor's server without a browser (Starlette's TestClient, a real SQLite file):
the token, the host check, CSRF, escaping of names in the diagrams, the bounded per-browser
queues, and the command line's refusals (real ``smc ui`` processes)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.testclient import TestClient

from smc.runtime.store import Store, StoreError, configuration_text, history_entry, open_store
from smc.ui.app import JOB_LIST_LIMIT, create_app
from smc.ui.diagrams import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_ELEMENTS,
    SVG_NS,
    DiagramCache,
    DiagramUnavailable,
    load_type,
)
from smc.ui.feed import LiveFeed, superseded_dropped
from smc.ui.security import CSRF_COOKIE, token_cookie
from smc.ui.server import is_loopback
from tests.support.backends import postgres_schema_url
from tests.support.harness import REPO, runner_in, wait_until
from tests.support.web import free_port, serve_and_stream

TOKEN = "s3cret-token-0123456789"
ODD_NAMES = REPO / "tests" / "golden" / "diagrams" / "inputs" / "odd_names.yaml"
#: Names meant to run script if they ever became markup.
HTML_NAMES = [
    "<script>window.pwned=1</script>",
    '"><img src=x onerror="window.pwned=1">',
    "</title><svg onload='window.pwned=1'>",
    "a &amp; b ]]> <!-- c -->",
]


@pytest.fixture
def database(store_url: str) -> str:
    """An empty store, once on SQLite and once on PostgreSQL."""
    open_store(store_url).close()
    return store_url


class WithoutHistory:
    """A real store with its ``history`` hidden: the page as it is on a store without the
    durable history (the server detects it with ``getattr``)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> object:
        if name == "history":
            raise AttributeError(name)
        return getattr(self._store, name)


def _has_history(database: str) -> bool:
    with open_store(database) as store:
        return callable(getattr(store, "history", None))


def _client(database: str, *, history: bool = True, **options: object) -> TestClient:
    def opener() -> Store:
        store = open_store(database)
        return store if history else WithoutHistory(store)  # type: ignore[return-value]

    app = create_app(opener, socket_dir=None, **options)  # type: ignore[arg-type]
    return TestClient(app, base_url="http://127.0.0.1:8520")


@pytest.fixture
def client(database: str) -> Iterator[TestClient]:
    with _client(database) as test_client:
        yield test_client


def _csrf(client: TestClient) -> str:
    client.get("/")
    value = client.cookies.get(CSRF_COOKIE)
    assert value
    return value


# --- loopback, host, token ---------------------------------------------------------------


def test_the_default_bind_is_loopback_and_other_binds_need_a_token(database: str) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10")
    with pytest.raises(ValueError):
        _client(database, loopback_only=False)


def test_without_a_token_only_loopback_host_names_are_served(client: TestClient) -> None:
    assert client.get("/api/state").status_code == 200
    assert client.get("/api/state", headers={"host": "localhost:8520"}).status_code == 200
    # A page on another domain that re-points its name at 127.0.0.1 (DNS rebinding):
    refused = client.get("/api/state", headers={"host": "evil.example:8520"})
    assert refused.status_code == 400
    assert "machines" not in refused.text
    assert client.get("/api/state", headers={"host": "127.0.0.2:8520"}).status_code == 400


def test_a_server_bound_to_another_loopback_address_answers_to_it(database: str) -> None:
    """``smc ui --host 127.0.0.2`` once started and then refused every request."""
    with _client(database, bound_host="127.0.0.2") as client:
        assert client.get("/api/state", headers={"host": "127.0.0.2:8520"}).status_code == 200
        assert client.get("/api/state", headers={"host": "127.0.0.1:8520"}).status_code == 200
        refused = client.get("/api/state", headers={"host": "evil.example:8520"})
        assert refused.status_code == 400


def test_with_a_token_every_request_must_present_it(database: str) -> None:
    with _client(database, token=TOKEN, loopback_only=False) as client:
        for path in ("/", "/api/state", "/api/jobs", "/api/stream", "/static/app.js"):
            assert client.get(path).status_code == 401, path
        assert client.get("/api/state").text.startswith("a token is required: ")
        wrong = "x" * len(TOKEN)
        refused = client.get("/api/stream", headers={"authorization": f"Bearer {wrong}"})
        assert refused.status_code == 401
        assert refused.text.startswith("wrong token: send the monitor's token as Authorization")
        client.cookies.set(token_cookie(8520), wrong)
        assert client.get("/api/state").status_code == 401
        client.cookies.clear()
        # Another port's monitor's cookie, however right its token, is not this one's.
        client.cookies.set(token_cookie(8521), TOKEN)
        assert client.get("/api/state").status_code == 401
        client.cookies.clear()
        refused = client.get(f"/?token={wrong}")
        assert refused.status_code == 401 and refused.text.startswith("wrong token: open /?token")
        good = client.get("/api/state", headers={"authorization": f"Bearer {TOKEN}"})
        assert good.status_code == 200 and "machines" in good.json()
        # A browser opens /?token=T once: a cookie, and the token leaves the address bar.
        login = client.get(f"/?token={TOKEN}", follow_redirects=False)
        assert login.status_code == 303 and login.headers["location"] == "/"
        set_cookie = login.headers["set-cookie"]
        assert set_cookie.startswith(f"{token_cookie(8520)}=")
        # Lax: a link from another site logs in (tests/ui/test_browser.py follows one).
        assert "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie
        assert client.get("/api/state").status_code == 200  # the cookie now
        assert client.get("/static/app.css").status_code == 200
        # The cookie holds a session of this server, never the token: cookies reach every
        # port of the host, and another service there must not learn the token from it.
        session = client.cookies[token_cookie(8520)]
        assert TOKEN not in set_cookie and len(session) >= 40
        client.cookies.clear()
        client.cookies.set(token_cookie(8520), TOKEN)  # the token itself is no session
        assert client.get("/api/state").status_code == 401
        # A second opening of the link is a second session; both hold.
        client.cookies.clear()
        client.get(f"/?token={TOKEN}", follow_redirects=False)
        assert client.cookies[token_cookie(8520)] != session
        assert client.get("/api/state").status_code == 200
        client.cookies.set(token_cookie(8520), session)
        assert client.get("/api/state").status_code == 200
    # A session dies with its server: the next one, given the same token, refuses it.
    with _client(database, token=TOKEN, loopback_only=False) as client:
        client.cookies.set(token_cookie(8520), session)
        assert client.get("/api/state").status_code == 401


# --- CSRF ----------------------------------------------------------------------------------


def test_retry_needs_the_csrf_header_matching_the_cookie(client: TestClient, database: str) -> None:
    with open_store(database) as store:
        job = store.add_job("check", {"verdict": "fail"}, max_attempts=1)
        claimed = store.claim_job("w", ["check"])
        assert claimed is not None
        store.fail_job(job.id, "boom", claimed.claim_token)
    url = f"/api/jobs/{job.id}/retry"
    assert client.post(url).status_code == 403  # no cookie, no header
    token = _csrf(client)
    assert client.post(url).status_code == 403  # the cookie alone (what a forged form sends)
    assert client.post(url, headers={"x-smc-csrf": "forged"}).status_code == 403
    evil = client.post(url, headers={"x-smc-csrf": token, "origin": "http://evil.example"})
    assert evil.status_code == 403
    with open_store(database) as store:
        found = store.get_job(job.id)
        assert found is not None and found.status == "failed"
    done = client.post(url, headers={"x-smc-csrf": token, "origin": "http://127.0.0.1:8520"})
    assert done.status_code == 200, done.text
    assert done.json()["job"]["status"] == "pending"
    with open_store(database) as store:
        found = store.get_job(job.id)
        assert found is not None and found.status == "pending"
    # Cancel, and a second retry that has nothing to do (409, said in words).
    cancel = client.post(f"/api/jobs/{job.id}/cancel", headers={"x-smc-csrf": token})
    assert cancel.status_code == 200 and cancel.json()["job"]["status"] == "cancelled"
    again = client.post(f"/api/jobs/{job.id}/cancel", headers={"x-smc-csrf": token})
    assert again.status_code == 409 and again.json()["ok"] is False
    assert client.get(f"/api/jobs/{job.id}/cancel").status_code in (404, 405)
    # A retry the queue's rules refuse is a 409 in words too, not a 503 ("the database: …"):
    # another pending job holds its dedupe key.
    with open_store(database) as store:
        store.add_job("check", job_id="held", dedupe_key="k")
        assert store.cancel_job("held")
        store.add_job("check", job_id="holder", dedupe_key="k")
    refused = client.post("/api/jobs/held/retry", headers={"x-smc-csrf": token})
    assert refused.status_code == 409, refused.text
    assert (
        "dedupe key" in refused.json()["error"] and refused.json()["job"]["status"] == "cancelled"
    )


def test_a_write_waiting_for_a_locked_database_blocks_no_read_and_fails_in_words(
    tmp_path: Path,
) -> None:
    """A worker holding SQLite's write lock: the button's write waits for it on its own
    thread while the page's reads go on, and past the store's wait it is a 503 with the
    reason as JSON, not a 500 (it once was both, and froze every read for 10 s)."""
    database = str(tmp_path / "locked.db")
    with open_store(database) as store:
        for job_id in ("first", "second"):
            store.add_job("check", {}, job_id=job_id)

    def locked() -> sqlite3.Connection:
        lock = sqlite3.connect(database, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        return lock

    # A write that waits (for up to a minute) until the lock goes: a read meanwhile is
    # answered while it still waits.
    app = create_app(lambda: open_store(database, busy_timeout=60.0), socket_dir=None)
    with TestClient(app, base_url="http://127.0.0.1:8520") as client:
        token = _csrf(client)
        answers: list[Any] = []
        lock = locked()
        writer = threading.Thread(
            target=lambda: answers.append(
                client.post("/api/jobs/first/cancel", headers={"x-smc-csrf": token})
            )
        )
        writer.start()
        time.sleep(0.5)  # the write is waiting for the lock by then
        try:
            listed = client.get("/api/jobs")
            assert writer.is_alive() and answers == []  # answered while the write waits
            assert listed.status_code == 200
            assert [found["id"] for found in listed.json()["jobs"]] == ["second", "first"]
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        writer.join(60)
        [done] = answers
        assert done.status_code == 200 and done.json()["job"]["status"] == "cancelled"

    # A write that gives up: the reason, as JSON.
    app = create_app(lambda: open_store(database, busy_timeout=0.5), socket_dir=None)
    with TestClient(app, base_url="http://127.0.0.1:8520") as client:
        token = _csrf(client)
        lock = locked()
        try:
            refused = client.post("/api/jobs/second/cancel", headers={"x-smc-csrf": token})
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        assert refused.status_code == 503
        assert refused.json()["error"].startswith("the database: ")
        assert client.get("/api/jobs/second").json()["job"]["status"] == "pending"


def test_every_response_has_the_security_headers(client: TestClient) -> None:
    for path in ("/", "/api/state", "/static/app.js", "/nowhere"):
        response = client.get(path)
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "default-src 'none'" in policy
        assert response.headers["x-content-type-options"] == "nosniff"


def test_the_page_has_no_inline_script_and_its_assets_ship_in_the_package(
    client: TestClient,
) -> None:
    page = client.get("/").text
    root = Path(__file__).resolve().parents[2] / "smc" / "ui" / "static"
    assert "<script>" not in page and "onclick" not in page and "http" not in page
    for asset in ("app.js", "app.css", "favicon.svg"):
        served = client.get(f"/static/{asset}")
        assert served.status_code == 200
        assert served.content == (root / asset).read_bytes()
    script = (root / "app.js").read_text(encoding="utf-8").splitlines()
    code = [line for line in script if not line.lstrip().startswith("//")]
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert not any(sink in line for line in code), sink


# --- the API --------------------------------------------------------------------------------


def test_the_job_list_leaves_out_data_results_and_claim_tokens(
    client: TestClient, database: str
) -> None:
    """The table shows neither a job's data nor its result, which can be megabytes each (200
    jobs of 3 MB once made one read of 123 MB); its detail has the data, and leaves it out
    when the page already has it (``?data=0``). No answer carries a claim token, the fencing
    token a worker's completion presents."""
    big = {"blob": "x" * 3_000_000}
    with open_store(database) as store:
        for n in range(3):
            store.add_job("big", big, job_id=f"big{n}")
        claimed = store.claim_job("w")
        assert claimed is not None and claimed.claim_token
    listed = client.get("/api/jobs")
    assert len(listed.content) < 10_000, len(listed.content)
    jobs = listed.json()["jobs"]
    assert len(jobs) == 3 and {job["status"] for job in jobs} == {"pending", "processing"}
    assert not any({"data", "result", "claim_token"} & set(job) for job in jobs), jobs
    detail = client.get(f"/api/jobs/{claimed.id}").json()["job"]
    assert detail["data"] == big and "claim_token" not in detail
    again = client.get(f"/api/jobs/{claimed.id}?data=0").json()["job"]
    assert "data" not in again and again["status"] == "processing"
    assert claimed.claim_token not in listed.text + client.get(f"/api/jobs/{claimed.id}").text


def test_jobs_filter_by_status_and_type(client: TestClient, database: str) -> None:
    with open_store(database) as store:
        store.add_job("a", {"n": 1}, job_id="a1")
        store.add_job("b", {"n": 2}, job_id="b2")
        store.add_job("b", {"n": 3}, job_id="b3")
    assert len(client.get("/api/jobs").json()["jobs"]) == 3
    only_b = client.get("/api/jobs?type=b").json()["jobs"]
    assert sorted(job["id"] for job in only_b) == ["b2", "b3"]
    # A page of one type: the filter is the store's query (tests/store/test_jobs.py), so a
    # job of the type is found behind any number of newer jobs of other types.
    with open_store(database) as store:
        store.add_job("c", {"n": 4}, job_id="c4")
        for n in range(JOB_LIST_LIMIT + 5):
            store.add_job("a", {"n": n})
    assert [job["id"] for job in client.get("/api/jobs?type=c").json()["jobs"]] == ["c4"]
    assert len(client.get("/api/jobs?type=a").json()["jobs"]) == JOB_LIST_LIMIT
    assert client.get("/api/jobs?status=failed").json()["jobs"] == []
    assert client.get("/api/jobs?status=nonsense").status_code == 400
    assert client.get("/api/jobs/unknown-id").status_code == 404


class TickingClock:
    """A clock that moves one second at each reading: a whole count of the queue (a reading
    before it and one after) takes one second, so the next is due 100 s later
    (``FULL_COUNTS_SHARE``, 1 %); ``now`` may be set to jump ahead."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_the_finished_jobs_are_recounted_within_their_share_of_the_time(database: str) -> None:
    with open_store(database) as store:
        for index in range(3):
            store.add_job("t", job_id=f"j{index}")
    clock = TickingClock()
    with _client(database, poll_interval=3600.0, clock=clock) as client:
        assert client.get("/api/jobs").json()["counts"]["pending"] == 3  # a whole count
        with open_store(database) as store:
            job = store.claim_job("w")
            assert job is not None
            store.complete_job(job.id, claim_token=job.claim_token)
        # The open jobs are counted at every read; the finished ones are as last counted.
        counts = client.get("/api/state").json()["queue"]
        assert (counts["pending"], counts["processing"], counts["completed"]) == (2, 0, 0)
        clock.now += 200.0
        counts = client.get("/api/jobs").json()["counts"]
        assert (counts["pending"], counts["completed"]) == (2, 1)
        # A retry or a cancel through the page counts everything at the next read.
        token = _csrf(client)
        cancel = client.post("/api/jobs/j2/cancel", headers={"x-smc-csrf": token})
        assert cancel.status_code == 200
        counts = client.get("/api/jobs").json()["counts"]
        assert (counts["pending"], counts["completed"], counts["cancelled"]) == (1, 1, 1)


def test_machine_and_job_data_come_back_as_json_data(client: TestClient, database: str) -> None:
    hostile = HTML_NAMES[1]
    with open_store(database) as store:
        store.register_machine(hostile, HTML_NAMES[0], config_path=None)
        job = store.add_job(hostile, {"x": HTML_NAMES[2]})
    state = client.get("/api/state")
    assert state.headers["content-type"] == "application/json"
    machines = state.json()["machines"]
    assert [(m["name"], m["state"]) for m in machines] == [(hostile, HTML_NAMES[0])]
    shown = client.get(f"/api/jobs/{job.id}").json()
    assert shown["job"]["data"] == {"x": HTML_NAMES[2]} and shown["job"]["job_type"] == hostile
    if _has_history(database):  # the job's story: its addition, from the store's history
        assert [row["kind"] for row in shown["history"]] == ["job_added"]
        assert shown["history"][0]["job_id"] == job.id
    else:
        assert shown["history"] is None


def test_activity_and_trace_come_from_the_history_when_the_store_keeps_it(
    client: TestClient, database: str
) -> None:
    with open_store(database) as store:
        job = store.add_job("check", {}, max_attempts=1)
        claimed = store.claim_job("w", ["check"])
        assert claimed is not None
        store.fail_job(job.id, "it broke", claimed.claim_token)
        history = getattr(store, "history", None)
        rows = None if history is None else [row.to_dict() for row in history(job_id=job.id)]
    activity = client.get("/api/activity").json()
    if rows is None:
        assert activity["history"] is None
        return
    assert [row["kind"] for row in rows] == ["job_added", "job_claimed", "job_failed"]
    assert [(r["kind"], r["job_id"]) for r in activity["history"]] == [("job_failed", job.id)]
    trace_id = rows[0]["trace_id"]
    assert trace_id
    traced = client.get(f"/api/trace/{trace_id}").json()["rows"]
    assert [row["id"] for row in traced] == [row["id"] for row in rows]
    typed = client.get(f"/api/trace/{trace_id.lower()}").json()["rows"]  # ULIDs: any case
    assert typed == traced


def test_a_trace_id_with_a_slash_is_served(client: TestClient, database: str) -> None:
    """A trace id is any text a caller gave (``smc jobs add --trace-id``): one holding ``/``
    once matched no route (404), as job ids holding it did before their routes took a path."""
    with open_store(database) as store:
        job = store.add_job("check", {}, trace_id="team/alpha-42")
    rows = client.get("/api/trace/team%2Falpha-42").json()["rows"]
    assert [(row["kind"], row["job_id"]) for row in rows] == [("job_added", job.id)]
    assert client.get("/api/trace/team/alpha-42").json()["rows"] == rows


def test_the_polls_read_of_the_processing_jobs_leaves_their_data_unread(database: str) -> None:
    """Every poll (once a second) looks up which machine holds which job: it once read the
    data and result of up to 1,000 processing jobs (megabytes each, perhaps) to use two
    fields."""
    calls: list[tuple[Any, dict[str, Any]]] = []

    class Recording(WithoutHistory):
        def __getattr__(self, name: str) -> object:
            found = getattr(self._store, name)
            if name != "list_jobs":
                return found

            def list_jobs(*args: Any, **kwargs: Any) -> Any:
                calls.append((args, kwargs))
                return found(*args, **kwargs)

            return list_jobs

    with open_store(database) as store:
        store.register_machine("w", "idle")
        store.add_job("check", {"big": "x" * 1000}, job_id="j1")
        assert store.claim_job("w", ["check"]) is not None
    app = create_app(
        lambda: Recording(open_store(database)), socket_dir=None  # type: ignore[arg-type,return-value]
    )
    with TestClient(app, base_url="http://127.0.0.1:8520") as test_client:
        machines = test_client.get("/api/state").json()["machines"]
    assert [(m["name"], m["job_id"]) for m in machines] == [("w", "j1")]
    processing = [kwargs for args, kwargs in calls if args[:1] == ("processing",)]
    assert processing and all(kwargs.get("with_data") is False for kwargs in processing)


def test_the_activity_log_opens_on_the_newest_rows_of_the_day(
    client: TestClient, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More activity than the page reads: it gets the newest (it once got the day's oldest,
    and a busy day hid every new failure)."""
    monkeypatch.setattr("smc.ui.app.ACTIVITY_LIMIT", 3)
    with open_store(database) as store:
        for number in range(5):
            store.register_machine(f"m{number}", "idle")
    rows = client.get("/api/activity").json()["history"]
    assert [(row["kind"], row["machine"]) for row in rows] == [
        ("machine_started", "m2"),
        ("machine_started", "m3"),
        ("machine_started", "m4"),
    ]


def test_the_activity_log_has_the_days_dead_machines_stamped_when_last_heard_from(
    client: TestClient, database: str
) -> None:
    """A dead process writes no history row: a machine that died while no page (or no
    server) watched is in the log, from the registry, once the page opens — as the poll's
    live message has it, so a page that saw it die shows it once."""
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()  # reaped: its pid names no process
    with open_store(database) as store:
        store.register_machine("crashed", "busy", pid=gone.pid)
        store.register_machine("long-gone", "idle", host="another-host")
        store.register_machine("alive", "idle")
        # long-gone last beat two days ago: dead, but not of the day.
        two_days = "172800" if database.endswith(".db") else "interval '2 days'"
        store._write(  # type: ignore[attr-defined]
            "age",
            lambda connection: connection.execute(
                f"UPDATE machine_state SET heartbeat_at = heartbeat_at - {two_days} "
                "WHERE machine_name = 'long-gone'"
            ),
        )
        crashed, long_gone = store.get_machine("crashed"), store.get_machine("long-gone")
        assert crashed is not None and long_gone is not None and long_gone.status == "dead"
    deaths = client.get("/api/activity").json()["deaths"]
    assert deaths == [
        {
            "machine": "crashed",
            "ts": pytest.approx(crashed.heartbeat_at, abs=1e-3),
            "state": "busy",
            "message": f"pid {gone.pid} on {socket.gethostname()} stopped answering in busy "
            "(last heard from then)",
        }
    ]


def test_a_machine_that_has_not_moved_since_the_server_started_shows_its_last_move(
    database: str,
) -> None:
    """The server reads where the machines are from the history when it starts: a machine
    idle since shows its last transition, the time since it entered its state (not since
    its last loop) and a statechart's every active state (a page once showed none of these
    until the machine moved again)."""
    now = time.time()
    with open_store(database) as store:
        store.register_machine("panel", "power_off")
        for ts, going, event, to, configuration in (
            (now - 60, "power_off", "switch", "power_on", ["panel", "power", "power_on"]),
            (now - 5, "power_on", "tick", "power_on", ["panel", "power", "power_on"]),
        ):
            store.stage_history(
                history_entry(
                    "transition",
                    "panel",
                    ts=ts,
                    from_state=going,
                    event=event,
                    to_state=to,
                    configuration=configuration_text(configuration),
                )
            )
        store.flush_history()
    with _client(database) as client:
        [machine] = client.get("/api/state").json()["machines"]
    live = machine["live"]
    assert live["state"] == "power_on"
    assert live["since"] == pytest.approx(now - 60, abs=1e-3)
    assert (live["last_transition"]["event"], live["last_transition"]["to"]) == (
        "tick",
        "power_on",
    )
    assert live["configuration"] == ["panel", "power", "power_on"]


def test_a_restarted_machine_shows_no_move_of_its_last_run(database: str) -> None:
    """Seeded from the history: a machine started again since its last transition shows its
    new run (its start state, no last transition, no job), not the old run's last move."""
    now = time.time()
    with open_store(database) as store:
        store.register_machine("panel", "off")
        store.stage_history(
            history_entry(
                "transition", "panel", ts=now - 60, from_state="off", event="on", to_state="lit"
            )
        )
        store.flush_history()
        store.register_machine("panel", "off")  # started again: a machine_started row
    with _client(database) as client:
        [machine] = client.get("/api/state").json()["machines"]
    assert machine["live"]["state"] == "off"
    assert machine["live"]["last_transition"] is None and machine["job_id"] is None


def test_a_machine_idle_while_others_filled_the_seed_shows_its_last_move(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seed reads the newest rows; a machine of the registry not among them (idle while
    busy ones moved) has its last move looked for below them, as far as the scan reaches."""
    monkeypatch.setattr("smc.ui.app.SEED_ROWS", 3)
    monkeypatch.setattr("smc.ui.app.SEED_SCAN_ROWS", 3)
    now = time.time()
    with open_store(database) as store:
        for name in ("ancient", "idle", "busy"):
            store.register_machine(name, "start")  # a machine_started row each
        moves = [("ancient", now - 90, "start", "wake", "old")]
        moves += [("idle", now - 60, "start", "report", "reported")]
        moves += [("busy", now - 50 + n, "a", "go", "b") for n in range(5)]
        for machine, ts, going, event, to in moves:
            store.stage_history(
                history_entry(
                    "transition", machine, ts=ts, from_state=going, event=event, to_state=to
                )
            )
        store.flush_history()
    with _client(database) as client:
        machines = {m["name"]: m for m in client.get("/api/state").json()["machines"]}
    idle = machines["idle"]["live"]
    assert (idle["state"], idle["since"]) == ("reported", pytest.approx(now - 60, abs=1e-3))
    assert idle["last_transition"]["event"] == "report"
    # Beyond the scan: the registry's row alone.
    assert machines["ancient"]["live"] is None
    assert machines["busy"]["live"]["state"] == "b"


def test_a_long_job_story_or_trace_is_sent_as_its_first_and_last_halves(
    client: TestClient, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond what the page is sent, a job's story keeps its outcome (it was once its first
    1,000 rows, with no word of more) and says it was cut."""
    monkeypatch.setattr("smc.ui.app.STORY_LIMIT", 4)
    monkeypatch.setattr("smc.ui.app.TRACE_LIMIT", 4)
    with open_store(database) as store:
        job = store.add_job("task", job_id="long")
        claimed = store.claim_job("w", ["task"])
        assert claimed is not None
        store.trace_id = claimed.trace_id  # as the worker that claimed it
        for n in range(3):
            store.send_event("other", f"e{n}", job_id="long")
        store.complete_job("long")
    story = client.get("/api/jobs/long").json()
    kinds = [row["kind"] for row in story["history"]]
    assert story["cut"] is True and kinds == [
        "job_added",
        "job_claimed",
        "event_sent",
        "job_completed",
    ]
    trace = client.get(f"/api/trace/{job.trace_id}").json()
    assert trace["cut"] is True and [row["kind"] for row in trace["rows"]] == kinds
    monkeypatch.setattr("smc.ui.app.STORY_LIMIT", 6)
    assert client.get("/api/jobs/long").json()["cut"] is False


def test_without_history_job_trace_and_activity_say_so(database: str) -> None:
    with open_store(database) as store:
        job = store.add_job("a", {})
    with _client(database, history=False) as client:
        assert client.get("/api/state").json()["history"] is False
        assert client.get(f"/api/jobs/{job.id}").json()["history"] is None
        trace = client.get("/api/trace/01ARZ3NDEKTSV4RRFFQ69G5FAV").json()
        assert trace["rows"] == [] and "no history" in trace["error"]
        assert client.get("/api/activity").json() == {"history": None, "live": [], "deaths": []}


# --- diagrams: hostile names stay text ------------------------------------------------------


def _check_clean(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    for element in root.iter():
        assert isinstance(element.tag, str) and element.tag.startswith("{" + SVG_NS + "}")
        assert element.tag.split("}")[1] in ALLOWED_ELEMENTS, element.tag
        for name in element.attrib:
            assert name in ALLOWED_ATTRIBUTES or name == "data-state", name
    # The names are in it, as text: "<" only ever as "&lt;" in the markup.
    assert "<script" not in svg and "<img" not in svg and "<svg onload" not in svg
    return root


def test_the_diagram_of_odd_names_marks_every_state_by_its_name() -> None:
    machine_type = load_type(str(ODD_NAMES))
    assert machine_type.svg is not None, machine_type.svg_error
    root = _check_clean(machine_type.svg)
    marked = {g.get("data-state") for g in root.iter("{" + SVG_NS + "}g") if g.get("data-state")}
    assert marked == set(machine_type.states)
    texts = {t.text for t in root.iter("{" + SVG_NS + "}text")}
    assert "<b>bold</b>" in texts and "c-->d" in texts  # shown literally, as text


def test_only_machine_files_named_by_the_registry_are_read(
    client: TestClient, database: str
) -> None:
    with pytest.raises(DiagramUnavailable):
        DiagramCache().get("/etc/passwd")
    with open_store(database) as store:
        store.register_machine("m", "a", config_path="/etc/passwd")
    state = client.get("/api/state").json()
    (machine_type,) = state["types"].values()
    assert machine_type == {"key": machine_type["key"], "error": machine_type["error"]}
    assert "root" not in json.dumps(state).replace('"/etc/passwd"', "")
    assert client.get("/api/types/not-a-key").status_code == 404


def test_html_in_state_names_is_text_in_the_svg(tmp_path: Path) -> None:
    states = [f"s{i} {name}" for i, name in enumerate(HTML_NAMES)]
    document = {
        "name": HTML_NAMES[2],
        "initial_state": states[0],
        "metadata": {"machine_name": "hostile"},
        "states": states,
        "transitions": [
            {"from": states[i], "to": states[(i + 1) % len(states)], "event": f"e{i} {name}"}
            for i, name in enumerate(HTML_NAMES)
        ],
    }
    path = tmp_path / "hostile.yaml"
    path.write_text(json.dumps(document), encoding="utf-8")  # JSON is YAML
    machine_type = load_type(str(path))
    assert machine_type.svg is not None, machine_type.svg_error
    root = _check_clean(machine_type.svg)
    marked = [g.get("data-state") for g in root.iter("{" + SVG_NS + "}g") if g.get("data-state")]
    assert sorted(marked) == sorted(states)
    texts = {t.text for t in root.iter("{" + SVG_NS + "}text")}
    assert set(states) <= texts


def test_a_state_named_like_a_compound_states_cluster_is_its_own_shape(tmp_path: Path) -> None:
    """Graphviz names a compound state's subgraph ``cluster_<id>``: a plain state called
    ``cluster_box`` beside a compound ``box`` once had that name too, and the page lit
    ``box`` for it and nothing for itself."""
    path = tmp_path / "clash.yaml"
    path.write_text(
        """
initial_state: cluster_box
metadata: {machine_name: clash}
states:
  - cluster_box
  - {name: box, initial: inner, states: [inner]}
  - {name: Cluster_Other, initial: deep, states: [deep]}
transitions:
  - {from: cluster_box, to: box, event: go}
  - {from: box, to: Cluster_Other, event: onward}
""",
        encoding="utf-8",
    )
    machine_type = load_type(str(path))
    assert machine_type.svg is not None, machine_type.svg_error
    root = _check_clean(machine_type.svg)
    marked = [g.get("data-state") for g in root.iter("{" + SVG_NS + "}g") if g.get("data-state")]
    assert sorted(marked) == sorted(["cluster_box", "box", "inner", "Cluster_Other", "deep"])


def test_a_statecharts_board_columns_are_its_leaves_under_their_groups(tmp_path: Path) -> None:
    """A leaf is in the group that names it or its nearest ancestor (a chart's groups were
    once dropped: every leaf in one ungrouped row of columns)."""
    path = tmp_path / "order.yaml"
    path.write_text(
        """
template: true
initial_state: new
metadata: {machine_name: order}
states:
  - new
  - {name: fulfilment, initial: picking, states: [picking, packing]}
  - name: shipping
    parallel: true
    states:
      - {name: carrier, initial: booked, states: [booked, in_transit]}
      - {name: billing, initial: invoiced, states: [invoiced, paid]}
  - lost
groups:
  INTAKE: [new]
  WAREHOUSE: [fulfilment]
  OUTBOUND: [shipping, paid]
transitions:
  - {from: new, to: fulfilment, event: accept}
  - {from: picking, to: packing, event: picked}
  - {from: packing, to: shipping, event: packed}
  - {from: booked, to: in_transit, event: depart}
  - {from: invoiced, to: paid, event: pay}
  - {from: shipping, to: lost, event: vanish}
""",
        encoding="utf-8",
    )
    machine_type = load_type(str(path))
    assert machine_type.columns == [
        ("INTAKE", ["new"]),
        ("WAREHOUSE", ["picking", "packing"]),
        ("OUTBOUND", ["booked", "in_transit", "invoiced", "paid"]),
        (None, ["lost"]),
    ]


# --- the feed: a slow browser skips to the latest --------------------------------------------


def test_a_full_queue_is_replaced_by_one_resync_and_others_are_unaffected() -> None:
    async def scenario() -> None:
        feed = LiveFeed(None, queue_size=10)
        feed.start()
        slow, fast = feed.subscribe(), feed.subscribe()
        for n in range(25):
            feed.publish({"kind": "ui_test", "n": n})
            fast.drain(100)  # a browser that keeps up
        assert slow.resyncs >= 1
        held = slow.drain(100)
        assert len(held) <= 10
        assert json.loads(held[0]) == {"kind": "ui_resync"}  # fetch the snapshot again
        assert [json.loads(m)["n"] for m in held[1:]] == list(range(25 - len(held) + 1, 25))
        assert fast.resyncs == 0
        feed.unsubscribe(slow)
        feed.publish({"kind": "ui_test", "n": 99})
        assert slow.drain(10) == [] and fast.drain(10) != []
        feed.stop()

    asyncio.run(scenario())


def test_a_queue_of_long_messages_is_bounded_by_their_length_too() -> None:
    """Names and ids have no length limit: a browser that stopped reading once held 2,000
    messages of any length (200 MB of 100 KB job types). A queue past its characters is
    replaced by one resync, as a queue past its count is; one that reads keeps everything."""

    async def scenario() -> None:
        feed = LiveFeed(None, queue_size=1000, queue_chars=2000)
        feed.start()
        stuck, reading = feed.subscribe(), feed.subscribe()
        long = "x" * 500
        for n in range(20):
            feed.publish({"kind": "ui_test", "n": n, "name": long})
            assert [json.loads(m)["n"] for m in reading.drain(100)] == [n]
        held = stuck.drain(1000)
        assert stuck.resyncs >= 1 and reading.resyncs == 0
        assert sum(map(len, held)) <= 2000
        assert json.loads(held[0]) == {"kind": "ui_resync"}
        assert [json.loads(m)["n"] for m in held[1:]] == list(range(20 - len(held) + 1, 20))
        # Drained, the queue takes as many again.
        feed.publish({"kind": "ui_test", "n": 20, "name": long})
        feed.publish({"kind": "ui_test", "n": 21, "name": long})
        assert [json.loads(m)["n"] for m in stuck.drain(10)] == [20, 21]
        feed.stop()

    asyncio.run(scenario())


def test_a_batch_is_queued_as_its_messages_one_by_one_would_be() -> None:
    """The feed hands each subscriber a whole batch (``offer_all``): the same queue, resyncs
    included, as offering its messages one at a time."""

    async def scenario() -> None:
        feed = LiveFeed(None, queue_size=10)
        batched, single = feed.subscribe(), feed.subscribe()
        for start in (0, 4, 8, 20, 23):  # fits, fits, overflows, overflows again, fits
            batch = [json.dumps({"n": n}) for n in range(start, start + 4)]
            batched.offer_all(batch)
            for message in batch:
                single.offer(message)
        assert batched.resyncs == single.resyncs >= 1
        assert batched.drain(100) == single.drain(100)

    asyncio.run(scenario())


def test_a_waiting_stream_wakes_on_a_message_and_times_out_without_one() -> None:
    async def scenario() -> None:
        feed = LiveFeed(None)
        feed.start()
        subscriber = feed.subscribe()
        started = time.monotonic()
        assert await subscriber.wait(0.05) is False  # nothing: the keep-alive's turn
        assert time.monotonic() - started >= 0.05
        waiting = asyncio.ensure_future(subscriber.wait(5.0))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        feed.publish({"kind": "ui_test", "n": 1})
        assert await asyncio.wait_for(waiting, 1.0) is True
        assert [json.loads(m) for m in subscriber.drain(10)] == [{"kind": "ui_test", "n": 1}]
        assert subscriber.drain(10) == []
        feed.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", ["job_retried", "job_released"])
def test_a_job_back_in_the_queue_is_no_longer_its_machines(kind: str) -> None:
    """A failed attempt going back to pending (``job_retried``) or a job given back
    (``job_released``): the machine holds it no more (it once showed the job until the
    machine claimed another)."""
    feed = LiveFeed(None)
    claim = {"kind": "job_claimed", "machine": "w", "job_id": "j1", "ts": 1.0}
    feed.seed([claim, {"kind": kind, "machine": "w", "job_id": "other", "ts": 2.0}])
    assert feed.machines["w"].job_id == "j1"  # another job's record changes nothing
    feed.seed([{"kind": kind, "machine": "w", "job_id": "j1", "ts": 3.0}])
    assert feed.machines["w"].job_id is None


def test_a_machine_whose_socket_closes_is_forgotten_and_the_browsers_resync() -> None:
    """The sockets feed follows a real publisher: a transition moves the machine. Its socket
    then closes (a machine that stopped, or one that cut the feed off for falling behind,
    losing records: the feed cannot tell which), and the feed forgets what it saw of the
    machine and sends every browser ``ui_resync`` naming it."""
    from smc.runtime.monitor import MonitorPublisher

    name = 'm<b>"1'

    async def collect(subscriber: Any, until: Any) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while not any(until(r) for r in records):
            assert time.monotonic() < deadline, records
            await asyncio.sleep(0.02)
            records += [json.loads(m) for m in subscriber.drain(100)]
        return records

    async def scenario(socket_dir: Path) -> None:
        feed = LiveFeed(socket_dir)
        feed.start()
        subscriber = feed.subscribe()
        publisher = MonitorPublisher.open(socket_dir, name)
        try:
            deadline = time.monotonic() + 10
            while publisher.reader_count == 0:  # the feed connects within 0.25 s
                assert time.monotonic() < deadline, "the feed never followed the machine"
                await asyncio.sleep(0.02)
            publisher.publish(
                {"kind": "transition", "machine": name, "from": "a", "event": "go", "to": "b"}
            )
            records = await collect(subscriber, lambda r: r["kind"] == "transition")
            assert [r["kind"] for r in records] == ["transition"]
            assert feed.machines[name].state == "b"
        finally:
            publisher.close()
        records = await collect(subscriber, lambda r: r["kind"] == "ui_resync")
        assert records == [{"kind": "ui_resync", "machine": name}]
        assert name not in feed.machines
        feed.stop()

    with tempfile.TemporaryDirectory(prefix="smc-") as socket_dir:  # short: a socket's path
        asyncio.run(scenario(Path(socket_dir)))


# --- the command line ----------------------------------------------------------------------


def _smc_ui(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smc", "ui", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        check=False,
    )


def _new_database(path: Path) -> str:
    """An empty smc database at ``path`` (``smc ui`` makes none), as a ``--db`` argument."""
    open_store(str(path)).close()
    return str(path)


def test_smc_ui_on_a_database_that_is_not_there_exits_2_and_makes_none(tmp_path: Path) -> None:
    """A mistyped ``--db`` (a SQLite path, a PostgreSQL schema with no smc tables) is a usage
    error in one line, and nothing is made there: the server once made an empty database
    and served a page saying no machine had used it."""
    missing = tmp_path / "mistyped.db"
    with postgres_schema_url() as schema:
        for database in (str(missing), schema):
            result = _smc_ui("--db", database, "--port", str(free_port()), cwd=tmp_path)
            assert result.returncode == 2, (database, result.stderr)
            assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
            assert result.stderr.startswith("smc ui: error: --db: ")
        assert list(tmp_path.iterdir()) == []
        with pytest.raises(StoreError):
            open_store(schema, create=False).close()


def test_smc_ui_refuses_a_public_bind_without_a_token_and_a_taken_port(tmp_path: Path) -> None:
    for args in (
        ("--host", "0.0.0.0"),
        ("--host", "0.0.0.0", "--token", "short"),
        ("--host", "192.0.2.1", "--token", ""),
    ):
        result = _smc_ui(*args, "--db", str(tmp_path / "x.db"), "--port", "1", cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        database = _new_database(tmp_path / "x.db")
        result = _smc_ui("--db", database, "--port", port, cwd=tmp_path)
    assert result.returncode == 1 and "cannot listen on" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    empty = tmp_path / "token"
    empty.write_text("\n")
    result = _smc_ui("--host", "0.0.0.0", "--token-file", str(empty), cwd=tmp_path)
    assert result.returncode == 2 and "no token" in result.stderr
    # A token file that cannot be read says why once, in smc's words (it quoted the path
    # and then Python's "[Errno 2] No such file or directory: '…'" with the path again).
    for given, reason in (
        (tmp_path / "missing", "no such file or directory"),
        (tmp_path, "is a directory"),
    ):
        result = _smc_ui("--host", "0.0.0.0", "--token-file", str(given), cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr == (f"smc ui: error: --token-file: cannot read {given}: {reason}\n")


def test_smc_ui_serves_the_stream_only_with_the_token(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    port = free_port()
    command = [sys.executable, "-m", "smc", "ui", "--db", _new_database(tmp_path / "smc.db")]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--token-file", str(token_file)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                first = httpx2.get(f"{base}/api/stream", timeout=2)
                break
            except httpx2.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "smc ui did not start"
                time.sleep(0.1)
        assert first.status_code == 401
        headers = {"authorization": f"Bearer {TOKEN}"}
        with httpx2.stream("GET", f"{base}/api/stream", headers=headers, timeout=5) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert next(stream.iter_lines()) == "retry: 2000"
    finally:
        process.terminate()
        assert process.wait(10) == 0


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_smc_ui_stops_quietly_with_browsers_connected(tmp_path: Path, stop: signal.Signals) -> None:
    """Two browsers' streams open when the server is told to stop: each stream ends, and
    the server exits 0 having printed nothing but its address (the streams once outlived
    the graceful shutdown and were cancelled, an error and a traceback for each)."""
    database = _new_database(tmp_path / "smc.db")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "smc", "ui", "--db", database, "--port", str(port)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(f"{base}/api/state"), 20, "smc ui did not start")
        with contextlib.ExitStack() as streams:
            lines = []
            for _ in range(2):
                stream = streams.enter_context(
                    httpx2.stream("GET", f"{base}/api/stream", timeout=10)
                )
                lines.append(stream.iter_lines())
                assert next(lines[-1]) == "retry: 2000"
            process.send_signal(stop)
            for read in lines:
                for _ in read:  # to its end, which a cancelled stream never sends
                    pass
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.stderr is not None
    assert process.stderr.read().splitlines() == [
        f"smc ui: serving http://127.0.0.1:{port}/ (Ctrl-C stops)"
    ]


def test_smc_ui_says_when_its_database_file_goes_and_opens_the_new_one(tmp_path: Path) -> None:
    """The SQLite file deleted under a running ``smc ui`` (``rm smc.db*``, to start afresh):
    the page is told, the server does not make a file of its own, and once a new file is
    there it shows that one (it once went on showing the deleted file's jobs for ever)."""
    db = tmp_path / "smc.db"
    with open_store(str(db)) as store:
        store.add_job("task", job_id="old")
        # A finished run whose definition cannot be drawn (a cycle).
        cyclic = {"workflow": "wf", "tasks": {"a": {"job_type": "t", "needs": ["a"]}}}
        assert store.create_workflow_run("r1", "wf", "t", cyclic, ["a"], "PENDING")
        token = store.take_workflow_run("r1", stale_after=30)
        assert token is not None and store.finish_workflow_run("r1", token, "failed")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "smc", "ui", "--db", str(db), "--port", str(port)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def job_ids() -> list[str]:
        return [job["id"] for job in httpx2.get(f"{base}/api/jobs", timeout=5).json()["jobs"]]

    def workflow_runs() -> list[tuple[str, str]]:
        runs = httpx2.get(f"{base}/api/workflows", timeout=5).json()["runs"]
        return [(run["run_id"], run["status"]) for run in runs]

    def ui_errors(lines: Iterator[str]) -> Iterator[str]:
        for line in lines:
            if line.startswith("data: "):
                for record in json.loads(line[6:]):
                    if record["kind"] == "ui_error":
                        yield record["message"]

    try:
        wait_until(lambda: _answers(f"{base}/api/state"), 20, "smc ui did not start")
        assert job_ids() == ["old"]
        assert workflow_runs() == [("r1", "failed")]
        assert (
            "cannot be drawn"
            in httpx2.get(f"{base}/api/workflows/r1", timeout=10).json()["svg_error"]
        )
        with httpx2.stream("GET", f"{base}/api/stream", timeout=30) as stream:
            errors = ui_errors(stream.iter_lines())
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            assert next(errors) == f"the database file {db} was deleted: waiting for a new one"
            # The buttons are refused, and make no file either (they once made one).
            csrf = {CSRF_COOKIE: "c"}
            headers = {"x-smc-csrf": "c"}
            for path in ("/api/jobs/old/cancel", "/api/workflows/r1/cancel"):
                refused = httpx2.post(f"{base}{path}", cookies=csrf, headers=headers, timeout=10)
                assert refused.status_code == 503, refused.text
                assert "was deleted: nothing was changed" in refused.json()["error"]
            time.sleep(2.5)  # two of the server's polls
            assert not db.exists()  # the server made no file of its own
            with open_store(str(db)) as store:
                store.add_job("task", job_id="new")
                simple = {"workflow": "wf", "tasks": {"a": {"job_type": "t", "needs": []}}}
                assert store.create_workflow_run("r1", "wf", "t", simple, ["a"], "PENDING")
            assert next(errors) == (
                f"the database file {db} was replaced by another file: showing the new one"
            )
            assert list(errors) == []  # and the stream ends: the page reconnects
        assert job_ids() == ["new"]
        # The new file's runs, not the old one's kept from before (its finished run's summary
        # and its picture, under the same id).
        assert workflow_runs() == [("r1", "running")]
        assert httpx2.get(f"{base}/api/workflows/r1", timeout=10).json()["svg_error"] is None
        with open_store(str(db)) as store:
            store.add_job("task", job_id="newer")
        assert job_ids() == ["newer", "new"]
    finally:
        process.terminate()
        assert process.wait(10) == 0


def test_smc_ui_never_writes_into_another_programs_file_put_in_its_databases_place(
    tmp_path: Path,
) -> None:
    """The SQLite file deleted under a running ``smc ui`` and another program's SQLite
    database put at its path: the server says it is not an smc database, writes nothing into
    it (it once wrote smc's tables there and showed it as an empty smc database) and keeps
    showing what it showed; an smc database there later is opened as before."""
    db = tmp_path / "smc.db"
    with open_store(str(db)) as store:
        store.add_job("task", job_id="old")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "smc", "ui", "--db", str(db), "--port", str(port)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def job_ids() -> list[str]:
        return [job["id"] for job in httpx2.get(f"{base}/api/jobs", timeout=5).json()["jobs"]]

    def ui_errors(lines: Iterator[str]) -> Iterator[str]:
        for line in lines:
            if line.startswith("data: "):
                for record in json.loads(line[6:]):
                    if record["kind"] == "ui_error":
                        yield record["message"]

    try:
        wait_until(lambda: _answers(f"{base}/api/state"), 20, "smc ui did not start")
        with httpx2.stream("GET", f"{base}/api/stream", timeout=30) as stream:
            errors = ui_errors(stream.iter_lines())
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            assert next(errors) == f"the database file {db} was deleted: waiting for a new one"
            with contextlib.closing(sqlite3.connect(db)) as other:
                other.execute("CREATE TABLE notes (text TEXT)")
                other.commit()
            assert next(errors) == (
                f"the database file {db} was replaced by another file: "
                f"cannot open {db}: not an smc database"
            )
            time.sleep(2.5)  # two more of the server's polls
            with contextlib.closing(sqlite3.connect(db)) as other:
                tables = other.execute("SELECT name FROM sqlite_master").fetchall()
            assert tables == [("notes",)]
            assert job_ids() == ["old"]  # the old file's, until an smc database is there
            for suffix in ("", "-journal"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            with open_store(str(db)) as store:
                store.add_job("task", job_id="new")
            assert next(errors) == (
                f"the database file {db} was replaced by another file: showing the new one"
            )
        assert job_ids() == ["new"]
    finally:
        process.terminate()
        assert process.wait(10) == 0


def _answers(url: str) -> bool:
    try:
        return httpx2.get(url, timeout=2).status_code == 200
    except httpx2.TransportError:
        return False


def _niceness(pid: int, task: str) -> int:
    # /proc/PID/task/TID/stat: field 19 is the nice value; split after the command's ")".
    stat = Path(f"/proc/{pid}/task/{task}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])


def test_smc_ui_yields_the_cpu_to_the_machines_unless_told_not_to(tmp_path: Path) -> None:
    """``smc ui`` lowers its own priority by ``--nice`` (10 by default), every thread of it,
    the ones serving and following the feed included; ``--nice 0`` leaves it as started."""
    started_at = os.nice(0)
    for args, expected in (((), min(started_at + 10, 19)), (("--nice", "0"), started_at)):
        port = free_port()
        database = _new_database(tmp_path / "smc.db")
        process = subprocess.Popen(
            [sys.executable, "-m", "smc", "ui", "--db", database, "--port", str(port), *args],
            cwd=tmp_path,
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    # A stream connected: the feed's thread and the store's run by now.
                    with httpx2.stream("GET", f"http://127.0.0.1:{port}/api/stream", timeout=5):
                        tasks = sorted(os.listdir(f"/proc/{process.pid}/task"))
                        niceness = {_niceness(process.pid, task) for task in tasks}
                    break
                except httpx2.TransportError:
                    assert process.poll() is None and time.monotonic() < deadline
                    time.sleep(0.1)
            assert len(tasks) >= 2, tasks
            assert niceness == {expected}, (args, niceness)
        finally:
            process.terminate()
            assert process.wait(10) == 0
    for bad in ("-1", "20"):
        result = _smc_ui("--nice", bad, "--db", str(tmp_path / "x.db"), cwd=tmp_path)
        assert result.returncode == 2 and "--nice" in result.stderr
        assert result.stderr.count("\n") == 1


@pytest.mark.slow
def test_a_browser_that_never_reads_slows_neither_the_server_nor_the_machines(
    tmp_path: Path,
) -> None:
    """A real ``smc ui``; one stream client that connects and never reads, one that reads.
    A machine's monitor socket (a publisher in this process) sends 20,000 records of 2 KB
    (40 MB, far beyond the kernel's socket buffers). The reading client gets every record in
    order, the server's reader of the machine is never cut off for being slow, the server
    answers meanwhile, and the stuck client, when it finally reads, finds it was told to
    resync (its queue was replaced, not grown)."""
    from smc.runtime.monitor import MonitorPublisher, monitor_dir

    database = tmp_path / "smc.db"
    with open_store(str(database)) as store:
        socket_dir = monitor_dir(store)
    port = free_port()
    command = [sys.executable, "-m", "smc", "ui", "--db", str(database), "--port", str(port)]
    # The sockets feed (the database keeps history, so the default would follow that): the
    # drill is about a machine's socket that a slow browser must never back up.
    command += ["--feed", "sockets"]
    # At its own priority: under the rest of the suite's load a niced server (the default)
    # may fall behind 4,000 records of 2 KB a second and be cut off by the machine, which is
    # what the nice is for (test_a_machine_whose_socket_closes_is_forgotten_and_the_browsers_
    # resync), and not what this drill is about: a browser that never reads.
    command += ["--nice", "0"]
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    total, padding = 20_000, "x" * 2000
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx2.get(f"{base}/api/state", timeout=2)
                break
            except httpx2.TransportError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        stuck = socket.socket()
        # A small receive window (set before connecting), as a browser tab that stalled: the
        # flood then outgrows what the kernel holds for it whatever its autotuning allows.
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        stuck.connect(("127.0.0.1", port))
        stuck.sendall(b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        with MonitorPublisher.open(socket_dir, "flood") as publisher:
            wait_for = time.monotonic() + 10
            while publisher.reader_count == 0:  # the server's feed connects within 0.25 s
                assert time.monotonic() < wait_for, "smc ui never followed the machine"
                time.sleep(0.05)
            seen: list[int] = []
            resynced: list[bool] = []
            connected = threading.Event()

            def read() -> None:
                with httpx2.stream("GET", f"{base}/api/stream", timeout=30) as reader:
                    connected.set()
                    for line in reader.iter_lines():
                        if not line.startswith("data: "):
                            continue
                        for record in json.loads(line[6:]):
                            if record.get("kind") == "ui_resync":
                                resynced.append(True)
                            elif record.get("kind") == "flood":
                                seen.append(record["n"])
                        if seen and seen[-1] == total - 1:
                            return

            reading = threading.Thread(target=read, daemon=True)
            reading.start()
            assert connected.wait(10)
            time.sleep(0.3)  # subscribed
            started = time.monotonic()
            for n in range(total):
                publisher.publish({"kind": "flood", "machine": "flood", "n": n, "pad": padding})
                if n % 200 == 199:
                    time.sleep(0.05)  # ~4,000 records/s, which the reading client keeps up with
            publish_seconds = time.monotonic() - started
            reading.join(60)
            assert not reading.is_alive(), f"{len(seen)} of {total} records arrived"
            assert not resynced
            assert seen == list(range(total))  # every record, in order, none skipped
            assert publisher.overflowed_readers == 0  # the server's reader always kept up
            assert publish_seconds < 10
            answered = httpx2.get(f"{base}/api/state", timeout=5)
            assert answered.status_code == 200
        stuck.settimeout(10)
        tail = b""
        while True:
            chunk = stuck.recv(1 << 20)
            assert chunk, "the stuck client's stream ended without a resync"
            if b'"ui_resync"' in tail + chunk:
                break
            tail = chunk[-64:]  # the marker may straddle two chunks
        stuck.close()
    finally:
        process.terminate()
        assert process.wait(10) == 0


# --- the live feed: the store's history ------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
def test_a_worker_on_another_host_shows_live_through_the_postgresql_history(
    tmp_path: Path,
) -> None:
    """A real ``smc run`` worker and a real ``smc ui``, both on a fresh PostgreSQL schema.
    The worker's monitor socket is in a directory the server never looks in (as on another
    host: ``SMC_SOCKET_DIR`` differs), so what the stream shows can only come from the
    history in the database. A job added from the CLI shows as the worker's claim, its
    transitions (those no later one read with them supersedes), in order, and its completion,
    each a history row (its ``id``), within seconds of the worker recording it; the server
    says its feed is the history."""
    # Short socket directories (a socket's path must fit in 108 bytes).
    hosts = Path(tempfile.mkdtemp(prefix="smc-ui-"))
    with postgres_schema_url() as url, runner_in(tmp_path) as runner:
        runner.env["SMC_DB"] = url
        runner.env["SMC_SOCKET_DIR"] = str(hosts / "a")
        worker = runner.start("run", str(REPO / "tests" / "ui" / "machines" / "checker.yaml"))

        def registered() -> bool:
            assert worker.popen.poll() is None, worker.output()
            with open_store(url) as store:
                row = store.get_machine("checker")
            return row is not None and row.status == "running"

        wait_until(registered, 20, lambda: f"checker never started:\n{worker.output()}")
        runner.env["SMC_SOCKET_DIR"] = str(hosts / "b")  # the server's host
        port = free_port()
        records: list[tuple[float, dict[str, Any]]] = []
        ui, _reading = serve_and_stream(runner, port, records)
        state = httpx2.get(f"http://127.0.0.1:{port}/api/state", timeout=5).json()
        assert state["feed"] == "history"
        job = runner.run(
            "jobs", "add", "--type", "check", "--data", '{"verdict": "pass", "seconds": 0}'
        ).stdout.strip()

        def story() -> list[dict[str, Any]]:
            # The job's rows, and the transition out of `done` that its completion made (the
            # worker has no job by then).
            return [
                record
                for _, record in records
                if record.get("machine") == "checker"
                and (record.get("job_id") == job or record.get("event") == "job_completed")
            ]

        wait_until(
            lambda: any(r["event"] == "job_completed" for r in story()),
            20,
            lambda: f"the job's story never reached the stream: {story()}",
        )
        shown = story()
        told = [
            (r["kind"], r["from"], r["event"], r["to"]) for r in shown if r["kind"] != "event_sent"
        ]
        whole = [
            ("job_claimed", None, "check", None),
            ("transition", "waiting", "new_job", "checking"),
            ("transition", "checking", "job_done", "done"),
            ("job_completed", None, "check", None),
            ("transition", "done", "job_completed", "waiting"),
        ]
        # In order, the claim, the completion and the last move at least: a transition that
        # a later one of the same machine read at the same time supersedes is not sent
        # (superseded_dropped).
        assert told == [step for step in whole if step in told]
        assert {whole[0], whole[3], whole[4]} <= set(told)
        ids = [r["id"] for r in shown]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)  # history rows, in order
        arrival = {id(record): arrived for arrived, record in records}
        lags = [arrival[id(r)] - r["ts"] for r in shown]
        assert max(lags) < 5.0, lags  # per transition, not the registry's second
        # The server's own view of the machine (the page's snapshot) has it too.
        machines = httpx2.get(f"http://127.0.0.1:{port}/api/state", timeout=5).json()["machines"]
        (checker,) = [m for m in machines if m["name"] == "checker"]
        assert checker["live"]["last_transition"]["event"] == "job_completed"
        ui.signal(signal.SIGTERM)
        assert ui.wait(10) == 0, ui.output()
    shutil.rmtree(hosts, ignore_errors=True)


def test_with_history_off_the_feed_follows_the_sockets_and_says_so(tmp_path: Path) -> None:
    """``SMC_HISTORY=off`` (the workers and the server record no history): ``smc ui`` falls
    back to the machines' monitor sockets, says so (``feed: sockets``), and a worker's
    transitions still reach the stream, as socket records (no history ``id``)."""
    with runner_in(tmp_path) as runner:
        runner.env["SMC_HISTORY"] = "off"
        worker = runner.start("run", str(REPO / "tests" / "ui" / "machines" / "checker.yaml"))
        runner.wait_running(worker, "checker")
        port = free_port()
        records: list[tuple[float, dict[str, Any]]] = []
        ui, _reading = serve_and_stream(runner, port, records)
        state = httpx2.get(f"http://127.0.0.1:{port}/api/state", timeout=5).json()
        assert state["feed"] == "sockets"
        job = runner.run(
            "jobs", "add", "--type", "check", "--data", '{"verdict": "pass", "seconds": 0}'
        ).stdout.strip()

        def claimed() -> list[dict[str, Any]]:
            return [r for _, r in records if r.get("kind") == "job_claimed"]

        wait_until(lambda: claimed(), 20, lambda: f"no claim in the stream: {records}")
        assert claimed()[0]["job_id"] == job and "id" not in claimed()[0]
        result = runner.run("ui", "--feed", "history", "--port", "0", check=False)
        assert result.returncode == 1 and "SMC_HISTORY is off in this process" in result.stderr
        assert result.stderr.count("\n") == 1
        ui.signal(signal.SIGTERM)
        assert ui.wait(10) == 0, ui.output()


def test_the_history_feed_sends_each_new_row_once_in_order_as_a_monitor_record(
    store_url: str,
) -> None:
    """The feed on a real store (both backends): the rows committed after it starts reach a
    subscriber once each, in id order, as monitor records with their ids; rows from before
    its start do not; a row about a job makes no machine, a transition moves its machine; and
    a name with markup, quotes and a carriage return stays one line of JSON."""
    open_store(store_url).close()
    name = 'w<script>"\r\n'

    async def scenario() -> None:
        with open_store(store_url) as store:
            store.add_job("task", {"n": 0}, machine_type="checker")  # before the start
        feed = LiveFeed(None, history=lambda: open_store(store_url), poll_seconds=0.02)
        assert feed.source == "history"
        feed.start()
        subscriber = feed.subscribe()
        await asyncio.sleep(0.5)  # the follower has read where the history ends
        with open_store(store_url) as store:
            job = store.add_job("task", {"n": 1}, machine_type="checker")
            store.register_machine(name, "idle")
            store.stage_history(
                history_entry(
                    "transition",
                    name,
                    ts=time.time(),
                    from_state="idle",
                    event="go",
                    to_state="busy",
                )
            )
            store.flush_history()
        messages: list[str] = []
        deadline = time.monotonic() + 10
        while len(messages) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            messages += subscriber.drain(100)
        await asyncio.sleep(0.3)  # nothing more comes
        messages += subscriber.drain(100)
        feed.stop()
        assert all("\r" not in m and "\n" not in m for m in messages)
        records = [json.loads(m) for m in messages]
        assert [(r["kind"], r["machine"]) for r in records] == [
            ("job_added", "checker"),
            ("machine_started", name),
            ("transition", name),
        ]
        assert records[0]["job_id"] == job.id
        ids = [r["id"] for r in records]
        assert ids == sorted(ids) and len(set(ids)) == 3
        assert (records[2]["from"], records[2]["event"], records[2]["to"]) == ("idle", "go", "busy")
        assert set(feed.machines) == {name}  # the job's row made no machine "checker"
        assert feed.machines[name].state == "busy"
        assert feed.machines[name].last_transition is not None

    asyncio.run(scenario())


def test_a_batch_passes_on_only_what_a_later_record_of_the_same_machine_does_not_make_moot() -> (
    None
):
    """Of one batch the browsers get each machine's last transition and its last claim (with
    that job's completion); everything else passes, in order: starts, errors, failures,
    a workflow task's every move (the activity log lists them), other machines' records."""

    def rec(kind: str, machine: str, **extra: Any) -> tuple[str, dict[str, Any]]:
        record = {"kind": kind, "machine": machine, **extra}
        return json.dumps(record), record

    batch = [
        rec("machine_started", "w", to="idle"),
        rec("transition", "w", **{"from": "idle", "to": "busy"}),
        rec("job_claimed", "w", job_id="j1"),
        rec("transition", "v", **{"from": "a", "to": "b"}),
        rec("transition", "wf/t", source="run-1", to="RUNNING"),
        rec("job_completed", "w", job_id="j1"),
        rec("transition", "w", **{"from": "busy", "to": "idle"}),
        rec("job_claimed", "w", job_id="j2"),
        rec("job_failed", "w", job_id="j2"),
        rec("error", "w"),
        rec("transition", "wf/t", source="run-1", to="COMPLETED"),
        rec("job_claimed", "w", job_id="j3"),
        rec("job_completed", "w", job_id="j3"),
        rec("transition", "w", **{"from": "idle", "to": "busy"}),
    ]
    kept = superseded_dropped(batch)
    assert [(r["kind"], r["machine"], r.get("job_id"), r.get("to")) for _, r in kept] == [
        ("machine_started", "w", None, "idle"),
        ("transition", "v", None, "b"),
        ("transition", "wf/t", None, "RUNNING"),
        ("job_failed", "w", "j2", None),
        ("error", "w", None, None),
        ("transition", "wf/t", None, "COMPLETED"),
        ("job_claimed", "w", "j3", None),
        ("job_completed", "w", "j3", None),
        ("transition", "w", None, "busy"),
    ]
    assert all(line == json.dumps(record) for line, record in kept)
    assert superseded_dropped(kept) == kept  # nothing left to drop


def test_the_history_feed_passes_on_a_busy_machines_last_move_and_keeps_its_state_exact(
    store_url: str,
) -> None:
    """A machine that moves hundreds of times between two reads of the feed (a worker at
    thousands of jobs a second): the browsers get fewer records than the rows, the last
    transition and every error among them, and the feed's own view of the machine (a new
    page's snapshot) is exact, its time in state from its last entry into it."""
    open_store(store_url).close()

    async def scenario() -> None:
        feed = LiveFeed(None, history=lambda: open_store(store_url), poll_seconds=0.2)
        feed.start()
        subscriber = feed.subscribe()
        await asyncio.sleep(0.5)  # the follower has read where the history ends
        now = time.time()
        with open_store(store_url) as store:
            store.register_machine("w", "idle")
            for n in range(200):
                going, to = ("idle", "busy") if n % 2 == 0 else ("busy", "idle")
                store.stage_history(
                    history_entry(
                        "transition", "w", ts=now + n, from_state=going, event="e", to_state=to
                    )
                )
                if n == 100:
                    store.stage_history(history_entry("error", "w", ts=now + n, excerpt_text="x"))
            store.flush_history()  # one commit: one read
        rows = 1 + 200 + 1
        deadline = time.monotonic() + 10
        records: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not any(
            r.get("ts") == pytest.approx(now + 199, abs=1e-3) for r in records
        ):
            await asyncio.sleep(0.05)
            records += [json.loads(m) for m in subscriber.drain(1000)]
        await asyncio.sleep(0.3)  # nothing more comes
        records += [json.loads(m) for m in subscriber.drain(1000)]
        feed.stop()
        # PostgreSQL's rows are read each one (ids commit out of order there), SQLite's sifted
        # by the database (Store.latest_history_lines): either way fewer reach the browsers.
        assert feed.received == (rows if "postgres" in store_url else 3)
        assert feed.sent == len(records) < rows
        assert [r["kind"] for r in records if r["kind"] != "transition"] == [
            "machine_started",
            "error",
        ]
        last = records[-1]
        assert (last["kind"], last["from"], last["to"], last["ts"]) == (
            "transition",
            "busy",
            "idle",
            pytest.approx(now + 199, abs=1e-3),
        )
        live = feed.machines["w"]
        assert live.state == "idle" and live.since == pytest.approx(now + 199, abs=1e-3)

    asyncio.run(scenario())


def test_a_loop_is_no_entry_into_the_state_for_the_time_in_it(tmp_path: Path) -> None:
    """The first row the feed sees of an idle worker is its ``no_jobs`` loop: that says
    nothing of when it entered ``waiting`` (the page once showed the time since the poll);
    a move does, and a loop after it changes nothing."""
    database = str(tmp_path / "smc.db")
    open_store(database).close()

    async def scenario() -> None:
        feed = LiveFeed(None, history=lambda: open_store(database), poll_seconds=0.05)
        feed.start()
        await asyncio.sleep(0.3)  # the follower has read where the history ends
        now = time.time()
        steps = [("waiting", "no_jobs", "waiting"), ("waiting", "new_job", "busy")]
        steps.append(("busy", "tick", "busy"))
        seen: list[tuple[str | None, float | None]] = []
        with open_store(database) as store:
            for n, (going, event, to) in enumerate(steps):
                store.stage_history(
                    history_entry(
                        "transition", "w", ts=now + n, from_state=going, event=event, to_state=to
                    )
                )
                store.flush_history()
                deadline = time.monotonic() + 10
                while (
                    (live := feed.machines.get("w")) is None
                    or live.last_transition is None
                    or (live.last_transition["event"] != event)
                ):
                    assert time.monotonic() < deadline, "the feed never saw the row"
                    await asyncio.sleep(0.02)
                seen.append((live.state, live.since))
        feed.stop()
        entered = pytest.approx(now + 1, abs=1e-3)
        assert seen == [("waiting", None), ("busy", entered), ("busy", entered)]

    asyncio.run(scenario())


def test_a_parallel_regions_move_starts_the_time_in_state(tmp_path: Path) -> None:
    """A parallel chart's region moving is recorded from ``panel`` to ``panel``: only its
    configuration says it moved. Its time in state once went on counting from the first
    move; now each change of configuration starts it, and a loop that changes nothing
    does not."""
    database = str(tmp_path / "smc.db")
    open_store(database).close()
    off = '["panel", "power", "power_off", "signal", "signal_red"]'
    on = '["panel", "power", "power_on", "signal", "signal_red"]'
    green = '["panel", "power", "power_on", "signal", "signal_green"]'

    async def scenario() -> None:
        feed = LiveFeed(None, history=lambda: open_store(database), poll_seconds=0.05)
        feed.start()
        await asyncio.sleep(0.3)  # the follower has read where the history ends
        now = time.time()
        steps = [("first", off), ("switch", on), ("toggle", green), ("stay", green)]
        seen: list[float | None] = []
        with open_store(database) as store:
            for n, (event, configuration) in enumerate(steps):
                store.stage_history(
                    history_entry(
                        "transition",
                        "p",
                        ts=now + n,
                        from_state="panel",
                        event=event,
                        to_state="panel",
                        configuration=configuration,
                    )
                )
                store.flush_history()
                deadline = time.monotonic() + 10
                while (
                    (live := feed.machines.get("p")) is None
                    or live.last_transition is None
                    or (live.last_transition["event"] != event)
                ):
                    assert time.monotonic() < deadline, "the feed never saw the row"
                    await asyncio.sleep(0.02)
                seen.append(live.since)
        feed.stop()
        switched, toggled = (pytest.approx(now + n, abs=1e-3) for n in (1, 2))
        assert seen == [None, switched, toggled, toggled]

    asyncio.run(scenario())


def test_the_history_feed_says_when_the_database_is_away_and_follows_on_when_it_is_back(
    tmp_path: Path,
) -> None:
    """The feed's store cannot be opened at first (the file is not there yet): the browsers
    are told (``ui_error``), and once it opens the feed follows the history from there."""
    database = tmp_path / "later" / "smc.db"

    def opener() -> Store:
        if not database.parent.exists():
            raise StoreError("the database is away")
        return open_store(str(database))

    async def scenario() -> None:
        feed = LiveFeed(None, history=opener, poll_seconds=0.02)
        subscriber = feed.subscribe()
        feed.start()
        messages: list[str] = []
        deadline = time.monotonic() + 5
        while not messages and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            messages += subscriber.drain(10)
        assert [json.loads(m) for m in messages] == [
            {"kind": "ui_error", "message": "history: the database is away"}
        ]
        database.parent.mkdir()
        open_store(str(database)).close()
        await asyncio.sleep(1.5)  # the feed opens it at its next try (after 1 s)
        with open_store(str(database)) as store:
            store.register_machine("late", "idle")
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + 5
        while not records and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            records += [json.loads(m) for m in subscriber.drain(10)]
        feed.stop()
        assert [(r["kind"], r["machine"]) for r in records] == [("machine_started", "late")]

    asyncio.run(scenario())
