"""Guards and assignments in the generated chart class (issue 14, docs/generated-code.md,
"Guards and assignments"): ``when:``/``guard:``/``unless:`` compiled into ``_cond_<n>``
functions, ``assign`` actions into ``_assign_<n>``, and the core's decision programs into
``_PROGRAMS``. The modules are generated from YAML, written to a temporary directory and
imported; the walk is compared with the core's own run of the table (``DispatchTable.fire``).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from smc import IllegalTransition
from smc.compiler import codegen
from smc.compiler.charts import Specialized, machine_table
from smc.compiler.check import check_texts
from smc.compiler.model import Machine
from smc.compiler.pylayout import format_python
from smc.compiler.statechart.semantics import UnsettledMacrostep
from tests.support.statecharts import checked
from tests.support.statecharts import compiled as compile_machine

PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: The issue's retry chart: retry while attempts remain, else dead.
RETRY = """\
initial_state: idle
metadata: {machine_name: retry}
context:
  attempts: {type: integer, default: 0}
  max_attempts: {type: integer, default: 3}
  last_error: {type: [string, "null"], default: null}
events:
  start: null
  failed:
    payload:
      type: object
      properties: {error: {type: string}, code: {type: integer}}
      required: [error, code]
  retry: null
transitions:
  - {from: idle, to: running, event: start}
  - from: running
    to: failed
    event: failed
    actions:
      - {type: assign, location: attempts, expr: "attempts + 1"}
      - {type: assign, location: last_error, expr: "payload.error"}
  - {from: failed, to: running, event: retry, when: "attempts < max_attempts"}
  - {from: failed, to: dead, event: retry}
"""

#: A guard reading the payload, named guards, In(), and a guarded eventless loop.
MIXED = """\
initial_state: idle
metadata: {machine_name: mixed}
context:
  i: {type: integer, default: 0}
events:
  go:
    payload: {type: object, properties: {code: {type: integer}}, required: [code]}
  count: null
  finish: null
states:
  - name: idle
  - name: counting
  - name: big
  - name: room
  - {name: done, final: true}
transitions:
  - {from: idle, to: big, event: go, when: "payload.code > 2"}
  - {from: idle, to: room, event: go, guard: has_room, unless: is_closed}
  - {from: idle, to: counting, event: go}
  - {from: big, to: idle, event: count}
  - {from: room, to: idle, event: count}
  - from: counting
    to: counting
    when: "i < 3 and In('counting')"
    actions:
      - {type: assign, location: i, expr: "i + 1"}
  - {from: counting, to: done, event: finish}
