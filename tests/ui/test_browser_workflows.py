"""The web monitor's Workflows section in a real browser (Debian's Chromium, Playwright)
against a real ``smc ui``, a real ``smc workflow run`` scheduler and real ``smc run``
workers on a SQLite file (the workers run ``./task.sh`` as tests/e2e/test_workflows.py's do:
a task sleeps, or fails when its name starts with ``broken``).

The page is watched while the run goes on: each task's node turns RUNNING's colour, then its
final state's, and the run's row ends ``failed`` (one task fails, its dependent is skipped).
A second run, written into the store directly, has a task name made of markup: it shows as
text. A third, whose job no worker takes, is cancelled with the page's button. Screenshots go
to ``test-artifacts/ui-workflow-*.png``.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Dialog, Locator, Page, expect, sync_playwright

from smc.workflow.diagram import STATE_COLOURS
from tests.e2e.test_workflows import _setup, _wait_workers, _worker, _workflow
from tests.support.harness import REPO, Runner, runner_in
from tests.support.web import BROKEN_WORDS, free_port, launch_chromium, start_ui
from tests.ui.test_workflows import _move

pytestmark = pytest.mark.slow

ARTIFACTS = REPO / "test-artifacts"
WAIT_MS = 30_000
#: A task name no workflow file may hold; a stored definition is data.
HOSTILE_TASK = (
    '<img src=x onerror="window.pwned=1">"];} digraph x {"&amp;<script>window.pwned=2</script>'
)

WORKFLOW = """workflow: release
on_failure: skip_dependents
tasks:
  build: {job_type: t}
  test_a: {job_type: t, needs: [build]}
  test_b: {job_type: t, needs: [build]}
  broken_lint: {job_type: t, needs: [build]}
  notify: {job_type: t, needs: [broken_lint]}
  publish: {job_type: t, needs: [test_a, test_b]}
"""


def _rgb(colour: str) -> str:
    """``#rrggbb`` as the browser's computed style writes it."""
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


@pytest.fixture
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runner, str]]:
    with runner_in(tmp_path_factory.mktemp("uiwf")) as runner:
        _setup(runner)
        runner.env["TASK_SLEEP"] = "2.5"  # long enough for the page to see RUNNING
        workers = [(_worker(runner, name, "t"), name) for name in ("w1", "w2")]
        _wait_workers(runner, str(runner.db), workers)
        port = free_port()
        ui = start_ui(runner, port, probe="/api/workflows")
        yield runner, f"http://127.0.0.1:{port}"
        ui.signal(signal.SIGTERM)
        assert ui.wait(10) == 0, ui.output()


