"""The web monitor in a real browser: Debian's Chromium driven by Playwright, against real
``smc run`` workers and a real ``smc ui`` process on a SQLite file.

One system for the module (starting workers and the server takes a few seconds): the example
``simple_worker``, a ``checker`` job worker whose jobs pass or fail as their data says, a
parallel statechart ``panel``, three
instances of the ``order`` template (one with a hostile name) and a template whose state names
are HTML. Screenshots go to ``test-artifacts/ui-*.png``.
"""

from __future__ import annotations

import contextlib
import http.server
import itertools
import json
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Browser, Locator, Page, Route, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.support.harness import REPO, Proc, Runner, runner_in, wait_until
from tests.support.web import BROKEN_WORDS, free_port, launch_chromium, start_ui

pytestmark = pytest.mark.slow

MACHINES = Path(__file__).resolve().parent / "machines"
ARTIFACTS = REPO / "test-artifacts"
SIMPLE_WORKER = REPO / "examples" / "simple_worker" / "simple_worker.yaml"
DOWNLOAD_WORKER = REPO / "examples" / "download_worker" / "download_worker.yaml"
#: A machine name that would run script if it were ever parsed as markup.
HOSTILE_NAME = '<img src=x onerror="window.pwned=1">"&amp;<script>window.pwned=2</script>'
#: State names that would, too (the `hostile` template below).
HOSTILE_STATES = ["<b>new</b>", '"><svg onload="window.pwned=3">', "done & dusted &lt;"]
#: State names that are also names of every plain object's prototype's members (the `proto`
#: template below): looked up in a plain object, they once found a function and broke the page.
PROTO_STATES = ["constructor", "toString", "valueOf"]
WAIT_MS = 15_000


class System:
    def __init__(self, runner: Runner, base: str, ui: Proc, workers: dict[str, Proc]) -> None:
        self.runner = runner
        self.base = base
        self.ui = ui
        self.workers = workers
        self.checker = workers["checker"]

    def smc(self, *args: str) -> str:
        return self.runner.run(*args).stdout.strip()


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    with runner_in(tmp_path_factory.mktemp("ui")) as runner:
        hostile = runner.cwd / "hostile.yaml"
        hostile.write_text(
            json.dumps(
                {
                    "name": "Hostile states",
                    "template": True,
                    "initial_state": HOSTILE_STATES[0],
                    "metadata": {"machine_name": "hostile"},
                    "states": HOSTILE_STATES,
                    "transitions": [
                        {"from": HOSTILE_STATES[0], "to": HOSTILE_STATES[1], "event": "go"},
                        {"from": HOSTILE_STATES[1], "to": HOSTILE_STATES[2], "event": "go"},
                    ],
                }
            ),
            encoding="utf-8",
        )
        proto = runner.cwd / "proto.yaml"
        proto.write_text(
            json.dumps(
                {
                    "name": "Prototype states",
                    "template": True,
                    "initial_state": PROTO_STATES[0],
                    "metadata": {"machine_name": "proto"},
                    "states": PROTO_STATES,
                    "transitions": [
                        {"from": PROTO_STATES[0], "to": PROTO_STATES[1], "event": "go"},
                        {"from": PROTO_STATES[1], "to": PROTO_STATES[2], "event": "go"},
                        {"from": PROTO_STATES[2], "to": PROTO_STATES[0], "event": "go"},
                    ],
                }
            ),
            encoding="utf-8",
        )
        order = str(MACHINES / "order.yaml")
        workers = {
            "proto-1": runner.start("run", str(proto), "--machine-name", "proto-1"),
            "simple_worker": runner.start("run", str(SIMPLE_WORKER)),
            "download_worker": runner.start("run", str(DOWNLOAD_WORKER)),
            "checker": runner.start("run", str(MACHINES / "checker.yaml")),
            "panel": runner.start("run", str(MACHINES / "panel.yaml")),
            "order-1": runner.start("run", order, "--machine-name", "order-1"),
            "order-2": runner.start("run", order, "--machine-name", "order-2"),
            HOSTILE_NAME: runner.start("run", order, "--machine-name", HOSTILE_NAME),
            "hostile-1": runner.start("run", str(hostile), "--machine-name", "hostile-1"),
        }
        for name, proc in workers.items():
            runner.wait_running(proc, name)
        port = free_port()
        ui = start_ui(runner, port)
        yield System(runner, f"http://127.0.0.1:{port}", ui, workers)
        ui.signal(signal.SIGTERM)
        assert ui.wait(10) == 0, ui.output()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = launch_chromium(playwright)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, system: System) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    opened = context.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.goto(system.base + "/")
    expect(opened.locator("#connection")).to_have_text("live", timeout=WAIT_MS)
    opened.evaluate("window.sameDocument = true")  # gone if the page ever reloaded
    yield opened
    assert opened.evaluate("window.sameDocument") is True
    assert opened.evaluate("window.pwned") is None, "a name ran as script"
    assert dialogs == [] and errors == [], (dialogs, errors)
    context.close()


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header at the top of the picture
    page.screenshot(path=str(ARTIFACTS / f"ui-{name}.png"), full_page=True)


def test_the_page_follows_a_job_live_and_the_diagram_lights_the_state(
    page: Page, system: System
) -> None:
    checker = page.locator("#machine-table tbody tr").filter(
        has=page.get_by_text("checker", exact=True)
    )
    expect(checker.locator("td.state")).to_have_text("waiting", timeout=WAIT_MS)
    # The live records come from the database's history (the page says so on hover).
    expect(page.locator("#connection")).to_have_attribute("title", re.compile("history"))
    card = page.locator('.diagram-card[data-name="checker"]')
    lit = card.locator("g.smc-current")
    expect(lit).to_have_count(1, timeout=WAIT_MS)
    expect(lit).to_have_attribute("data-state", "waiting")

    job = system.smc(
        "jobs", "add", "--type", "check", "--data", '{"verdict": "pass", "seconds": 3}'
    )
    expect(checker.locator("td.state")).to_have_text("checking", timeout=WAIT_MS)
    expect(checker).to_contain_text(job)  # the current job
    expect(checker).to_contain_text("new_job")  # the last transition
    expect(lit).to_have_attribute("data-state", "checking", timeout=WAIT_MS)
    expect(lit).to_have_count(1)
    _shot(page, "job-running")
    expect(checker.locator("td.state")).to_have_text("waiting", timeout=WAIT_MS)
    expect(lit).to_have_attribute("data-state", "waiting", timeout=WAIT_MS)
    job_row = page.locator(f'#job-table tr[data-job="{job}"]')
    expect(job_row).to_have_attribute("data-status", "completed", timeout=WAIT_MS)


def test_a_job_given_back_by_a_stopping_worker_leaves_its_machines_row(
    page: Page, system: System
) -> None:
    """A worker stopped while it runs a job gives the job back (``job_released``, the job
    pending again) and the page's machine row shows it stopped without the job: the server
    and the page once cleared a machine's job only when the job completed or failed. (The
    server's own clearing is tests/ui/test_app.py's; the page's handler of the record is
    covered here together with it: the ``ui_machines`` message the stop sends carries the
    server's view too.)"""
    source = system.runner.cwd / "long_checker.yaml"
    source.write_text(
        (MACHINES / "checker.yaml")
        .read_text()
        .replace("machine_name: checker", "machine_name: long_checker")
        .replace("job_type: check", "job_type: long-check")
    )
    worker = system.runner.start("run", str(source))
    system.runner.wait_running(worker, "long_checker")
    row = page.locator("#machine-table tbody tr").filter(
        has=page.get_by_text("long_checker", exact=True)
    )
    expect(row.locator("td.state")).to_have_text("waiting", timeout=WAIT_MS)
    job = system.smc(
        "jobs", "add", "--type", "long-check", "--data", '{"verdict": "pass", "seconds": 60}'
    )
    expect(row.locator("td.state")).to_have_text("checking", timeout=WAIT_MS)
    expect(row).to_contain_text(job, timeout=WAIT_MS)
    worker.signal(signal.SIGTERM)
    assert worker.wait(20) == 0, worker.output()
    with system.runner.store() as store:
        released = store.get_job(job)
        assert released is not None and released.status == "pending"  # given back
        kinds = [row.kind for row in store.history(job_id=job)]
        assert kinds[-1] == "job_released", kinds
        store.cancel_job(job)
    expect(row).to_contain_text("stopped", timeout=WAIT_MS)
    expect(row).not_to_contain_text(job, timeout=WAIT_MS)