"""


def compiled(text: str, directory: Path) -> ModuleType:
    """The generated module of ``text``, imported under a fresh name."""
    return compile_machine(checked(text), directory, "m.yaml")


@pytest.fixture
def retry(tmp_path: Path) -> ModuleType:
    return compiled(RETRY, tmp_path)


@pytest.fixture
def mixed(tmp_path: Path) -> ModuleType:
    return compiled(MIXED, tmp_path)


@pytest.mark.parametrize("limit", [1, 3, 5])
def test_retry_retries_while_attempts_remain_then_dies(retry: ModuleType, limit: int) -> None:
    m = retry.Retry(context=retry.Context(max_attempts=limit))
    m.start()
    failures = 0
    while m.state != "dead":
        assert m.state == "running"
        m.failed(error=f"e{failures}", code=failures)
        failures += 1
        assert m.state == "failed" and m.context.attempts == failures
        assert m.context.last_error == f"e{failures - 1}"
        m.retry()
    assert failures == limit and m.is_final
    assert m.context.attempts == limit
    with pytest.raises(IllegalTransition):
        m.retry()


def test_fire_by_name_runs_the_program_and_sets_the_payload(retry: ModuleType) -> None:
    m = retry.Retry()
    m.fire("start")
    assert m.fire("failed", {"error": "disk full", "code": 7}) == "failed"
    assert m.context.last_error == "disk full" and m.payload == {"error": "disk full", "code": 7}
    assert m.can_fire("retry") and m.allowed_events() == (retry.Event.RETRY,)
    assert m.fire("retry") == "running"
    with pytest.raises(IllegalTransition):
        m.fire("retry")  # not accepted in running: nothing changes
    assert m.state == "running" and m.context.attempts == 1


def test_hooks_and_listeners_follow_the_program(retry: ModuleType) -> None:
    seen: list[str] = []

    class Watched(retry.Retry):  # type: ignore[misc, name-defined]
        def on_failed(self) -> None:
            seen.append(f"on_failed attempts={self.context.attempts}")

        def on_enter_dead(self) -> None:
            seen.append("dead")

        def on_exit_failed(self) -> None:
            seen.append("exit failed")

    m = Watched(context=retry.Context(max_attempts=1))
    m.add_listener(lambda s, e, t: seen.append(f"{s}-{e}->{t}"))
    m.start()
    m.failed(error="x", code=1)
    m.retry()
    assert seen == [
        "idle-start->running",
        "on_failed attempts=1",
        "running-failed->failed",
        "exit failed",
        "dead",
        "failed-retry->dead",
    ]


def test_a_guard_reads_the_payload_and_named_guards_are_methods(mixed: ModuleType) -> None:
    with pytest.raises(TypeError, match="abstract"):
        mixed.Mixed()  # the named guards are abstract: a subclass must write them

    class Half(mixed.Mixed):  # type: ignore[misc, name-defined]
        def is_closed(self) -> bool:
            return False

    with pytest.raises(TypeError, match="has_room"):
        Half()

    class Open(mixed.Mixed):  # type: ignore[misc, name-defined]
        asked = 0

        def has_room(self) -> bool:
            self.asked += 1
            return True

        def is_closed(self) -> bool:
            return self.closed

    o = Open()
    o.closed = False
    assert o.go(code=3) == "big"
    assert o.asked == 0  # payload.code > 2 holds first: has_room is not asked
    o = Open()
    o.closed = False
    assert o.go(code=0) == "room"
    o.count()
    o.closed = True
    # the guard holds but `unless:` too: the unguarded else, then the eventless loop
    assert o.go(code=0) == "counting"
    assert o.context.i == 3
    assert o.finish() == "done"


class _Data:
    """The retry chart's data as the core's run of the table sees it."""

    def __init__(self) -> None:
        self.attempts = 0

    def guard(self, cond: object) -> bool:  # attempts < max_attempts (2)
        return self.attempts < 2

    def execute(self, action: Any) -> None:
        if action[:3:2] == ("transition", 0):  # the first assign: attempts + 1
            self.attempts += 1


def test_the_walk_matches_the_core(tmp_path: Path) -> None:
    """Differential: the generated class against ``DispatchTable.fire`` with the same
    guards, over every event sequence of a few steps."""
    machine = checked(RETRY)
    _, table = machine_table(machine)
    module = compiled(RETRY, tmp_path)
    conds = {t.index for t in machine.transitions if t.guarded}
    assert all(cond in conds for row in table.programs for p in row.values() for cond in [p[0][1]])
    events = ("start", "failed", "retry")
    for sequence in itertools.product(events, repeat=6):
        m = module.Retry(context=module.Context(max_attempts=2))
        data = _Data()
        situation = 0
        for event in sequence:
            outcome = table.fire(situation, event, data.guard, data.execute)
            payload = {"error": "e", "code": 0} if event == "failed" else None
            if outcome is None:
                with pytest.raises(IllegalTransition):
                    m.fire(event, payload)
                continue
            situation = outcome[0]
            m.fire(event, payload)
            assert m.situation == situation
            assert m.context.attempts == data.attempts


def test_unguarded_charts_have_no_programs() -> None:
    """A chart without guards or assignments keeps its module as it was."""
    text = (
        "initial_state: idle\nstates:\n  - {name: work, states: [idle, busy]}\n"
        "  - {name: done, final: true}\ntransitions:\n"
        "  - {from: idle, to: busy, event: go}\n  - {from: work, to: done, event: stop}\n"
    )
    source = codegen.generate_machine(checked(text), "m.yaml")
    assert "_PROGRAMS" not in source and "_fire_program" not in source


@pytest.mark.parametrize("text", [RETRY, MIXED])
@pytest.mark.parametrize("width", [60, 88, 100])
def test_guarded_modules_are_in_black_style(text: str, width: int) -> None:
    source = codegen.generate_machine(checked(text), "m.yaml", width)
    assert format_python(source, width) == source


USER = """\
from {module} import Mixed, Retry


class Open(Mixed):
    def has_room(self) -> bool:
        return self.context.i < 10


