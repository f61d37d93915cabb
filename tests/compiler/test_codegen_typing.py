"""Typing that catches typos: mypy --strict and pyright (strict) on user code against the
committed generated/ modules.

A misspelt event name given to ``fire()``, a misspelt state given to the constructor and a
listener with the wrong signature are type errors in both checkers, reported on the line
that holds them; correct use (names, enum members, typed listeners, a name checked at run
time with ``Event(name)``) passes. The checkers are the real ones: mypy from PyPI, pyright
from npm (``tests/js``, installed by ``npm ci --prefix tests/js``). Only exit codes and the
line numbers of diagnostics are asserted, never the tools' wording.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT

PYRIGHT = PROJECT_ROOT / "tests" / "js" / "node_modules" / ".bin" / "pyright"

GOOD = """\
from typing_extensions import override

from generated import DownloadWorker, SimpleWorker, TaskExecution
from generated.download_worker import State as DownloadState
from generated.simple_worker import Event, EventName, State, StateName


def on_change(source: State, event: Event, target: State) -> None:
    print(source, event, target)


def loose(source: object, event: object, target: object) -> bool:
    return True


def fire_by_name(machine: SimpleWorker, name: str) -> State:
    # a name only known at run time: checked by the enum (ValueError if unknown)
    return machine.fire(SimpleWorker.Event(name))


def start(state: StateName, event: EventName) -> SimpleWorker:
    machine = SimpleWorker(state=state)
    machine.fire(event)
    return machine


machine = SimpleWorker(state="waiting")
machine.add_listener(on_change)
machine.add_listener(loose)
machine.add_listener(lambda source, event, target: None)
machine.fire("new_job")
machine.fire(SimpleWorker.Event.JOB_DONE)
assert machine.can_fire("job_completed")
machine.job_completed()
machine.remove_listener(loose)
fire_by_name(machine, "new_job")
start("waiting", "stop")
task = TaskExecution()
task.transition("RUNNING")
assert task.can_transition("COMPLETED")


class Traced(DownloadWorker):
    @override
    def on_enter_working(self) -> None:
        print(sorted(self.configuration))

    @override
    def on_exit_online(self) -> None:
        pass

    @override
    def on_pause(self) -> None:
        pass


chart = Traced()
chart.new_job()
assert chart.in_state(DownloadState.WORKING) and chart.in_state("online")
configuration: frozenset[DownloadState] = chart.configuration
view: DownloadState = chart.fire("pause")
restored: Traced = Traced.restore(["online", "waiting"])
again: SimpleWorker = SimpleWorker.restore(**SimpleWorker("waiting").snapshot())
"""

#: Each line marked ``# error`` must be reported, and nothing else.
BAD = """\
from typing_extensions import override

from generated import DownloadWorker, SimpleWorker, TaskExecution
from generated.simple_worker import Event, State


def three_arguments(source: State, event: Event, target: State) -> None:
    pass


def one_argument(target: State) -> None:
    pass


def wrong_types(source: int, event: int, target: int) -> None:
    pass


machine = SimpleWorker(state="watiing")  # error
machine.add_listener(three_arguments)
machine.fire("new_job")
machine.fire("new_jbo")  # error
machine.can_fire("job_dnoe")  # error
machine.add_listener(one_argument)  # error
machine.add_listener(wrong_types)  # error
TaskExecution().transition("RUNING")  # error


class Misspelt(DownloadWorker):
    @override
    def on_enter_workign(self) -> None:  # error
        pass