def test_a_kanban_card_moves_column_when_its_instance_changes_state(
    page: Page, system: System
) -> None:
    board = page.locator('#board-list .board[data-name="order"]')
    card = board.locator('.card[data-machine="order-1"]')
    expect(card).to_have_count(1, timeout=WAIT_MS)
    column = board.locator('.kanban-column[data-state="received"]')
    expect(column.locator('.card[data-machine="order-1"]')).to_have_count(1, timeout=WAIT_MS)
    expect(board.get_by_text("OPEN")).to_be_visible()  # the group's name above its columns
    system.smc("send", "order-1", "pack")
    packing = board.locator('.kanban-column[data-state="packing"]')
    expect(packing.locator('.card[data-machine="order-1"]')).to_have_count(1, timeout=WAIT_MS)
    expect(column.locator('.card[data-machine="order-1"]')).to_have_count(0)
    expect(column.locator('.card[data-machine="order-2"]')).to_have_count(1)
    system.smc("send", "order-1", "ship")
    shipped = board.locator('.kanban-column[data-state="shipped"]')
    expect(shipped.locator('.card[data-machine="order-1"]')).to_have_count(1, timeout=WAIT_MS)
    _shot(page, "board")
    # An event the instance has no transition for: dropped, and said in the activity log.
    system.smc("send", "order-2", "bogus")
    kinds = ("unhandled_event", "event_dropped")  # the live record, the history's row
    dropped = page.locator(", ".join(f"#activity-list li[data-kind='{k}']" for k in kinds))
    expect(dropped.filter(has_text="order-2").filter(has_text="bogus")).to_have_count(
        1, timeout=WAIT_MS
    )


def test_retry_on_a_failed_job_puts_it_back_in_the_queue(page: Page, system: System) -> None:
    job = system.smc(
        "jobs",
        "add",
        "--type",
        "check",
        "--max-attempts",
        "1",
        "--data",
        '{"verdict": "fail", "seconds": 0}',
    )
    row = page.locator(f'#job-table tr[data-job="{job}"]')
    expect(row).to_have_attribute("data-status", "failed", timeout=WAIT_MS)
    # Stop the worker, or it would claim the job again before the store is looked at.
    system.checker.signal(signal.SIGTERM)
    assert system.checker.wait(10) == 0
    page.locator("#job-status").select_option("failed")
    expect(row).to_have_count(1, timeout=WAIT_MS)
    with system.runner.store() as store:

        def requeued() -> bool:
            found = store.get_job(job)
            return found is not None and found.status == "pending"

        # Clicked again if the filtered list replaced the row under the click (the row the
        # filter's read brings can come just after the click began on the old one).
        for _ in range(5):
            retry = row.get_by_role("button", name="Retry")
            if retry.count():
                retry.click()
            clicked = time.monotonic()
            while not requeued() and time.monotonic() - clicked < 2:
                time.sleep(0.05)
            if requeued():
                break
        wait_until(requeued, 10, "the job was not re-queued")
    page.locator("#job-status").select_option("")
    expect(row).to_have_attribute("data-status", "pending", timeout=WAIT_MS)
    expect(row.get_by_role("button", name="Cancel")).to_be_visible()
    detail = page.locator("#job-detail")
    # Clicked again while the list is redrawn under the click (the filter just changed: on a
    # loaded host the click can land on the row the redraw takes away); a click only opens.
    for _ in range(5):
        row.get_by_role("button", name=job).click()
        with contextlib.suppress(AssertionError):
            expect(detail).to_be_visible(timeout=2000)
            break
    expect(detail).to_contain_text("pending")
    expect(detail).to_be_in_viewport()  # below the job list: brought into view
    with system.runner.store() as store:
        keeps_history = callable(getattr(store, "history", None))
    if keeps_history:
        # The job's story from the durable history, and its trace across machines.
        stories = detail.locator("li")
        expect(stories.filter(has_text="job failed")).to_have_count(1, timeout=WAIT_MS)
        stories.get_by_role("button", name="trace").first.click()
        lanes = page.locator("#trace-view .lane-name")
        expect(lanes.filter(has_text="checker")).to_have_count(1, timeout=WAIT_MS)
        expect(page.locator("#trace-view tbody tr").first).to_be_visible()
        _shot(page, "trace")
    else:
        expect(detail).to_contain_text("keeps no history")
    _shot(page, "jobs")
    # The failure is in the activity log.
    activity = page.locator("#activity-list li[data-kind='job_failed']")
    expect(activity.filter(has_text=job)).to_have_count(1, timeout=WAIT_MS)
    # The stopped worker shows as stopped.
    checker = page.locator("#machine-table tbody tr").filter(
        has=page.get_by_text("checker", exact=True)
    )
    expect(checker).to_contain_text("stopped", timeout=WAIT_MS)
    # ... and is lit nowhere on its diagram, as a dead one: it is in no state any more
    # (the legend says where it stopped).
    diagram = page.locator('.diagram-card[data-name="checker"]')
    expect(diagram.locator("g.smc-current")).to_have_count(0)
    expect(diagram.locator(".legend")).to_contain_text("stopped")


def test_a_name_selected_in_the_machine_list_stays_selected_while_others_move(
    page: Page, system: System
) -> None:
    """Text selected in a machine's row (a name, a job id, to copy) stays selected while
    other machines move: only the rows of machines that changed are drawn again (every row
    was replaced each time any machine moved, and the selection went with it)."""
    name = page.locator('#machine-table tr[data-machine="order-2"] td.name')
    expect(name).to_have_text("order-2", timeout=WAIT_MS)
    name.evaluate("""td => {
        td.parentElement.probe = true;
        const range = document.createRange();
        range.selectNodeContents(td);
        getSelection().removeAllRanges();
        getSelection().addRange(range);
      }""")
    moved = page.locator('#machine-table tr[data-machine="proto-1"] td.state')
    before = moved.inner_text()
    system.smc("send", "proto-1", "go")
    expect(moved).not_to_have_text(before, timeout=WAIT_MS)
    page.wait_for_timeout(300)  # any render still on its way has come
    assert page.evaluate("getSelection().toString()") == "order-2"
    assert name.evaluate("td => td.parentElement.probe === true")
    for _ in PROTO_STATES[1:]:  # round to where it was, for the tests after this one
        shown = moved.inner_text()
        system.smc("send", "proto-1", "go")
        expect(moved).not_to_have_text(shown, timeout=WAIT_MS)
    expect(moved).to_have_text(before)


def test_hostile_names_render_as_text(page: Page, system: System) -> None:
    name_cell = page.locator("#machine-table td.name").filter(has_text="onerror")
    expect(name_cell).to_have_count(1, timeout=WAIT_MS)
    expect(name_cell).to_have_text(HOSTILE_NAME)  # the literal text, every character
    assert page.locator("#machine-table img, #board-list img, main script").count() == 0
    card = page.locator("#board-list .card").filter(has_text="onerror")
    expect(card.locator(".card-name")).to_have_text(HOSTILE_NAME)
    # The hostile template's states: columns and diagram show them as text.
    board = page.locator('#board-list .board[data-name="hostile"]')
    titles = board.locator(".kanban-column .column-title span:first-child")
    expect(titles).to_have_text(HOSTILE_STATES, timeout=WAIT_MS)
    diagram = page.locator('.diagram-card[data-name="hostile"]')
    lit = diagram.locator("g.smc-current")
    expect(lit).to_have_attribute("data-state", HOSTILE_STATES[0], timeout=WAIT_MS)
    expect(lit.locator("text")).to_have_text(HOSTILE_STATES[0])
    system.smc("send", "hostile-1", "go")
    expect(lit).to_have_attribute("data-state", HOSTILE_STATES[1], timeout=WAIT_MS)
    assert diagram.locator("svg svg, foreignObject, script, [onload]").count() == 0
    time.sleep(0.3)  # let any handler that could have been planted fire
    _shot(page, "overview")