r = Retry()
r.start()
r.failed(error="x", code=1)
attempts: int = r.context.attempts
"""


def test_mypy_strict_accepts_the_modules_and_a_subclass(tmp_path: Path) -> None:
    (tmp_path / "retry_mod.py").write_text(
        codegen.generate_machine(checked(RETRY), "m.yaml"), encoding="utf-8"
    )
    mixed = codegen.generate_machine(checked(MIXED), "m.yaml")
    (tmp_path / "mixed_mod.py").write_text(mixed, encoding="utf-8")
    (tmp_path / "user.py").write_text(
        USER.replace("from {module} import Mixed, Retry", "from mixed_mod import Mixed\n"
                     "from retry_mod import Retry"),
        encoding="utf-8",
    )  # fmt: skip
    env = {**os.environ, "MYPYPATH": str(PROJECT_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--python-version",
         "3.12", "retry_mod.py", "mixed_mod.py", "user.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


START = """\
initial_state: a
metadata: {machine_name: start}
context:
  n: {type: integer, default: 0}
  start_big: {type: boolean, default: false}
transitions:
  - {from: a, to: big, when: "start_big"}
  - {from: a, to: b, event: go}
  - {from: b, to: a, event: back}
actions:
  a:
    - {type: assign, location: n, expr: "n + 1"}
"""


def test_starting_assigns_and_tests_a_guard(tmp_path: Path) -> None:
    """An on-entry assign of the initial state, and an eventless guarded transition out
    of it: where starting ends depends on the context."""
    module = compiled(START, tmp_path)
    m = module.Start()
    assert (m.state, m.context.n) == ("a", 1)
    m.go()
    m.back()
    assert (m.state, m.context.n) == ("a", 2)  # a plain entry that assigns runs it too
    big = module.Start(context=module.Context(start_big=True))
    assert (big.state, big.context.n, big.is_final) == ("big", 1, True)


# ---- differential: random guarded charts against the core's run of the table --------------

FIELDS = ("f0", "f1")
PLACES = ("a", "b", "p", "p1", "p2")


@st.composite
def guarded_charts(draw: st.DrawFn) -> str:
    lines = [
        "initial_state: a",
        "context: {f0: {type: boolean, default: false}, f1: {type: boolean, default: true}}",
        "events: {e1: null, e2: null}",
        "states:",
        "  - {name: a}",
        "  - {name: b}",
        "  - {name: p, states: [p1, p2], initial: p1}",
        "transitions:",
    ]
    for _ in range(draw(st.integers(1, 7))):
        source, target = draw(st.sampled_from(PLACES)), draw(st.sampled_from(PLACES))
        item = f"  - {{from: {source}, to: {target}"
        event = draw(st.sampled_from(["e1", "e2", None]))
        if event is not None:
            item += f", event: {event}"
        field = draw(st.sampled_from(FIELDS))
        when = draw(st.sampled_from([None, field, f"not {field}", f"In('p2') and {field}"]))
        if when is not None or event is None:
            item += f', when: "{when or field}"'
        item += "}"
        lines.append(item)
        if draw(st.booleans()):
            location, other = draw(st.permutations(FIELDS))
            lines[-1] = lines[-1][:-1] + (
                f", actions: [{{type: assign, location: {location}, expr: 'not {other}'}}]}}"
            )
    return "\n".join(lines) + "\n"


class _Walk:
    """The data of a random chart as the core's run of its table sees it: the same
    conditions, evaluated by hand (``fK``, ``not fK``, ``In('p2') and fK``)."""

    def __init__(self, machine: Machine, chart: Any) -> None:
        self.data = {"f0": False, "f1": True}
        self.machine = machine
        self.chart = chart
        self.by_index = {t.index: t for t in machine.transitions}

    def guard(self, cond: Any) -> bool:
        active: frozenset[str] | None = None
        if isinstance(cond, Specialized):
            cond, active = cond.cond, cond.active
        text = self.by_index[cond].when
        assert text is not None
        if text.startswith("In('p2') and "):
            assert active is not None
            return "p2" in active and self.data[text.split()[-1]]
        if text.startswith("not "):
            return not self.data[text[4:]]
        return self.data[text]

    def execute(self, action: Any) -> None:
        kind, owner, position = action
        assert kind == "transition"  # the random charts assign on transitions only
        spec = self.chart.transitions[owner].actions[position]
        self.data[spec["location"]] = not self.data[spec["expr"].split()[-1]]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(guarded_charts(), st.lists(st.sampled_from(["e1", "e2"]), max_size=8))
def test_random_guarded_charts_walk_as_the_core_runs_them(text: str, events: list[str]) -> None:
    result = check_texts([("m.yaml", text)])
    assume(not result.errors)
    (machine,) = result.machines
    chart, table = machine_table(machine)
    with tempfile.TemporaryDirectory() as directory:
        module = compiled(text, Path(directory))
    walk = _Walk(machine, chart)
    try:
        situation, _ = table.start(walk.guard, walk.execute)
    except UnsettledMacrostep:
        with pytest.raises(RuntimeError):
            module.M()
        return
    m = module.M()
    assert m.situation == situation and dataclass_values(m.context) == walk.data
    for event in events:
        try:
            outcome = table.fire(situation, event, walk.guard, walk.execute)
        except UnsettledMacrostep:
            with pytest.raises(RuntimeError):
                m.fire(event)
            return
        if outcome is None:
            with pytest.raises(IllegalTransition):
                m.fire(event)
        else:
            situation = outcome[0]
            m.fire(event)
        assert m.situation == situation and dataclass_values(m.context) == walk.data


def dataclass_values(context: Any) -> dict[str, Any]:
    return {name: getattr(context, name) for name in FIELDS}


# ---- one-condition programs, decided in fire() and the per-event methods ------------------

#: ``step`` has ten one-condition programs with ten distinct conditions (more than
#: ``INLINE_CONDS``: the last two are called), ``ping`` one reading the payload (called),
#: ``named`` a named guard with an else and an ``unless:`` without one; ``back`` and ``hop``
#: are plain (``hop`` reaches every ``s<i>`` in a few events).
DECIDED = (
    """\