DownloadWorker().in_state("onlien")  # error
DownloadWorker().fire("pasue")  # error
"""


def expected_lines(source: str) -> set[int]:
    return {n for n, line in enumerate(source.splitlines(), 1) if line.endswith("# error")}


@pytest.fixture
def user_project(tmp_path: Path) -> Path:
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "bad.py").write_text(BAD)
    return tmp_path


def run_mypy(project: Path, name: str) -> tuple[int, set[int]]:
    # MYPYPATH: this checkout's smc and generated/ come before any installed smc
    env = {**os.environ, "MYPYPATH": str(PROJECT_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--python-version",
         "3.11", "--hide-error-context", "--no-error-summary", name],
        cwd=project, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    lines = set()
    for line in result.stdout.splitlines():
        match = re.match(rf"{re.escape(name)}:(\d+): error:", line)
        if match:
            lines.add(int(match.group(1)))
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return result.returncode, lines


def run_pyright(project: Path, name: str) -> tuple[int, set[int]]:
    assert PYRIGHT.is_file(), "pyright is missing: npm ci --prefix tests/js"
    config = {
        "pythonVersion": "3.11",
        "typeCheckingMode": "strict",
        "extraPaths": [str(PROJECT_ROOT)],
        "include": [name],
    }
    (project / "pyrightconfig.json").write_text(json.dumps(config))
    result = subprocess.run(
        [str(PYRIGHT), "--outputjson", "--project", str(project / "pyrightconfig.json")],
        cwd=project, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    report = json.loads(result.stdout)
    lines = {
        d["range"]["start"]["line"] + 1
        for d in report["generalDiagnostics"]
        if d["severity"] == "error"
    }
    return result.returncode, lines


CHECKERS = {"mypy": run_mypy, "pyright": run_pyright}


@pytest.mark.parametrize("checker", sorted(CHECKERS))
def test_correct_use_passes(user_project: Path, checker: str) -> None:
    returncode, lines = CHECKERS[checker](user_project, "good.py")
    assert (returncode, lines) == (0, set())


@pytest.mark.parametrize("checker", sorted(CHECKERS))
def test_typos_and_wrong_listeners_are_rejected_where_they_are(
    user_project: Path, checker: str
) -> None:
    returncode, lines = CHECKERS[checker](user_project, "bad.py")
    assert returncode != 0
    assert lines == expected_lines(BAD)


def test_the_runtime_and_testing_take_any_generated_class(tmp_path: Path) -> None:
    """``smc.machine.GeneratedMachine`` is what ``smc.testing`` and the runtime take; every
    generated class satisfies it, in both checkers."""
    source = (
        "from smc.machine import GeneratedMachine, state_enum\n"
        "from generated import DownloadWorker, SimpleWorker, TaskController, TaskExecution\n"
        "from smc.testing import MachineTest\n"
        "classes: list[type[GeneratedMachine]] = [\n"
        "    SimpleWorker, TaskController, TaskExecution, DownloadWorker\n"
        "]\n"
        "names = [state_enum(cls).__name__ for cls in classes]\n"
        "Test = MachineTest.for_machine(SimpleWorker)\n"
    )
    (tmp_path / "protocol.py").write_text(source)
    for checker in sorted(CHECKERS):
        assert CHECKERS[checker](tmp_path, "protocol.py") == (0, set()), checker


# ---- typed data (context, payloads): modules generated here, checked with user code ----

DATA_GOOD = """\
import pickle

from typing_extensions import override

from data_chart import DataChart
from data_worker import Context, DataWorker, FailedPayload
from guarded_chart import GuardedChart


class Counted(DataChart):
    @override
    def on_enter_failed(self) -> None:
        self.context.attempts += 1


machine = DataWorker(context=Context(attempts=1, mode="slow"))
machine.start()
machine.failed(error="disk full")
machine.failed(error="disk full", code=28)
payload: FailedPayload = {"error": "x"}
machine.failed(**payload)
machine.retry()
machine.retry(reason="again")
machine.fire("failed", {"anything": 1})
attempts: int = machine.context.attempts
last: str | None = machine.context.last_error
tags: list[str] = machine.context.tags
machine.context.last_error = None
restored = Context.from_dict(pickle.loads(pickle.dumps(machine.context.to_dict())))
chart = Counted()
chart.start()
chart.failed(error="x")


class Guarded(GuardedChart):
    @override
    def has_room(self) -> bool:
        return True

    @override
    def is_closed(self) -> bool:
        return False