def test_states_named_like_object_members_are_lit_and_moved(page: Page, system: System) -> None:
    """States named ``constructor``, ``toString``, ``valueOf``: the page once looked them up
    in plain objects, found the prototype's functions (``function is not iterable``) and drew
    neither the diagram nor the board."""
    diagram = page.locator('.diagram-card[data-name="proto"]')
    lit = diagram.locator("g.smc-current")
    expect(lit).to_have_attribute("data-state", PROTO_STATES[0], timeout=WAIT_MS)
    board = page.locator('#board-list .board[data-name="proto"]')
    card = '.card[data-machine="proto-1"]'
    first = board.locator(f'.kanban-column[data-state="{PROTO_STATES[0]}"]')
    expect(first.locator(card)).to_have_count(1, timeout=WAIT_MS)
    for state in [*PROTO_STATES[1:], PROTO_STATES[0]]:  # round, and back (no final state)
        system.smc("send", "proto-1", "go")
        expect(lit).to_have_attribute("data-state", state, timeout=WAIT_MS)
        column = board.locator(f'.kanban-column[data-state="{state}"]')
        expect(column.locator(card)).to_have_count(1, timeout=WAIT_MS)
        expect(board.locator(card)).to_have_count(1)  # in that column only
    row = page.locator('#machine-table tr[data-machine="proto-1"]')
    expect(row).to_contain_text(f"{PROTO_STATES[2]} —go→ {PROTO_STATES[0]}")


def test_a_statechart_lights_its_leaf_and_the_compound_states_around_it(
    page: Page, system: System
) -> None:
    diagram = page.locator('.diagram-card[data-name="download_worker"]')
    lit = diagram.locator("g.smc-current")
    # waiting, inside the compound state online (drawn as a cluster, as in smc diagram)
    expect(lit).to_have_count(2, timeout=WAIT_MS)
    expect(diagram.locator('g.cluster.smc-current[data-state="online"]')).to_have_count(1)
    expect(diagram.locator('g.node.smc-current[data-state="waiting"]')).to_have_count(1)
    system.smc("send", "download_worker", "pause")
    expect(diagram.locator('g.node.smc-current[data-state="paused"]')).to_have_count(
        1, timeout=WAIT_MS
    )
    expect(lit).to_have_count(1)
    system.smc("send", "download_worker", "resume")  # back where it was, by the deep history
    expect(diagram.locator('g.node.smc-current[data-state="waiting"]')).to_have_count(
        1, timeout=WAIT_MS
    )
    expect(lit).to_have_count(2)
    _shot(page, "statechart")


def test_a_parallel_statechart_lights_each_regions_state_from_the_history(
    page: Page, system: System
) -> None:
    """The feed is the store's history: its rows carry the statechart's configuration, so
    the region that did not move stays lit beside the one that did (issue 15)."""
    assert httpx2.get(f"{system.base}/api/state", timeout=5).json()["feed"] == "history"
    diagram = page.locator('.diagram-card[data-name="panel"]')

    def lit(state: str) -> Locator:
        return diagram.locator(f'g.node.smc-current[data-state="{state}"]')

    system.smc("send", "panel", "switch")  # the power region moves
    expect(lit("power_on")).to_have_count(1, timeout=WAIT_MS)
    expect(lit("signal_red")).to_have_count(1)
    row = page.locator("#machine-table tbody tr").filter(has=page.get_by_text("panel", exact=True))
    expect(row.locator("td.state")).to_have_text(re.compile(r"power_on"), timeout=WAIT_MS)
    toggled = time.time()
    system.smc("send", "panel", "toggle")  # then the signal region: power stays on
    expect(lit("signal_green")).to_have_count(1, timeout=WAIT_MS)
    expect(lit("power_on")).to_have_count(1)
    # The region's move starts the time in state (from and to are both `panel`).
    since = float(row.locator("[data-since]").get_attribute("data-since") or "nan")
    assert since >= toggled - 0.5, (since, toggled)
    expect(diagram.locator("g.node.smc-current")).to_have_count(2)
    for cluster in ("panel", "power", "signal"):
        expect(diagram.locator(f'g.cluster.smc-current[data-state="{cluster}"]')).to_have_count(1)
    # The table says each region's state too, not the parallel state alone.
    expect(row.locator("td.state")).to_have_text("panel (power_on, signal_green)")
    _shot(page, "parallel")


def test_the_job_list_is_read_one_request_at_a_time_and_paused_by_what_it_costs(
    page: Page, system: System
) -> None:
    """Jobs added every 0.15 s while the server takes 0.4 s to list them (held here; a rare
    type among a million finished jobs takes that long): the page never has two lists on
    their way, and waits four times what the last one took before the next. It once asked
    every 300 ms, reads in flight piling up."""

    def slow(route: Route) -> None:
        time.sleep(0.4)
        route.continue_()

    page.route(re.compile(r"/api/jobs\?"), slow)
    page.evaluate("performance.clearResourceTimings()")
    reads_so_far = """performance.getEntriesByType("resource")
          .filter((e) => e.name.includes("/api/jobs?") && e.responseEnd > 0)
          .map((e) => [e.startTime, e.responseEnd])"""
    added = []
    try:
        with system.runner.store() as store:
            # Jobs keep coming until the page has read the list four times (a loaded host
            # takes longer over each read, and so pauses longer: no fixed count of jobs).
            for n in range(200):
                added.append(store.add_job("nobody-takes-this", job_id=f"paced-{n}").id)
                page.wait_for_timeout(150)  # Playwright's calls run the route's handler
                if n >= 20 and len(page.evaluate(reads_so_far)) >= 4:
                    break
        page.wait_for_timeout(1000)
        reads = page.evaluate(reads_so_far)
    finally:
        page.unroute(re.compile(r"/api/jobs\?"))
        with system.runner.store() as store:
            for job_id in added:
                store.cancel_job(job_id)
    assert len(reads) >= 3, reads
    for (start, end), (next_start, _) in itertools.pairwise(reads):
        assert next_start >= end, reads  # one at a time
        assert next_start - end >= 4 * (end - start) - 50, reads  # paused by its cost


def _list_new_jobs(page: Page, system: System, job_type: str, ids: list[str]) -> Locator:
    """Jobs of ``job_type`` (one no worker takes) added with ``ids``, and the job list filtered
    to that type until it shows them: its rows."""
    with system.runner.store() as store:
        for job_id in ids:
            store.add_job(job_type, job_id=job_id)
    page.locator("#job-type").fill(job_type)
    page.locator("#job-type").press("Enter")
    rows = page.locator("#job-table tbody tr")
    expect(rows).to_have_count(len(ids), timeout=WAIT_MS)
    return rows


def _point_at(page: Page, target: Locator) -> None:
    """The pointer moved onto ``target``: scrolled to and aimed at again while the page above
    it still moves (diagrams drawn late on a loaded host pushed the table below the window,
    and the pointer aimed there was on nothing), and when its row was redrawn meanwhile."""
    for _ in range(50):
        with contextlib.suppress(PlaywrightError):
            target.scroll_into_view_if_needed(timeout=2000)
        page.mouse.move(*_centre(target))
        with contextlib.suppress(PlaywrightError):
            if target.evaluate("e => e.matches(':hover')", timeout=2000):
                return
        page.wait_for_timeout(100)