initial_state: s0
metadata: {machine_name: decided}
context:
  n: {type: integer, default: 0}
events:
  step: null
  ping:
    payload: {type: object, properties: {code: {type: integer}}, required: [code]}
  named: null
  back: null
  hop: null
states: [s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, other, sink]
transitions:
"""
    + "".join(
        f'  - {{from: s{i}, to: s{(i + 1) % 10}, event: step, when: "n > {i}"}}\n'
        f"  - {{from: s{i}, to: s{(i + 3) % 10}, event: hop}}\n"
        for i in range(10)
    )
    + """\
  - {from: s0, to: other, event: ping, when: "payload.code > n"}
  - {from: s0, to: other, event: named, guard: ok}
  - {from: s0, to: sink, event: named}
  - {from: other, to: s0, event: named, unless: shut}
  - {from: sink, to: s0, event: back}
  - {from: other, to: sink, event: back}
"""
)


@pytest.fixture(scope="module")
def decided(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return compiled(DECIDED, tmp_path_factory.mktemp("decided"))


def decided_class(module: ModuleType) -> Any:
    class Decided(module.Decided):  # type: ignore[misc, name-defined]
        """``ok`` and ``shut`` read plain attributes; ``ok`` raises when ``fails``."""

        def __init__(self) -> None:
            super().__init__()
            self.allow, self.closed, self.fails = True, False, False
            self.log: list[str] = []
            self.add_listener(lambda s, e, t: self.log.append(f"{s}-{e}->{t}"))

        def ok(self) -> bool:
            if self.fails:
                raise LookupError("ok failed")
            return self.allow

        def shut(self) -> bool:
            return self.closed

        def on_enter_other(self) -> None:
            self.log.append("enter other")

    return Decided


def test_one_condition_programs_are_planned_with_slots() -> None:
    """Each distinct condition code gets a slot; the payload's condition none; fire() writes
    the first ``INLINE_CONDS`` slots and calls the rest, an event's method its own."""
    from smc.compiler.chartplan import INLINE_CONDS
    from smc.compiler.plan import module_plan

    plan = module_plan(checked(DECIDED), "m.yaml", 88).chart
    assert plan is not None and plan.programs is not None
    programs = plan.programs
    by_event: dict[str, list[Any]] = {}
    for test in programs.tests:
        by_event.setdefault(test.event, []).append(test)
    assert len(by_event["STEP"]) == 10 and len(by_event["NAMED"]) == 2
    assert [t.slot for t in by_event["PING"]] == [-1]  # reads the payload: called
    step_slots = [t.slot for t in by_event["STEP"]]
    assert len(set(step_slots)) == 10 and min(step_slots) >= 0
    assert len(programs.fire_inline.slots) == INLINE_CONDS and programs.fire_inline.fallback
    step = programs.inline_of("STEP")
    assert step is not None and len(step.slots) == INLINE_CONDS and step.fallback
    named = programs.inline_of("NAMED")
    assert named is not None and len(named.slots) == 2 and not named.fallback
    assert programs.inline_of("BACK") is None  # plain: its method has no test to look up