@pytest.fixture
def page(system: tuple[Runner, str]) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser: Browser = launch_chromium(playwright)
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        opened = context.new_page()
        dialogs: list[str] = []
        errors: list[str] = []

        def dismiss(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        opened.on("dialog", dismiss)
        opened.on("pageerror", lambda error: errors.append(str(error)))
        # Every data-machine the page ever shows, however briefly (a machine row the next
        # registry read would remove again included).
        opened.add_init_script("""new MutationObserver(() => {
                 window.__machines = window.__machines || new Set();
                 for (const e of document.querySelectorAll("[data-machine]"))
                   window.__machines.add(e.getAttribute("data-machine"));
               }).observe(document, {subtree: true, childList: true, attributes: true});""")
        opened.goto(system[1] + "/#workflows")
        expect(opened.locator("#connection")).to_have_text("live", timeout=WAIT_MS)
        yield opened
        assert opened.evaluate("window.pwned") is None, "a task name ran as script"
        assert dialogs == [] and errors == [], (dialogs, errors)
        browser.close()


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#workflows").screenshot(path=str(ARTIFACTS / f"ui-workflow-{name}.png"))


def test_task_nodes_change_colour_live_until_the_run_finishes(
    page: Page, system: tuple[Runner, str]
) -> None:
    runner, _ = system
    path = _workflow(runner, WORKFLOW)
    scheduler = runner.start("workflow", "run", str(path), "--run-id", "live1")
    row = page.locator('#workflow-table tr[data-run="live1"]')
    expect(row).to_have_count(1, timeout=WAIT_MS)
    row.get_by_role("button", name="live1").click()
    detail = page.locator('#workflow-detail[data-run="live1"]')
    expect(detail).to_be_visible(timeout=WAIT_MS)
    nodes = page.locator("#workflow-detail svg g[data-state]")
    expect(nodes).to_have_count(6, timeout=WAIT_MS)

    def node_fill(task: str) -> str:
        shape = page.locator(f'#workflow-detail svg g[data-state="{task}"] > polygon').first
        fill: str = shape.evaluate("e => getComputedStyle(e).fill")
        return fill

    build = page.locator('#workflow-detail svg g[data-state="build"]')
    expect(build).to_have_attribute("data-task-state", "RUNNING", timeout=WAIT_MS)
    assert node_fill("build") == _rgb(STATE_COLOURS["RUNNING"])
    assert node_fill("publish") == _rgb(STATE_COLOURS["PENDING"])
    # The two tests run at once on the two workers.
    for task in ("test_a", "test_b"):
        expect(_node_locator(page, task)).to_have_attribute(
            "data-task-state", "RUNNING", timeout=WAIT_MS
        )
    assert node_fill("build") == _rgb(STATE_COLOURS["COMPLETED"])
    _shot(page, "running")
    expect(_node_locator(page, "publish")).to_have_attribute(
        "data-task-state", "COMPLETED", timeout=WAIT_MS
    )
    assert scheduler.wait(30) == 1, scheduler.output()  # a task failed: the run failed
    expect(detail).to_have_attribute("data-status", "failed", timeout=WAIT_MS)
    expect(row).to_have_attribute("data-status", "failed", timeout=WAIT_MS)
    # The scheduler's task moves are history rows too (machine "release/<task>"): they are
    # shown here, never as machines.
    shown = page.evaluate("[...(window.__machines || [])]")
    assert {"w1", "w2"} <= set(shown), shown  # the observer saw the workers' rows
    assert not [name for name in shown if name.startswith("release/")], shown
    final = {
        "build": "COMPLETED",
        "test_a": "COMPLETED",
        "test_b": "COMPLETED",
        "broken_lint": "FAILED",
        "notify": "SKIPPED",
        "publish": "COMPLETED",
    }
    for task, state in final.items():
        expect(_node_locator(page, task)).to_have_attribute("data-task-state", state)
        assert node_fill(task) == _rgb(STATE_COLOURS[state]), task
        task_row = page.locator(f'#workflow-detail tr[data-task="{task}"]')
        expect(task_row).to_have_attribute("data-task-state", state)
    lint = page.locator('#workflow-detail tr[data-task="broken_lint"]')
    expect(lint.locator("td").nth(2)).to_have_text("1")  # the attempt
    expect(lint.get_by_role("button", name="live1.broken_lint.1")).to_have_count(1)
    legend = page.locator('#workflow-detail .wf-legend li[data-task-state="COMPLETED"]')
    expect(legend).to_have_text("COMPLETED 4")
    expect(row.locator(".wf-counts")).to_contain_text("completed 4")
    expect(row.locator(".wf-counts")).to_contain_text("failed 1")
    _shot(page, "finished")
    # Polled every second, the finished run's rows are not rebuilt when nothing changed: a
    # button replaced between a press and its release would lose the click.
    link = lint.get_by_role("button", name="live1.broken_lint.1").element_handle()
    run_link = row.get_by_role("button", name="live1").element_handle()
    page.wait_for_timeout(2500)
    assert link.evaluate("e => e.isConnected") and run_link.evaluate("e => e.isConnected")
    # The job link opens the job view.
    lint.get_by_role("button", name="live1.broken_lint.1").click()
    expect(page.locator("#job-detail")).to_contain_text("live1.broken_lint.1", timeout=WAIT_MS)


def _node_locator(page: Page, task: str) -> Locator:
    return page.locator(f'#workflow-detail svg g[data-state="{task}"]')


def test_a_hostile_task_name_is_text_and_the_cancel_button_cancels_a_run(
    page: Page, system: tuple[Runner, str]
) -> None:
    runner, _ = system
    names = ["first", HOSTILE_TASK]
    definition = {
        "workflow": "stored",
        "tasks": {"first": {"job_type": "t"}, HOSTILE_TASK: {"job_type": "x", "needs": ["first"]}},
    }
    with runner.store() as store:
        assert store.create_workflow_run("hostile1", "stored", "tr", definition, names, "PENDING")
    row = page.locator('#workflow-table tr[data-run="hostile1"]')
    expect(row).to_have_count(1, timeout=WAIT_MS)
    row.get_by_role("button", name="hostile1").click()
    nodes = page.locator('#workflow-detail[data-run="hostile1"] svg g[data-state]')
    expect(nodes).to_have_count(2, timeout=WAIT_MS)
    marks = nodes.evaluate_all("gs => gs.map(g => g.getAttribute('data-state'))")
    assert sorted(marks) == sorted(names)
    labels = page.locator("#workflow-detail svg text").all_text_contents()
    assert HOSTILE_TASK in labels
    expect(page.locator("#workflow-detail td.name").filter(has_text="onerror")).to_have_text(
        HOSTILE_TASK
    )
    assert page.locator("#workflow-detail img, #workflow-detail script").count() == 0
    _shot(page, "hostile")

    # A run whose first job no worker takes: cancelled with the button.
    path = _workflow(
        runner, "workflow: idle\ntasks:\n  a: {job_type: nobody}\n  b: {job_type: t, needs: [a]}\n"
    )
    scheduler = runner.start("workflow", "run", str(path), "--run-id", "idle1")
    idle = page.locator('#workflow-table tr[data-run="idle1"]')
    expect(idle).to_have_count(1, timeout=WAIT_MS)
    idle.get_by_role("button", name="idle1").click()
    a_node = page.locator('#workflow-detail[data-run="idle1"] svg g[data-state="a"]')
    expect(a_node).to_have_attribute("data-task-state", "RUNNING", timeout=WAIT_MS)
    page.locator('#workflow-detail button[data-action="cancel-run"]').click()
    assert scheduler.wait(30) == 1, scheduler.output()
    expect(idle).to_have_attribute("data-status", "cancelled", timeout=WAIT_MS)
    expect(a_node).to_have_attribute("data-task-state", "CANCELLED", timeout=WAIT_MS)
    with runner.store() as store:
        run = store.get_workflow_run("idle1")
    assert run is not None and run.cancel_requested and run.status == "cancelled"


def test_a_tasks_last_error_breaks_between_words_in_a_narrow_window(
    page: Page, system: tuple[Runner, str]
) -> None:
    """A phone's 390 px: a failed task's last error breaks between words, in three lines
    at most (the whole text is its tooltip); it broke anywhere, "connecti" over "on", the
    column as narrow as the task's state."""
    runner, _ = system
    error = (
        "processing stopped: the connection was refused while running the check; "
        "see verification.log for what it said "
    ) * 3
    definition = {"workflow": "narrow", "tasks": {"deploy": {"job_type": "t"}}}
    with runner.store() as store:
        assert store.create_workflow_run(
            "narrow1", "narrow", "tn", definition, ["deploy"], "PENDING"
        )
        token = store.take_workflow_run("narrow1", 60)
        assert token is not None
        _move(
            store,
            "narrow1",
            token,
            "deploy",
            "FAILED",
            attempt=1,
            job_id="narrow1.deploy.1",
            last_error=error,
        )
    page.set_viewport_size({"width": 390, "height": 900})
    row = page.locator('#workflow-table tr[data-run="narrow1"]')
    expect(row).to_have_count(1, timeout=WAIT_MS)
    row.get_by_role("button", name="narrow1").click()
    task = page.locator('#workflow-detail[data-run="narrow1"] tr[data-task="deploy"]')
    expect(task).to_have_attribute("data-task-state", "FAILED", timeout=WAIT_MS)
    shown = task.locator(".error-text")
    expect(shown).to_contain_text("processing stopped")
    # No word of the tables is broken: the error's, the run's id, the task's job id (which
    # stood three letters a line).
    cells = "#workflow-detail .wf-tasks tbody td, #workflow-table tbody td"
    assert page.evaluate(BROKEN_WORDS, cells) == []
    # The picked run's row is one colour, as tall in every cell, its chips' too: that cell,
    # a flex box, was no table cell, and where the row grew taller (its scheduler's text on
    # two lines) the colour stopped under the chips, white below.
    runs = row.locator("td")
    colours = runs.evaluate_all("tds => tds.map(td => getComputedStyle(td).backgroundColor)")
    heights = runs.evaluate_all("tds => tds.map(td => td.getBoundingClientRect().height)")
    assert len(set(colours)) == 1 and colours[0] != "rgba(0, 0, 0, 0)", colours
    assert max(heights) - min(heights) < 1, heights
    expect(shown).to_have_attribute("title", error)
    size, height = shown.evaluate(
        "e => [parseFloat(getComputedStyle(e).lineHeight)"
        " || 1.2 * parseFloat(getComputedStyle(e).fontSize), e.getBoundingClientRect().height]"
    )
    assert 0 < height <= 3 * size + 1, (height, size)
    _shot(page, "narrow")
    shown.scroll_into_view_if_needed()  # the table scrolls sideways in its panel
    _shot(page, "narrow-error")