def test_the_job_list_holds_still_under_the_pointer_and_finds_any_type_or_id(
    page: Page, system: System
) -> None:
    """Rows moved under the pointer: a click aimed at one job's Cancel landed on a newer
    job's (a reviewer, six times in six). While the pointer is on the table the list waits,
    and says so, and a button's answer changes its own row only (it once brought in every
    held job, and the next click hit one never seen); it moves on once the pointer leaves,
    a clicked job id in it included. The type box takes any type, one the list never showed
    included, and a job opens by its id, an unknown id leaving the open job followed."""
    rows = _list_new_jobs(page, system, "held-list", [f"held-{n}" for n in range(3)])
    expect(rows.nth(1)).to_have_attribute("data-job", "held-1")
    # The pointer is on the table.
    _point_at(page, rows.nth(1).locator("button[data-action=cancel]"))
    expect(page.locator("#job-table:hover")).to_have_count(1)
    with system.runner.store() as store:
        store.add_job("held-list", job_id="held-new")
    expect(page.locator("#jobs-held")).to_be_visible(timeout=WAIT_MS)
    expect(rows.nth(1)).to_have_attribute("data-job", "held-1")  # still under the pointer
    # Aims are window coordinates, taken where the rows are now: the list holds them still;
    # only the page above (a late diagram) could move the whole table.
    page.mouse.click(*_centre(rows.nth(1).locator("button[data-action=cancel]")))
    expect(rows.nth(1)).to_have_attribute("data-status", "cancelled", timeout=WAIT_MS)
    expect(rows.nth(2)).to_have_attribute("data-job", "held-0")  # held-new still held
    page.mouse.click(*_centre(rows.nth(2).locator("button[data-action=cancel]")))
    with system.runner.store() as store:
        wait_until(
            lambda: (job := store.get_job("held-0")) is not None and job.status == "cancelled",
            10,
            "the second aimed job was not cancelled",
        )
        cancelled = {j.id for j in store.list_jobs("cancelled", job_type="held-list")}
        assert cancelled == {"held-0", "held-1"}, cancelled
    page.mouse.move(5, 5)  # off the table: the list moves on
    expect(rows.first).to_have_attribute("data-job", "held-new", timeout=WAIT_MS)
    expect(page.locator("#jobs-held")).to_be_hidden()
    # A job id clicked keeps the focus in the table, but not a keyboard's: the list moves
    # on once the pointer leaves (it once stayed held until a click elsewhere).
    rows.first.get_by_role("button", name="held-new").click()
    expect(page.locator("#job-detail h3").first).to_contain_text("held-new", timeout=WAIT_MS)
    page.mouse.move(5, 5)
    page.wait_for_timeout(500)  # any list already on its way has come
    with system.runner.store() as store:
        store.add_job("held-list", job_id="held-newer")
    expect(rows.first).to_have_attribute("data-job", "held-newer", timeout=WAIT_MS)
    # A type no list ever showed (behind hundreds of newer jobs, say) is found by typing it.
    with system.runner.store() as store:
        store.add_job("rarely-seen", job_id="rare-1")
    page.locator("#job-type").fill("rarely-seen")
    page.locator("#job-type").press("Enter")
    expect(rows).to_have_count(1, timeout=WAIT_MS)
    expect(rows.first).to_have_attribute("data-job", "rare-1")
    page.locator("#job-type").fill("")
    page.locator("#job-type").press("Enter")
    # A job opens by its id, whatever the list shows; an unknown id leaves it followed.
    page.locator("#job-id").fill("held-2")
    page.locator("#job-id").press("Enter")
    detail = page.locator("#job-detail")
    expect(detail.locator("h3").first).to_contain_text("held-2", timeout=WAIT_MS)
    page.locator("#job-id").fill("no-such-job")
    page.locator("#job-id").press("Enter")
    expect(page.locator("#toast")).to_contain_text("No job has the id no-such-job")
    with system.runner.store() as store:
        store.cancel_job("held-2")
    page.locator("#job-refresh").click()
    expect(detail.locator("dd").first).to_have_text("cancelled", timeout=WAIT_MS)
    page.locator("#job-detail button", has_text="Close").click()
    with system.runner.store() as store:
        for job_id in ("held-new", "held-newer", "rare-1"):
            store.cancel_job(job_id)


def test_a_job_list_read_keeps_the_rows_whose_job_did_not_change(
    page: Page, system: System
) -> None:
    """Each read of the job list keeps, element and all, the row of every job that shows the
    same: a click pressed on a row's button before a filter's answer came and released after
    it still counts (every row was replaced at each read, and such a click was lost: the
    button pressed was no longer on the page). A job added keeps the rows below it; a job
    that changed gets a new row."""
    rows = _list_new_jobs(page, system, "kept-rows", ["kept-0", "kept-1"])
    kept = {n: page.locator(f'#job-table tr[data-job="kept-{n}"]') for n in range(3)}
    for n in (0, 1):
        kept[n].evaluate("tr => { tr.probe = true; }")
    # Pressed on kept-0's Cancel, then a filter's answer (a read shown even under the
    # pointer; both jobs are pending, so the list it brings is the same), then released:
    # the click is kept-0's.
    cancel = kept[0].locator("button[data-action=cancel]")
    _point_at(page, cancel)
    assert cancel.evaluate("button => button.matches(':hover')")
    page.mouse.down()
    with page.expect_response(re.compile(r"/api/jobs\?")) as answer:
        page.locator("#job-status").evaluate(
            "select => { select.value = 'pending';" " select.dispatchEvent(new Event('change')); }"
        )
    assert answer.value.ok
    page.wait_for_timeout(200)  # the answer drawn
    assert kept[0].evaluate("tr => tr.probe === true")  # the very element it was
    page.mouse.up()
    with system.runner.store() as store:
        wait_until(
            lambda: (job := store.get_job("kept-0")) is not None and job.status == "cancelled",
            10,
            "the click pressed before the read and released after it was lost",
        )
    page.mouse.move(5, 5)  # off the table: its reads are shown at once
    with page.expect_response(re.compile(r"/api/jobs\?")):
        page.locator("#job-status").select_option("")
    expect(kept[0]).to_have_attribute("data-status", "cancelled", timeout=WAIT_MS)
    page.wait_for_timeout(300)  # any read already on its way has come
    # A job added above: no row is taken off the page or put back.
    page.evaluate("""() => {
        window.removedRows = [];
        new MutationObserver((changes) => {
          for (const change of changes)
            for (const node of change.removedNodes)
              if (node.getAttribute) window.removedRows.push(node.getAttribute("data-job"));
        }).observe(document.querySelector("#job-table tbody"), {childList: true});
      }""")
    with system.runner.store() as store:
        store.add_job("kept-rows", job_id="kept-2")
    expect(rows.first).to_have_attribute("data-job", "kept-2", timeout=WAIT_MS)
    assert kept[1].evaluate("tr => tr.probe === true")
    assert page.evaluate("window.removedRows") == []
    # A job that changed: its row only is new.
    with system.runner.store() as store:
        store.cancel_job("kept-1")
    expect(kept[1]).to_have_attribute("data-status", "cancelled", timeout=WAIT_MS)
    assert kept[1].evaluate("tr => tr.probe === undefined")
    assert page.evaluate("window.removedRows") == ["kept-1"]
    with system.runner.store() as store:
        store.cancel_job("kept-2")
    page.locator("#job-type").fill("")
    page.locator("#job-type").press("Enter")


def test_a_bidi_override_in_a_jobs_type_or_data_is_shown_escaped(
    page: Page, system: System
) -> None:
    """U+202E in a job's type or data reversed the rest of its line on the page; the page
    writes it as the CLI does, ``\\u202e``."""
    with system.runner.store() as store:
        store.add_job("evil\u202etype", {"k": "x\u202ey"}, job_id="bidi-job")
    page.locator("#job-id").fill("bidi-job")
    page.locator("#job-id").press("Enter")
    detail = page.locator("#job-detail")
    expect(detail.locator("pre.data")).to_contain_text("x\\u202ey", timeout=WAIT_MS)
    expect(detail.locator("dd").nth(1)).to_have_text("evil\\u202etype")
    row = page.locator('#job-table tr[data-job="bidi-job"]')
    expect(row.locator("td").nth(1)).to_have_text("evil\\u202etype", timeout=WAIT_MS)
    assert "\u202e" not in page.locator("body").inner_text()
    page.locator("#job-detail button", has_text="Close").click()
    with system.runner.store() as store:
        store.cancel_job("bidi-job")