def test_a_single_condition_is_written_in_fire_and_the_method(tmp_path: Path) -> None:
    """One condition code for every guarded transition: written out in ``fire()`` and in each
    method, with no chain and no call of ``_cond_<n>``."""
    text = (
        "initial_state: a\ncontext: {n: {type: integer, default: 0}}\n"
        "transitions:\n"
        '  - {from: a, to: b, event: go, when: "n >= 0"}\n'
        '  - {from: b, to: a, event: go, when: "n >= 0"}\n'
    )
    source = codegen.generate_machine(checked(text), "m.yaml")
    fire = source[source.index("    def fire(") : source.index("    def _fire_program(")]
    method = source[source.index("    def go(self)") :].split("\n\n")[0]
    for body in (fire, method):
        assert "if ctx.n >= 0:" in body
        assert "_CONDS[" not in body and "_SLOT[" not in body
    module = compiled(text, tmp_path)
    m = module.M()
    assert (m.fire("go"), m.go(), m.fire(module.Event.GO)) == ("b", "a", "b")
    m.context.n = -1
    with pytest.raises(IllegalTransition):
        m.go()
    assert m.state == "b"


Call = tuple[str, int | None, bool, bool, bool]


def run_decided(machine: Any, how: str, call: Call) -> tuple[Any, ...]:
    """Fire one event of ``call`` the way ``how`` says; what it did: the situation after, the
    exception it raised (type and text) and the log of listeners and hooks."""
    event, code, allow, closed, fails = call
    machine.allow, machine.closed, machine.fails = allow, closed, fails
    machine.log.clear()
    payload = None if code is None else {"code": code}
    try:
        if how == "fire":
            machine.fire(event, payload)
        elif how == "method":
            method = getattr(machine, event)
            method(**payload) if payload is not None else method()
        else:  # the reference: fire_steps runs every program through _run
            machine.fire_steps(event, payload)
    except (IllegalTransition, LookupError) as error:
        return machine.situation, type(error), str(error), tuple(machine.log)
    return machine.situation, None, None, tuple(machine.log)


calls = st.tuples(
    st.sampled_from(["step", "ping", "named", "back", "hop"]),
    st.none() | st.integers(-1, 11),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-1, 11), calls), max_size=25))
def test_decided_programs_do_what_run_does(
    decided: ModuleType, script: list[tuple[int, Call]]
) -> None:
    """fire() and the per-event methods, deciding one-condition programs themselves (written
    out, in a chain, or called), against ``fire_steps`` running every program through
    ``_run``: the same situations, the same refusals, a raising guard changing nothing, the
    same hooks and listener calls."""
    cls = decided_class(decided)
    machines = {how: cls() for how in ("fire", "method", "steps")}
    for n, call in script:
        if call[0] == "ping" and call[1] is None:
            call = (call[0], 0, *call[2:])
        if call[0] != "ping":
            call = (call[0], None, *call[2:])
        outcomes = set()
        for how, machine in machines.items():
            machine.context.n = n
            outcomes.add(run_decided(machine, how, call))
        assert len(outcomes) == 1, outcomes
        (outcome,) = outcomes
        if outcome[1] is LookupError:
            assert outcome[3] == ()  # the guard raised: nothing ran, nothing moved


def test_events_named_like_the_class_s_own_attributes_get_methods_of_their_own(
    tmp_path: Path,
) -> None:
    """An event `snapshot` made `m.snapshot()` fire it (and mypy refuse the module); an event
    `job` beside a guard on the job's data failed the import: "'job' in __slots__ conflicts
    with class variable"."""
    module = compiled(
        "initial_state: a\nstates: [a, b, c]\n"
        "jobs: {t: {data: {type: object, properties: {k: {type: integer}}}}}\n"
        "transitions:\n  - {from: a, to: b, event: snapshot}\n"
        "  - {from: b, to: c, event: job, when: 'job.k == 1'}\n",
        tmp_path,
    )
    m = module.M()
    m.snapshot_()
    assert m.state == "b"
    assert m.snapshot() == {"configuration": ["b"]}  # still the class's own
    m.job = {"k": 1}
    m.job_()
    assert m.state == "c"


def test_a_flat_machine_s_event_named_like_a_chart_only_attribute_keeps_its_name(
    tmp_path: Path,
) -> None:
    """`job`, `take_sent` are a chart class's: a flat class has neither, so `m.job()` stays."""
    module = compiled(
        "initial_state: a\nstates: [a, b, c]\n"
        "transitions:\n  - {from: a, to: b, event: job}\n  - {from: b, to: c, event: take_sent}\n",
        tmp_path,
    )
    m = module.M()
    m.job()
    m.take_sent()
    assert m.state == "c"