guarded = Guarded()
guarded.go()
"""

#: Each line marked ``# error`` must be reported, and nothing else.
DATA_BAD = """\
from typing_extensions import override

from data_chart import DataChart
from data_worker import Context, DataWorker
from guarded_chart import GuardedChart

machine = DataWorker()
machine.failed(eror="disk full")  # error
machine.failed(error=28)  # error
machine.failed()  # error
machine.failed(error="x", code="28")  # error
machine.retry(reason=1)  # error
machine.start(error="x")  # error
machine.context.attempts = "3"  # error
machine.context.atempts = 3  # error
Context(mode="medium")  # error
DataChart().failed(error=None)  # error
GuardedChart()  # error


class Half(GuardedChart):
    @override
    def is_closed(self) -> bool:
        return False


Half()  # error


class Misspelt(GuardedChart):
    @override
    def has_rooom(self) -> bool:  # error
        return True

    @override
    def is_closed(self) -> bool:
        return False
"""

DATA_MACHINES = {
    "data_worker.yaml": """\
initial_state: pending
context:
  attempts: {type: integer, default: 0}
  last_error: {type: [string, "null"], default: null}
  tags: {type: array, items: {type: string}, default: []}
  mode: {enum: [fast, slow], default: fast}
events:
  start: null
  failed:
    payload:
      type: object
      properties: {error: {type: string}, code: {type: integer}}
      required: [error]
  retry:
    payload: {type: object, properties: {reason: {type: string}}}
transitions:
  - {from: pending, to: running, event: start}
  - {from: running, to: failed, event: failed}
  - {from: failed, to: failed, event: failed}
  - {from: failed, to: pending, event: retry}
  - {from: failed, to: running, event: start}
""",
    "data_chart.yaml": """\
initial_state: work
context:
  attempts: {type: integer, default: 0}
events:
  start: null
  failed: {payload: {type: object, properties: {error: {type: string}}, required: [error]}}
states:
  - name: work
    states: [pending, running, failed]
transitions:
  - {from: pending, to: running, event: start}
  - {from: running, to: failed, event: failed}
  - {from: failed, to: pending, event: start}
""",
    # named guards: the base declares them abstract, so a subclass must write each one
    # (with an `assign`: a guarded chart without one has `_ASSIGNS = ()`, which pyright strict
    # narrows to `tuple[()]` and then refuses to call, a problem of its own)
    "guarded_chart.yaml": """\
initial_state: idle
context:
  tries: {type: integer, default: 0}
states: [idle, room, full]
transitions:
  - {from: idle, to: room, event: go, guard: has_room, unless: is_closed}
  - from: idle
    to: full
    event: go
    actions: [{type: assign, location: tries, expr: "tries + 1"}]
""",
}


@pytest.fixture
def data_project(tmp_path: Path) -> Path:
    from smc.compiler import codegen
    from smc.compiler.check import check_texts

    result = check_texts(list(DATA_MACHINES.items()))
    assert not result.errors, result.errors
    for machine in result.machines:
        module = codegen.module_names(machine).module
        source = codegen.generate_machine(machine, f"{module}.yaml")
        (tmp_path / f"{module}.py").write_text(source)
    (tmp_path / "good.py").write_text(DATA_GOOD)
    (tmp_path / "bad.py").write_text(DATA_BAD)
    return tmp_path


@pytest.mark.parametrize("checker", sorted(CHECKERS))
def test_typed_data_correct_use_passes(data_project: Path, checker: str) -> None:
    """The generated modules themselves pass in strict mode, and so does user code."""
    for name in ("data_worker.py", "data_chart.py", "guarded_chart.py", "good.py"):
        assert CHECKERS[checker](data_project, name) == (0, set()), name


@pytest.mark.parametrize("checker", sorted(CHECKERS))
def test_wrong_payload_fields_context_types_and_missing_guards_are_rejected(
    data_project: Path, checker: str
) -> None:
    returncode, lines = CHECKERS[checker](data_project, "bad.py")
    assert returncode != 0
    assert lines == expected_lines(DATA_BAD)