def _font_size_and_height(locator: Locator) -> tuple[float, float]:
    """The font size of ``locator``'s element and the height it takes, read in one call, and
    read again while the element was a row the list had just redrawn (a detached element has
    no style: its size read NaN, on a loaded CI host)."""
    measure = (
        "(node) => node.isConnected ? [parseFloat(getComputedStyle(node).fontSize),"
        " node.getBoundingClientRect().height] : null"
    )
    for _ in range(50):
        read = locator.evaluate(measure)
        if read is not None:
            size, height = read
            return float(size), float(height)
        time.sleep(0.1)
    raise AssertionError(f"{locator} stayed detached from the page")


def _centre(locator: Locator) -> tuple[float, float]:
    """Where ``locator``'s centre is in the window, once the page above it has stopped moving
    (a diagram drawn late moves everything below it: a pointer aimed at the table before that
    landed beside it, on a loaded CI host). It does not scroll: that would move the rows
    from under a pointer already on them."""
    before = locator.bounding_box()
    for _ in range(50):
        locator.page.wait_for_timeout(100)
        box = locator.bounding_box()
        if box == before:
            break
        before = box
    assert before is not None
    return before["x"] + before["width"] / 2, before["y"] + before["height"] / 2


@pytest.mark.parametrize(
    ("zone", "shown"),
    [
        ("Asia/Tokyo", "2026-11-27 05:00:00"),  # 2026-11-26 20:00 UTC
        ("America/New_York", "2026-11-26 15:00:00"),
    ],
)
def test_dates_are_the_browsers_local_dates(
    browser: Browser, system: System, zone: str, shown: str
) -> None:
    """A job's time in the browser's time zone, date included: the date was once UTC's
    beside the local time, a day off around midnight."""
    context = browser.new_context(timezone_id=zone)
    try:
        page = context.new_page()
        page.goto(system.base + "/")
        assert page.evaluate("dateTime(1795723200)") == shown
        # The activity log covers a day and more: an entry not of today has its date too.
        item = page.evaluate(
            "activityItem({kind: 'error', machine: 'm', ts: 1795723200.25}).textContent"
        )
        assert item.startswith(shown + ".250")
    finally:
        context.close()


def test_a_page_cut_off_from_its_server_shows_where_machines_went_meanwhile(
    browser: Browser, tmp_path: Path
) -> None:
    """``smc ui`` stopped, a machine moved, ``smc ui`` started again: the page reconnects and
    shows the machine where it is (it once kept what the first server had said live, until
    a reload)."""
    with runner_in(tmp_path) as runner:
        order = runner.start("run", str(MACHINES / "order.yaml"), "--machine-name", "order-9")
        runner.wait_running(order, "order-9")
        port = free_port()
        ui = start_ui(runner, port)
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            row = page.locator("#machine-table tbody tr").filter(
                has=page.get_by_text("order-9", exact=True)
            )
            expect(row.locator("td.state")).to_have_text("received", timeout=WAIT_MS)
            runner.run("send", "order-9", "pack")  # seen live by this server
            expect(row.locator("td.state")).to_have_text("packing", timeout=WAIT_MS)
            expect(row).to_contain_text("pack→ packing", timeout=WAIT_MS)  # the live record
            ui.signal(signal.SIGTERM)
            assert ui.wait(10) == 0, ui.output()
            expect(page.locator("#connection")).not_to_have_text("live", timeout=WAIT_MS)
            runner.run("send", "order-9", "ship")  # while no server watches
            with runner.store() as store:
                wait_until(
                    lambda: any(m.state == "shipped" for m in store.list_machines()),
                    10,
                    order.output,
                )
            ui = start_ui(runner, port)
            expect(page.locator("#connection")).to_have_text("live", timeout=WAIT_MS)
            expect(row.locator("td.state")).to_have_text("shipped", timeout=WAIT_MS)
        finally:
            context.close()
            ui.signal(signal.SIGTERM)
        assert ui.wait(10) == 0, ui.output()


def test_the_page_fits_a_narrow_window(browser: Browser, system: System) -> None:
    """800 px wide: the header wraps instead of pushing the queue counts and the connection
    badge off screen, and the page does not scroll sideways (a table wider than its panel
    scrolls inside it)."""
    context = browser.new_context(viewport={"width": 800, "height": 900})
    try:
        page = context.new_page()
        page.goto(system.base + "/")
        badge = page.locator("#connection")
        expect(badge).to_have_text("live", timeout=WAIT_MS)
        expect(page.locator("#machine-table tbody tr")).not_to_have_count(0, timeout=WAIT_MS)
        assert page.evaluate("document.documentElement.scrollWidth") <= 800
        # A name of up to about 20 characters stays whole (the table scrolls sideways in its
        # panel): "download_worker" read "download_w" over "orker".
        names = ", ".join(
            f'#machine-table tr[data-machine="{name}"] td.name'
            for name in ("download_worker", "simple_worker", "hostile-1", "proto-1")
        )
        expect(page.locator(names)).to_have_count(4)
        assert page.evaluate(BROKEN_WORDS, names) == []
        box = badge.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 800
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "ui-narrow.png"))
    finally:
        context.close()


def test_a_long_name_without_spaces_wraps_inside_the_machine_table(page: Page) -> None:
    """A 200-character machine name with no space to break at: the table stays inside its
    panel (it once grew to 3,000 px and pushed the status and state off screen)."""
    name = "x" * 200
    expect(page.locator("#machine-table tbody tr")).not_to_have_count(0, timeout=WAIT_MS)
    page.evaluate(
        "(name) => applyRecord({ kind: 'machine_started', machine: name, to: 'idle', "
        "ts: Date.now() / 1000 })",
        name,
    )
    row = page.locator("#machine-table tbody tr").filter(has=page.get_by_text(name, exact=True))
    expect(row).to_have_count(1, timeout=WAIT_MS)
    widths = page.evaluate("""() => { const t = document.getElementById('machine-table');
                   return [t.scrollWidth, t.parentElement.clientWidth]; }""")
    assert widths[0] <= widths[1], widths
    expect(row.locator("td.state")).to_be_in_viewport()
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#machines").screenshot(path=str(ARTIFACTS / "ui-long-name.png"))


def _dot_svg(edges: str) -> str:
    """A left-to-right graph of ``edges`` drawn by the real ``dot``."""
    return subprocess.run(
        ["dot", "-Tsvg"],
        input=f"digraph {{ rankdir=LR; {edges} }}",
        text=True,
        capture_output=True,
        check=True,
    ).stdout


def test_a_wide_diagram_takes_the_whole_row_and_keeps_its_labels_readable(page: Page) -> None:
    """A long chain of states, drawn by the real ``dot``: fitted into one card it was shrunk
    until its labels were about 6 px. It now takes the row and scrolls rather than shrink
    below 60 %, while a small diagram keeps its card."""
    wide_svg = _dot_svg(" -> ".join(f"state_number_{i}" for i in range(24)))
    small_svg = _dot_svg("idle -> busy")
    # Wider than its card, not by much: shrunk to fit, keeping a card of its own size (going
    # wide sooner left holes in the grid).
    medium_svg = _dot_svg(" -> ".join(f"state_{i}" for i in range(6)))
    measured = page.evaluate(
        """(svgs) => svgs.map((text) => {
             const card = el("div", "diagram-card");
             document.getElementById("diagram-list").append(card);
             const root = new DOMParser().parseFromString(text, "image/svg+xml").documentElement;
             const svg = document.importNode(root, true);
             const picture = el("div", "picture");
             picture.append(svg);
             card.append(picture);
             fitDiagram(card, svg);
             const label = svg.querySelector("text");
             const scale = svg.getBoundingClientRect().width
               / (svg.viewBox.baseVal.width * 4 / 3);
             const result = { wide: card.classList.contains("wide"), scale,
               cardWidth: card.getBoundingClientRect().width,
               listWidth: card.parentElement.clientWidth,
               labelPx: label.getBoundingClientRect().height,
               scrolls: picture.scrollWidth > picture.clientWidth };
             card.remove();
             return result;
           })""",
        [wide_svg, small_svg, medium_svg],
    )
    wide, small, middle = measured
    assert wide["wide"] and wide["cardWidth"] >= wide["listWidth"] - 1, wide
    assert wide["scale"] >= 0.59 and wide["labelPx"] >= 10 and wide["scrolls"], wide
    assert not small["wide"] and small["cardWidth"] < small["listWidth"] / 1.5, small
    assert 0.99 <= small["scale"] <= 1.01 and not small["scrolls"], small
    assert not middle["wide"] and not middle["scrolls"], middle
    assert 0.6 <= middle["scale"] < 0.95, middle


def test_a_parallel_template_instance_is_on_the_board_in_each_regions_column(
    browser: Browser, tmp_path: Path
) -> None:
    """A template whose top state is parallel: its card is in the column of each region's
    active leaf, and moves with them (it once stayed under "other": its own state, the
    parallel one, is no column)."""
    with runner_in(tmp_path) as runner:
        lamp = runner.cwd / "lamp.yaml"
        lamp.write_text(
            (MACHINES / "panel.yaml")
            .read_text()
            .replace("name: Panel\n", "name: Lamp\ntemplate: true\n")
            .replace("machine_name: panel", "machine_name: lamp")
        )
        worker = runner.start("run", str(lamp), "--machine-name", "lamp-1")
        runner.wait_running(worker, "lamp-1")
        port = free_port()
        ui = start_ui(runner, port)
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        try:
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            board = page.locator('.board[data-name="lamp"]')

            def columns_of_the_card() -> Locator:
                return board.locator(".kanban-column").filter(
                    has=page.locator('.card[data-machine="lamp-1"]')
                )

            expect(columns_of_the_card()).to_have_count(2, timeout=WAIT_MS)
            runner.run("send", "lamp-1", "switch")
            expect(board.locator('.kanban-column[data-state="power_on"] .card')).to_have_count(
                1, timeout=WAIT_MS
            )
            states = columns_of_the_card().evaluate_all(
                "(columns) => columns.map((c) => c.dataset.state)"
            )
            assert sorted(states) == ["power_on", "signal_red"]
        finally:
            context.close()
            ui.signal(signal.SIGTERM)
        assert ui.wait(10) == 0, ui.output()


def test_a_dropped_events_activity_says_the_state_it_met(page: Page, system: System) -> None:
    """``smc send`` of an event the machine has no transition for where it is: the activity
    log says which event, from whom, and the state it met."""
    system.smc("send", "order-2", "ship", "--source", "alice")  # order-2 is in received
    dropped = page.locator('#activity-list li[data-kind="event_dropped"]').filter(
        has_text="from alice"
    )
    expect(dropped).to_contain_text("event ship from alice in received", timeout=WAIT_MS)


def test_a_long_job_story_shows_its_start_and_its_outcome_with_the_gap_marked(
    page: Page, system: System
) -> None:
    """A job with more history than the page is sent (1,000 rows): its detail has the first
    and last halves, the gap between them marked, its outcome included."""
    from smc.runtime.store import history_entry

    with system.runner.store() as store:
        job = store.add_job("long_story", job_id="long-story")
        # Rows of no machine's move (a job_claimed or transition would add a machine row).
        for n in range(1100):
            store.stage_history(
                history_entry(
                    "event_sent",
                    "sink",
                    ts=time.time(),
                    event=f"tick{n}",
                    job_id="long-story",
                    trace_id=job.trace_id,
                )
            )
        assert store.cancel_job("long-story")
    page.locator("#job-status").select_option("cancelled")
    row = page.locator('#job-table tr[data-job="long-story"]')
    row.get_by_role("button", name="long-story").click(timeout=WAIT_MS)
    detail = page.locator("#job-detail")
    expect(detail.locator("li.gap")).to_contain_text("left out", timeout=WAIT_MS)
    items = detail.locator("ol.activity > li")
    expect(items).to_have_count(1001)
    expect(items.nth(500)).to_have_class("gap")
    expect(items.last).to_contain_text("job cancelled")
    page.locator("#job-status").select_option("")


def test_a_trace_is_shown_in_time_order_whatever_order_its_rows_were_committed_in(
    page: Page, system: System
) -> None:
    """A machine stages its transitions until its next write, so another machine's row can
    have a lower id than an earlier transition (history.md): the trace view is in time order,
    its first row at +0.000 (it once showed negative offsets and a span too short)."""
    from ulid import ULID

    from smc.runtime.store import history_entry

    trace = str(ULID())
    now = time.time()
    with system.runner.store() as store:
        # Committed in this order: the late machine's transition, made first, comes last.
        for offset, kind, machine, event in [
            (0.5, "event_sent", "sink", "ping"),
            (0.9, "event_received", "sink", "ping"),
            (0.2, "event_sent", "source", "pong"),
        ]:
            store.stage_history(
                history_entry(kind, machine, ts=now + offset, event=event, trace_id=trace)
            )
        store.flush_history()
    page.locator("#trace-id").fill(trace)
    page.locator("#trace-id").press("Enter")
    rows = page.locator("#trace-view table tbody tr")
    expect(rows).to_have_count(3, timeout=WAIT_MS)
    offsets = [float(text) for text in rows.locator("td.mono:first-child").all_inner_texts()]
    assert offsets == pytest.approx([0.0, 0.3, 0.7], abs=2e-3), offsets
    expect(rows.first.locator("td.name")).to_have_text("source")
    expect(page.locator("#trace-view p.hint")).to_contain_text("over 0.7 s")


def test_a_killed_worker_shows_dead(page: Page, system: System) -> None:
    row = page.locator("#machine-table tbody tr").filter(
        has=page.get_by_text("simple_worker", exact=True)
    )
    expect(row.locator(".badge")).to_have_text("running", timeout=WAIT_MS)
    killed = system.workers["simple_worker"]
    killed.signal(signal.SIGKILL)
    killed.popen.wait(10)  # reaped, as its parent shell would: no zombie holding the pid
    expect(row.locator(".badge")).to_have_text("dead", timeout=WAIT_MS)
    expect(row.locator("td.in-state")).to_have_text("–")  # in no state: no time counting
    # A death writes no history row (the process is gone): the server's poll tells the log.
    died = page.locator('#activity-list li[data-kind="machine_dead"]').filter(
        has_text="simple_worker"
    )
    expect(died).to_contain_text("stopped answering in")
    # Read again with the log (as on a reconnect), the registry's entry is the one seen live;
    # a page opened after the death has it too.
    page.evaluate("loadActivity()")
    page.wait_for_timeout(500)
    expect(died).to_have_count(1)
    # The other order (the page read the log first, then the poll's message came): the
    # server's own entry, handed to the page as that message, is still the one entry.
    page.evaluate("""fetch("/api/activity").then((r) => r.json()).then((data) => {
             for (const d of data.deaths) applyRecord({ kind: "ui_machine_dead", ...d });
           })""")
    page.wait_for_timeout(500)
    expect(died).to_have_count(1)
    later = page.context.new_page()
    try:
        later.goto(page.url)
        died_later = later.locator('#activity-list li[data-kind="machine_dead"]').filter(
            has_text="simple_worker"
        )
        expect(died_later).to_contain_text("stopped answering in", timeout=WAIT_MS)
        expect(died_later).to_have_count(1)
    finally:
        later.close()
    # A dead machine is not lit on its diagram: it is in no state any more.
    diagram = page.locator('.diagram-card[data-name="simple_worker"]')
    expect(diagram.locator("g.smc-current")).to_have_count(0)


def test_a_machine_socket_that_closes_under_the_sockets_feed_leaves_the_registry_state(
    browser: Browser, tmp_path: Path
) -> None:
    """The sockets feed (``--feed sockets``) and a machine publishing on its monitor socket (a
    publisher in this process, registered in the store): the page shows the state its
    transition reached. The registry then says another state and the socket closes — as when
    a machine cuts off a server that fell behind, losing records. The page drops what it saw
    live of that machine and shows the registry's state, instead of keeping the lost one."""
    from smc.runtime.monitor import MonitorPublisher, monitor_dir

    with runner_in(tmp_path) as runner:
        with runner.store() as store:
            store.register_machine("probe", "first")
            socket_dir = monitor_dir(store)
        port = free_port()
        ui = start_ui(runner, port, "--feed", "sockets")
        publisher = MonitorPublisher.open(socket_dir, "probe")
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        try:
            wait_until(lambda: publisher.reader_count > 0, 10, "smc ui never followed the machine")
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            expect(page.locator("#connection")).to_have_text("live", timeout=WAIT_MS)
            row = page.locator("#machine-table tbody tr").filter(
                has=page.get_by_text("probe", exact=True)
            )
            expect(row.locator("td.state")).to_have_text("first", timeout=WAIT_MS)
            publisher.publish(
                {
                    "kind": "transition",
                    "machine": "probe",
                    "from": "first",
                    "event": "go",
                    "to": "second",
                    "ts": time.time(),
                }
            )
            expect(row.locator("td.state")).to_have_text("second", timeout=WAIT_MS)
            with runner.store() as store:
                assert store.update_machine("probe", "third")
        finally:
            publisher.close()
        try:
            expect(row.locator("td.state")).to_have_text("third", timeout=WAIT_MS)
        finally:
            context.close()
            ui.signal(signal.SIGTERM)
        assert ui.wait(10) == 0, ui.output()


def test_a_token_link_followed_from_another_site_logs_in(browser: Browser, tmp_path: Path) -> None:
    """A server with a token, and a link to ``/?token=...`` on a page of another site (a
    chat, a wiki; here ``localhost``, which is not the site ``127.0.0.1``). With the cookie
    SameSite=Strict the browser did not send it on that navigation's redirect nor on reloads:
    the link never logged in. The token leaves the address bar."""
    token = "a-token-of-some-length-0123456789"
    with runner_in(tmp_path) as runner:
        runner.store().close()  # smc ui makes no database
        port = free_port()
        ui = runner.start("ui", "--port", str(port), "--token", token)
        target = f"http://127.0.0.1:{port}/"

        def serving() -> bool:
            assert ui.popen.poll() is None, ui.output()
            try:
                answer = httpx2.get(
                    target + "api/state", headers={"authorization": f"Bearer {token}"}
                )
            except httpx2.TransportError:
                return False
            return answer.status_code == 200

        wait_until(serving, 20, ui.output)
        link = f'<!doctype html><a id="go" href="{target}?token={token}">the monitor</a>'

        class OtherSite(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = link.encode()
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), OtherSite)
        threading.Thread(target=other.serve_forever, daemon=True).start()
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(f"http://localhost:{other.server_address[1]}/")
            page.click("#go")
            expect(page.locator("#connection")).to_have_text("live", timeout=WAIT_MS)
            assert page.url == target
            page.reload()
            expect(page.locator("#connection")).to_have_text("live", timeout=WAIT_MS)
            # The cookie holds a session of that server, not the token: a server started
            # again (the same token) refuses it, and the open page says it is signed out
            # (its stream, closed by the 401, said "reconnecting…" for ever); the link signs
            # in again.
            ui.signal(signal.SIGTERM)
            assert ui.wait(10) == 0, ui.output()
            ui = runner.start("ui", "--port", str(port), "--token", token)
            wait_until(serving, 20, ui.output)
            expect(page.locator("#connection")).to_have_attribute(
                "data-state", "signed-out", timeout=WAIT_MS
            )
            expect(page.locator("#connection")).to_contain_text("signed out")
            page.goto(f"{target}?token={token}")
            expect(page.locator("#connection")).to_have_text("live", timeout=WAIT_MS)
        finally:
            context.close()
            other.shutdown()
            other.server_close()
            ui.signal(signal.SIGTERM)
        assert ui.wait(10) == 0, ui.output()


def test_an_activity_log_the_database_would_not_give_says_so_and_is_read_again(
    browser: Browser, system: System
) -> None:
    """``/api/activity`` answered 503 (the database busy past the store's wait): the page
    says the log could not be read, not "nothing to report" of a database "keeping no
    history" (it said both, and kept saying them until the next snapshot), and reads it
    again once the database answers."""
    system.smc("send", "order-2", "ship", "--source", "refused-reader")  # an entry to show
    busy = threading.Event()
    busy.set()

    def activity(route: Route) -> None:
        if busy.is_set():
            route.fulfill(
                status=503,
                content_type="application/json",
                body=json.dumps({"error": "the database: database is locked"}),
            )
        else:
            route.continue_()

    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        opened = context.new_page()
        opened.route(re.compile(r"/api/activity$"), activity)
        opened.goto(system.base + "/")
        expect(opened.locator("#connection")).to_have_text("live", timeout=WAIT_MS)
        source = opened.locator("#activity-source")
        expect(source).to_contain_text("could not be read", timeout=WAIT_MS)
        expect(source).to_contain_text("HTTP 503")
        expect(opened.locator("#activity-empty")).to_be_hidden()
        busy.clear()
        expect(source).to_have_text(
            "From the database's history: errors, dropped events, failures and retries.",
            timeout=WAIT_MS,
        )
        dropped = opened.locator('#activity-list li[data-kind="event_dropped"]')
        expect(dropped.filter(has_text="from refused-reader").first).to_be_visible()
    finally:
        context.close()


def test_a_diagrams_tooltips_name_the_states_not_graphvizs_ids(page: Page, system: System) -> None:
    """The pointer resting on a state of a diagram shows the state's name (a shape's
    ``<title>``), also for a hostile name and a parallel chart's regions; edges, start points
    and groups show none. They once showed Graphviz's ids: ``b_new_b``, ``__start->…``."""
    hostile = page.locator('.diagram-card[data-name="hostile"] svg')
    expect(hostile.locator("g.smc-state")).to_have_count(len(HOSTILE_STATES), timeout=WAIT_MS)
    states = hostile.locator("g.smc-state > title").all_text_contents()
    assert sorted(states) == sorted(HOSTILE_STATES)
    panel = page.locator('.diagram-card[data-name="panel"] svg')
    expect(panel.locator("g.smc-state")).to_have_count(7, timeout=WAIT_MS)
    assert sorted(panel.locator("g.smc-state > title").all_text_contents()) == sorted(
        ["panel", "power", "power_off", "power_on", "signal", "signal_green", "signal_red"]
    )
    # Below the picture's own title (the machine's), no other shape has one.
    for diagram in (hostile, panel):
        others = diagram.locator("g.edge > title, g.node:not(.smc-state) > title")
        assert others.count() == 0, others.all_text_contents()
        assert diagram.locator("g.cluster:not(.smc-state) > title").count() == 0


def test_a_very_long_job_id_keeps_its_row_short_and_inside_the_activity_log(
    page: Page, system: System
) -> None:
    """A job id of 2,000 characters: its row in the job list is three lines of it (each such
    row was 30 lines, a list of them 100,000 pixels), the whole id its link's tooltip, and its
    failure in the activity log wraps inside the log (it ran out of the panel's right edge)."""
    from smc.runtime.store import history_entry

    long_id = "long-" + "z" * 1995
    with system.runner.store() as store:
        store.add_job("nobody", job_id=long_id)
        store.stage_history(
            history_entry(
                "job_failed",
                "lister",
                ts=time.time(),
                event="nobody",
                job_id=long_id,
                attempt=1,
                excerpt_text="the end of the error",
            )
        )
        store.flush_history()
    page.locator("#job-refresh").click()
    row = page.locator(f'#job-table tr[data-job="{long_id}"]')
    expect(row).to_have_count(1, timeout=WAIT_MS)
    link = row.get_by_role("button", name=long_id)
    expect(link).to_have_attribute("title", long_id)
    # Three lines, each at most twice the font's size ("normal" line height is about 1.2).
    size, height = _font_size_and_height(link)
    assert 0 < height <= 3 * 2 * size, (height, size)
    failed = page.locator("#activity-list li[data-kind='job_failed']").filter(
        has_text="the end of the error"
    )
    expect(failed).to_have_count(1, timeout=WAIT_MS)
    message = failed.locator(".message")
    overflow = message.evaluate("(node) => node.scrollWidth - node.clientWidth")
    assert overflow <= 1, overflow
    log = page.locator("#activity").bounding_box()
    shown = message.bounding_box()
    assert log is not None and shown is not None
    assert shown["x"] + shown["width"] <= log["x"] + log["width"], (shown, log)


#: Buffers the live stream's messages while ``window.streamHeld`` is set, as a slow network
#: would: ``window.streamQueue`` holds their texts, ``window.releaseStream()`` hands them to
#: the page in order. The page's own code runs unchanged on the real EventSource.
HOLD_STREAM = """(() => {
  const Real = window.EventSource;
  window.streamHeld = false;
  window.streamQueue = [];
  window.releaseStream = () => {
    window.streamHeld = false;
    for (const deliver of window.streamQueue.splice(0)) deliver.run();
  };
  window.EventSource = class extends Real {
    set onmessage(handler) {
      super.onmessage = (event) => {
        const run = () => handler.call(this, event);
        if (window.streamHeld) window.streamQueue.push({ data: event.data, run });
        else run();
      };
    }
    get onmessage() { return super.onmessage; }
  };
})();"""


def _job_failure(runner: Runner, text: str) -> None:
    """A history row of a job that failed with ``text``, as a worker writes one."""
    from smc.runtime.store import history_entry

    with runner.store() as store:
        store.stage_history(
            history_entry(
                "job_failed",
                "racer",
                ts=time.time(),
                event="race",
                job_id=f"job-{text}",
                attempt=1,
                excerpt_text=text,
            )
        )
        store.flush_history()


def _activity_race(browser: Browser, base: str, runner: Runner, name: str) -> None:
    """A page of ``base`` whose first read of the activity log waits while a failure comes
    on the stream, and whose stream then waits while the read answers with another: each
    shows once. The picture goes to ``test-artifacts/ui-activity-race-NAME.png``."""
    held: list[Route] = []

    def activity(route: Route) -> None:
        if held:
            route.continue_()
        else:
            held.append(route)  # the first read waits until let go, below

    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        opened = context.new_page()
        errors: list[str] = []
        opened.on("pageerror", lambda error: errors.append(str(error)))
        opened.add_init_script(HOLD_STREAM)
        opened.route(re.compile(r"/api/activity$"), activity)
        opened.goto(base + "/")
        expect(opened.locator("#connection")).to_have_text("live", timeout=WAIT_MS)
        source = opened.locator("#activity-source")
        expect(source).to_have_text("Reading the activity log…", timeout=WAIT_MS)
        for _ in range(100):  # the route's handler runs while Playwright is called
            if held:
                break
            opened.wait_for_timeout(100)
        assert held, "the page did not read the activity log"
        failed = opened.locator("#activity-list li[data-kind='job_failed']")
        # The stream brings the first while the read waits.
        _job_failure(runner, f"{name}-on-the-stream-first")
        first = failed.filter(has_text=f"{name}-on-the-stream-first")
        expect(first).to_have_count(1, timeout=WAIT_MS)
        # The second reaches the page's stream and waits there, behind the read.
        opened.evaluate("window.streamHeld = true")
        _job_failure(runner, f"{name}-in-the-read-first")
        opened.wait_for_function(
            "(text) => window.streamQueue.some((message) => message.data.includes(text))",
            arg=f"{name}-in-the-read-first",
            timeout=WAIT_MS,
        )
        held[0].continue_()  # the read, made now, answers with both
        expect(source).to_contain_text(
            "From the database's history: errors, dropped events, failures and retries.",
            timeout=WAIT_MS,
        )
        second = failed.filter(has_text=f"{name}-in-the-read-first")
        expect(second).to_have_count(1, timeout=WAIT_MS)
        expect(first).to_have_count(1)
        opened.evaluate("window.releaseStream()")
        # A later entry shown: the page has drawn what came on the stream before it.
        _job_failure(runner, f"{name}-after")
        expect(failed.filter(has_text=f"{name}-after")).to_have_count(1, timeout=WAIT_MS)
        assert first.count() == 1
        assert second.count() == 1
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / f"ui-activity-race-{name}.png"
        opened.locator("#activity").screenshot(path=str(shot))
        assert errors == [], errors
    finally:
        context.close()


def test_an_activity_entry_shows_once_whichever_of_the_stream_and_the_first_read_brings_it_first(
    browser: Browser, system: System
) -> None:
    """The page's first read of the activity log and the live stream race: an entry the
    stream brings while the read is on its way is in the read's answer too, and one the read
    answers with can come on the stream after (the feed follows the history 100 ms behind).
    Each shows once."""
    _activity_race(browser, system.base, system.runner, "history")


def test_an_activity_entry_shows_once_under_the_race_on_the_sockets_feed(
    browser: Browser, tmp_path: Path
) -> None:
    """As above, the live records from the machines' sockets (``--feed sockets``) and the
    activity rows from the server's read of the history every second (``ui_history``)."""
    with runner_in(tmp_path) as runner:
        with runner.store() as store:
            store.register_machine("racer", "idle")
        port = free_port()
        ui = start_ui(runner, port, "--feed", "sockets")
        try:
            _activity_race(browser, f"http://127.0.0.1:{port}", runner, "sockets")
        finally:
            ui.signal(signal.SIGTERM)
        assert ui.wait(10) == 0, ui.output()


#: The status cells: the machine list's second column, the job list's third.
STATUS_CELLS = "#machine-table tbody td:nth-child(2), #job-table tbody td:nth-child(3)"


@pytest.mark.parametrize("width", [390, 768])
def test_the_status_columns_break_no_word_in_a_narrow_window(
    browser: Browser, system: System, width: int
) -> None:
    """A phone's 390 px and a tablet's 768 px: no word of a status cell (the status, and a
    job's last error under it) is broken mid-way, however narrow the column (a failed job's
    error read "processi" over "ng" in a column as wide as its badge)."""
    job_type = f"narrow-{width}"
    error = "processing stopped: the connection was refused while running the check"
    with system.runner.store() as store:
        for n in range(2):
            job = store.add_job(job_type, job_id=f"narrow-{width}-{n}", max_attempts=1)
            claimed = store.claim_job_by_id(job.id, "narrow-worker")
            assert claimed is not None and claimed.claim_token is not None
            assert store.fail_job(job.id, error, claimed.claim_token)
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        page.goto(system.base + "/")
        expect(page.locator("#connection")).to_have_text("live", timeout=WAIT_MS)
        machines = page.locator("#machine-table tbody tr")
        expect(machines.filter(has_text="running").first).to_be_visible(timeout=WAIT_MS)
        page.locator("#job-type").fill(job_type)
        page.locator("#job-type").dispatch_event("change")
        failed = page.locator("#job-table tbody tr[data-status='failed']")
        expect(failed).to_have_count(2, timeout=WAIT_MS)
        expect(failed.first.locator(".error-text")).to_contain_text("processing")
        assert page.evaluate(BROKEN_WORDS, STATUS_CELLS) == []
        # The badge's word is on one line, and the error's lines are no more than three.
        size, height = _font_size_and_height(failed.first.locator(".badge"))
        assert 0 < height <= 2 * size, (height, size)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator("#machines").screenshot(
            path=str(ARTIFACTS / f"ui-status-{width}-machines.png")
        )
        page.locator("#jobs").screenshot(path=str(ARTIFACTS / f"ui-status-{width}-jobs.png"))
    finally:
        context.close()
