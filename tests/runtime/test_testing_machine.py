"""smc.testing.MachineTest and run_path against classes generated from the examples, and
against a statechart built with ``smc build`` (tests/support/machines/player.yaml)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, run_state_machine_as_test

from smc import IllegalTransition
from smc.testing import (
    MachineTest,
    event_methods,
    run_path,
    situation_model,
    states_reached,
    transition_model,
    transitions_taken,
)
from smc.testing.machine_test import STEP_NOTE_PREFIX
from tests.support.examples import imported_build, imported_examples
from tests.support.machines import PLAYER

PACKAGE = "smc_testing_examples"
CHART_PACKAGE = "smc_testing_chart"

STEP_NOTE = re.compile(
    re.escape(STEP_NOTE_PREFIX) + r" (?P<number>\d+): (?P<call>.+) in state '.*'"
)

#: Deterministic and quick: a fixed derandomised search, no example database.
QUICK = settings(
    max_examples=40,
    stateful_step_count=20,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
#: Enough search to find a 3-step bug and shrink it, still deterministic.
HUNT = settings(
    max_examples=300, stateful_step_count=10, derandomize=True, database=None, deadline=None
)


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The examples compiled into a package (as ``smc build`` writes them) and imported."""
    with imported_examples(tmp_path_factory.mktemp("generated"), PACKAGE) as package:
        yield package


@pytest.fixture(scope="module")
def player(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The player statechart's class, built by ``smc build`` and imported."""
    with imported_build([PLAYER], tmp_path_factory.mktemp("chart"), CHART_PACKAGE) as package:
        yield package.Player


def falsifying_steps(error: BaseException) -> list[str]:
    """The calls of the minimal failing walk, from the step notes smc gives Hypothesis
    (``"smc step N: CALL in state 'S'"``), not from Hypothesis's own wording."""
    notes = [str(n) for n in getattr(error, "__notes__", [])]
    found = [m for m in map(STEP_NOTE.fullmatch, notes) if m]
    assert [int(m["number"]) for m in found] == list(range(1, len(found) + 1)), notes
    assert found, notes
    return [m["call"] for m in found]


# ---- correct classes pass ---------------------------------------------------------------


def test_every_example_class_passes(examples: ModuleType) -> None:
    for name in examples.__all__:
        run_state_machine_as_test(MachineTest.for_machine(getattr(examples, name)), settings=QUICK)


def test_one_rule_per_event_named_after_its_method(examples: ModuleType) -> None:
    worker = examples.SimpleWorker
    test_class = MachineTest.for_machine(worker)
    rule_names = sorted(r.function.__name__ for r in test_class.setup_state().rules)
    assert rule_names == [
        "restart",
        "send_error",
        "send_initialized",
        "send_job_completed",
        "send_job_done",
        "send_new_job",
        "send_no_jobs",
        "send_stop",
        "try_any_event",
        "try_fire",
    ]
    assert test_class.__name__ == "SimpleWorkerMachineTest"
    assert [i.function.__name__ for i in test_class.setup_state().invariants] == ["matches_model"]


def test_model_and_methods_come_from_the_class(examples: ModuleType) -> None:
    worker = examples.SimpleWorker
    assert transition_model(worker)[("waiting", "new_job")] == "processing"
    assert len(transition_model(worker)) == len(worker.TRANSITIONS)
    assert event_methods(worker)["job_done"] == "job_done"


def test_the_test_case_is_collected_by_pytest(examples: ModuleType, tmp_path: Path) -> None:
    """``for_machine(...).TestCase`` is a unittest case that pytest runs (in a subprocess)."""
    import subprocess

    test_file = tmp_path / "test_door.py"
    test_file.write_text(
        "from smc.testing import MachineTest\n"
        f"from {PACKAGE} import TaskController\n"
        "TestController = MachineTest.for_machine(TaskController).TestCase\n"
    )
    generated_root = Path(sys.modules[PACKAGE].__file__ or "").parents[1]
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(generated_root), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "1 passed" in completed.stdout


def test_a_base_without_machine_is_refused() -> None:
    class NoMachine(MachineTest):
        pass

    with pytest.raises(TypeError, match="has no machine"):
        NoMachine()


# ---- broken implementations are caught and shrunk ---------------------------------------


def test_a_changed_transition_is_shrunk_to_the_shortest_event_sequence(
    examples: ModuleType,
) -> None:
    worker = examples.SimpleWorker

    class BrokenWorker(worker):  # type: ignore[misc, name-defined]
        """``error`` in processing stops the worker instead of going back to waiting."""

        __slots__ = ()

        def error(self) -> Any:
            if self.state == worker.State.PROCESSING:
                self._state = worker.State.STOPPED
                return self._state
            return super().error()

    class BrokenWorkerTest(MachineTest, machine=BrokenWorker):
        pass

    with pytest.raises(AssertionError, match="the model goes to 'waiting'") as caught:
        run_state_machine_as_test(BrokenWorkerTest, settings=HUNT)
    # initializing -initialized-> waiting -new_job-> processing -error-> (wrongly) stopped
    assert falsifying_steps(caught.value) == ["initialized()", "new_job()", "error()"]


def test_a_rejected_event_that_is_accepted_is_caught(examples: ModuleType) -> None:
    worker = examples.SimpleWorker

    class LeakyWorker(worker):  # type: ignore[misc, name-defined]
        """``fire`` lets ``new_job`` through in the final state."""

        __slots__ = ()

        def fire(self, event: Any) -> Any:
            if self.state == worker.State.STOPPED and event == "new_job":
                self._state = worker.State.PROCESSING
                return self._state
            return super().fire(event)

    with pytest.raises(AssertionError, match="not allowed by the model") as caught:
        run_state_machine_as_test(MachineTest.for_machine(LeakyWorker), settings=HUNT)
    steps = falsifying_steps(caught.value)
    # stopped is reached by stop (from any state) or by error while initializing
    into_stopped = ("stop()", "fire('stop')", "error()", "fire('error')")
    assert steps[-1] == "fire('new_job')" and steps[-2] in into_stopped
    assert len(steps) <= 4  # shrunk from walks of up to 10 steps


def test_a_rejection_that_changes_the_state_is_caught(examples: ModuleType) -> None:
    controller = examples.TaskController

    class Sloppy(controller):  # type: ignore[misc, name-defined]
        """Moves to stopped before complaining about ``recorded`` in monitoring."""

        __slots__ = ()

        def recorded(self) -> Any:
            if self.state == controller.State.MONITORING:
                self._state = controller.State.STOPPED
                raise IllegalTransition("task_controller", "monitoring", "recorded")
            return super().recorded()

    with pytest.raises(AssertionError, match="the state changed to 'stopped'") as caught:
        run_state_machine_as_test(MachineTest.for_machine(Sloppy), settings=HUNT)
    steps = falsifying_steps(caught.value)
    assert steps[-1] == "recorded()"
    assert len(steps) <= 4  # shrunk from walks of up to 10 steps


def test_allowed_events_are_checked_against_the_model(examples: ModuleType) -> None:
    worker = examples.SimpleWorker

    class Forgetful(worker):  # type: ignore[misc, name-defined]
        __slots__ = ()

        def allowed_events(self) -> Any:
            events = super().allowed_events()
            return tuple(e for e in events if e != "stop") if self.state == "waiting" else events

    with pytest.raises(AssertionError, match=r"allowed_events\(\) in 'waiting'") as caught:
        run_state_machine_as_test(MachineTest.for_machine(Forgetful), settings=HUNT)
    assert falsifying_steps(caught.value) == ["initialized()"]


# ---- execution contract: transition(new_state) ------------------------------------------


def test_the_execution_contract_passes_and_has_a_transition_rule(examples: ModuleType) -> None:
    execution = examples.TaskExecution
    test_class = MachineTest.for_machine(execution)
    names = {r.function.__name__ for r in test_class.setup_state().rules}
    assert {"send_to_running", "send_to_pending", "try_transition"} <= names
    run_state_machine_as_test(test_class, settings=QUICK)


@pytest.mark.slow
def test_a_broken_retry_edge_is_caught_through_transition(examples: ModuleType) -> None:
    execution = examples.TaskExecution

    class NoRetry(execution):  # type: ignore[misc, name-defined]
        """transition(PENDING) from FAILED cancels the task instead of retrying it."""

        __slots__ = ()

        def transition(self, new_state: Any) -> Any:
            if self.state == "FAILED" and new_state == "PENDING":
                self._state = execution.State.CANCELLED
                return self._state
            return super().transition(new_state)

    with pytest.raises(AssertionError, match="went to 'CANCELLED'") as caught:
        run_state_machine_as_test(MachineTest.for_machine(NoRetry), settings=HUNT)
    steps = falsifying_steps(caught.value)
    assert len(steps) == 3
    assert steps[0] in ("to_running()", "transition('RUNNING')")
    assert steps[1] in ("to_failed()", "transition('FAILED')")
    assert steps[2] == "transition('PENDING')"


# ---- user extensions: invariants, payloads, fake actions, hooks -------------------------


def test_user_invariants_payloads_and_fake_actions(examples: ModuleType) -> None:
    worker = examples.SimpleWorker
    seen: dict[str, Any] = {"claims": 0, "payloads": [], "invariant_runs": 0}

    def fake_queue(action: Any, payload: Any) -> None:
        assert action["type"] == "check_database_queue"
        assert action["job_type"] == "task"
        seen["claims"] += 1

    class WorkerTest(MachineTest, machine=worker):
        payloads: ClassVar = {"new_job": st.fixed_dictionaries({"id": st.integers(1, 9)})}
        actions: ClassVar = {"check_database_queue": fake_queue}

        def __init__(self) -> None:
            super().__init__()
            self.jobs_started = 0
            self.jobs_finished = 0

        def on_transition(self, source: str, event: str, target: str, payload: Any) -> None:
            super().on_transition(source, event, target, payload)
            if event == "new_job":
                assert isinstance(payload["id"], int)
                seen["payloads"].append(payload)
                self.jobs_started += 1
            if event == "job_completed":
                self.jobs_finished += 1

        @invariant()
        def never_more_finished_than_started(self) -> None:
            seen["invariant_runs"] += 1
            assert self.jobs_finished <= self.jobs_started

    names = {r.function.__name__ for r in WorkerTest.setup_state().rules}
    assert "send_new_job" in names
    new_job_rule = next(
        r for r in WorkerTest.setup_state().rules if r.function.__name__ == "send_new_job"
    )
    assert list(new_job_rule.arguments) == ["payload"]
    # The plumbing, step by step: the payload reaches the hook, entering waiting claims.
    walk = WorkerTest()
    walk.send_initialized()
    walk.send_new_job(payload={"id": 3})
    assert seen == {"claims": 1, "payloads": [{"id": 3}], "invariant_runs": 0}
    # Then Hypothesis: payloads are drawn, the user invariant runs after every step.
    run_state_machine_as_test(WorkerTest, settings=settings(QUICK, max_examples=100))
    assert seen["claims"] > 1
    assert len(seen["payloads"]) > 1
    assert all(1 <= p["id"] <= 9 for p in seen["payloads"])
    assert seen["invariant_runs"] > 0


def test_a_user_invariant_failure_is_reported_with_its_name(examples: ModuleType) -> None:
    worker = examples.SimpleWorker

    class NoStopping(MachineTest, machine=worker):
        @invariant()
        def never_stopped(self) -> None:
            assert self.instance.state != "stopped", "stopped"

    with pytest.raises(AssertionError, match="stopped") as caught:
        run_state_machine_as_test(NoStopping, settings=HUNT)
    # stopped is reached by stop (from any state) or by error while initializing
    assert falsifying_steps(caught.value)[-1] in (
        "stop()",
        "fire('stop')",
        "error()",
        "fire('error')",
    )


def test_entry_actions_are_logged_in_order(examples: ModuleType) -> None:
    worker = examples.SimpleWorker
    test = MachineTest.for_machine(worker)()
    test.send_initialized()
    test.send_new_job()
    assert test.action_log == [
        ("waiting", "check_database_queue"),
        ("processing", "log"),
        ("processing", "bash"),
    ]
    test.matches_model()


def test_a_subclass_rule_of_the_same_name_replaces_the_generated_one(
    examples: ModuleType,
) -> None:
    worker = examples.SimpleWorker

    class Custom(MachineTest, machine=worker):
        def send_stop(self) -> None:  # not a rule: stopping is left out of the walk
            raise AssertionError("never called")

    names = {r.function.__name__ for r in Custom.setup_state().rules}
    assert "send_stop" not in names and "send_new_job" in names
    run_state_machine_as_test(Custom, settings=QUICK)


def test_classes_without_event_methods_fall_back_to_derived_names(examples: ModuleType) -> None:
    worker = examples.SimpleWorker

    class Older(worker):  # type: ignore[misc, name-defined]
        __slots__ = ()
        EVENT_METHODS = None

    assert event_methods(Older)["job_completed"] == "job_completed"
    run_state_machine_as_test(MachineTest.for_machine(Older), settings=QUICK)


# ---- run_path ---------------------------------------------------------------------------


def test_run_path_checks_every_step(examples: ModuleType) -> None:
    worker = examples.SimpleWorker
    machine = run_path(worker, [("initialized", "waiting"), ("new_job", "processing")])
    assert machine.state == "processing"
    with pytest.raises(AssertionError, match="step 2: 'new_job' in 'waiting' went to"):
        run_path(worker, [("initialized", "waiting"), ("new_job", "finishing")])
    with pytest.raises(IllegalTransition):
        run_path(worker, [("job_done", "finishing")])


def test_run_path_replays_contract_machines_through_transition(examples: ModuleType) -> None:
    execution = examples.TaskExecution

    class NoRetry(execution):  # type: ignore[misc, name-defined]
        __slots__ = ()

        def transition(self, new_state: Any) -> Any:
            if self.state == "FAILED":
                raise IllegalTransition("task_execution", "FAILED", "transition")
            return super().transition(new_state)

    steps = [("to_RUNNING", "RUNNING"), ("to_FAILED", "FAILED"), ("to_PENDING", "PENDING")]
    run_path(execution, steps)
    with pytest.raises(IllegalTransition):
        run_path(NoRetry, steps)


# ---- statecharts: the model is DISPATCH, each step checked against its configuration -------


def test_a_statechart_class_passes_and_its_walks_go_deep(player: Any) -> None:
    seen: set[int] = set()

    class PlayerTest(MachineTest, machine=player):
        @invariant()
        def remember_the_situation(self) -> None:
            seen.add(self.expected_situation)

    run_state_machine_as_test(PlayerTest, settings=settings(QUICK, max_examples=100))
    # nested, parallel and (deep) history situations, not only the first few
    assert len(seen) >= 30
    assert len(player.CONFIGURATIONS) > len(seen) // 2


def test_the_statechart_model_is_its_dispatch_table(player: Any) -> None:
    model = situation_model(player)
    assert len(model) == sum(len(row) for row in player.DISPATCH)
    powered = model[(0, "power")]
    assert player.CONFIGURATIONS[powered] == {"powered", "stopped"}
    assert (0, "play") not in model
    test = MachineTest.for_machine(player)()
    assert test.chart is player and test.situations == model
    rules = {r.function.__name__ for r in type(test).setup_state().rules}
    assert {"send_power", "send_dim_done", "try_fire", "restart"} <= rules
    # a walk by hand: deep history restores a parallel configuration, exit actions are logged
    test.send_power()
    test.send_jump()
    test.send_power()
    test.send_power()
    assert test.instance.configuration == {
        "powered",
        "playing",
        "video",
        "fast",
        "audio",
        "muted",
    }
    assert test.expected_state == "playing" == test.instance.state
    assert ("playing", "log") in test.exit_action_log
    assert ("powered", "log") in test.exit_action_log
    test.try_fire("wait")  # rejected: nothing changes
    test.matches_model()


def test_step_actions_skip_raise_and_follow_the_step_order(player: Any) -> None:
    calls: list[tuple[str, Any]] = []

    def fake_log(action: Any, payload: Any) -> None:
        calls.append((action["message"], payload))

    class PlayerTest(MachineTest, machine=player):
        actions: ClassVar = {"log": fake_log}

    test = PlayerTest()
    for event in ("power", "play", "pause", "wait"):
        test.attempt_event(event, getattr(test.instance, event))
    # wait enters dimmed, whose raise is resolved into DISPATCH: dim_done leads to stopped
    assert test.instance.configuration == {"powered", "stopped"}
    assert [message for message, _ in calls] == ["power on", "stop playing", "dimmed"]
    assert ("dimmed", "raise") not in test.action_log
    assert test.action_log[-1] == ("dimmed", "log")


def test_hooks_of_a_user_subclass_run_and_the_walks_still_pass(player: Any) -> None:
    """A subclass with on_enter_/on_exit_/on_<event> hooks: the walk passes, and each step's
    hooks are the ones its STEPS entry names, in order."""
    hooked = [
        ("entry", "powered"),
        ("exit", "powered"),
        ("entry", "muted"),
        ("exit", "muted"),
        ("entry", "rewinding"),
        ("exit", "rewinding"),
        ("on", "power"),
        ("on", "mute"),
    ]
    methods: dict[str, Any] = {"__slots__": ("calls",)}
    for kind, name in hooked:
        prefix = {"entry": "on_enter_", "exit": "on_exit_", "on": "on_"}[kind]

        def hook(self: Any, move: tuple[str, str] = (kind, name)) -> None:
            self.calls.append(move)

        methods[prefix + name] = hook

    def init(self: Any, state: Any = None) -> None:
        self.calls = []
        player.__init__(self, state)

    methods["__init__"] = init
    hooked_player = type("HookedPlayer", (player,), methods)
    checked: list[int] = []

    class HookedTest(MachineTest, machine=hooked_player):
        def on_transition(self, source: str, event: str, target: str, payload: Any) -> None:
            super().on_transition(source, event, target, payload)
            expected = [(k, str(n)) for k, n in self.last_step if (k, str(n)) in hooked]
            assert self.instance.calls == expected, (self.instance.calls, self.last_step)
            checked.append(len(expected))
            self.instance.calls.clear()

    run_state_machine_as_test(HookedTest, settings=settings(QUICK, max_examples=60))
    assert sum(checked) > 20  # hooks did run


def test_a_hook_that_fires_an_event_is_caught_by_the_configuration(player: Any) -> None:
    """Entering muted fires mute again from its hook: the state view (playing) stays right,
    only the configuration shows the bug."""

    class Echo(player):  # type: ignore[misc, name-defined]
        __slots__ = ()

        def on_enter_muted(self) -> None:
            self.fire("mute")

    with pytest.raises(AssertionError, match=r"the configuration is \[.*'loud'") as caught:
        run_state_machine_as_test(MachineTest.for_machine(Echo), settings=HUNT)
    steps = falsifying_steps(caught.value)
    # standby -power-> stopped -jump-> fast and muted (or -play-> ... -mute-> muted)
    assert steps[0] in ("power()", "fire('power')")
    assert steps[-1] in ("jump()", "fire('jump')", "mute()", "fire('mute')")
    assert len(steps) <= 3


def test_a_rejection_that_changes_the_configuration_is_caught(player: Any) -> None:
    """A rejected ``wait`` that quietly mutes first: the state view is still playing."""

    class Sloppy(player):  # type: ignore[misc, name-defined]
        __slots__ = ()

        def wait(self) -> Any:
            if self.in_state("loud") and not self.can_fire("wait"):
                self._situation = self.DISPATCH[self._situation]["mute"][0]
            return super().wait()

    with pytest.raises(AssertionError, match="'wait' was rejected in state 'playing', but") as c:
        run_state_machine_as_test(MachineTest.for_machine(Sloppy), settings=HUNT)
    steps = falsifying_steps(c.value)
    assert steps[-1] == "wait()"
    assert len(steps) <= 4


def test_run_path_checks_a_statechart_step_by_step(player: Any) -> None:
    machine = run_path(player, [("power", "stopped"), ("jump", "muted"), ("ff", "normal")])
    assert machine.configuration == {"powered", "playing", "video", "normal", "audio", "muted"}
    with pytest.raises(AssertionError, match="step 2: 'play' in 'stopped': 'muted' is not active"):
        run_path(player, [("power", "stopped"), ("play", "muted")])
    with pytest.raises(IllegalTransition):
        run_path(player, [("play", "playing")])

    class Skips(player):  # type: ignore[misc, name-defined]
        """``play`` lands in the right state view with the wrong configuration."""

        __slots__ = ()

        def play(self) -> Any:
            if self.in_state("stopped"):
                self._situation = self.DISPATCH[self._situation]["jump"][0]
                self._state = self.STATE_VIEWS[self._situation]
                return self._state
            return super().play()

    with pytest.raises(AssertionError, match=r"step 2: 'play' in 'stopped': the configuration"):
        run_path(Skips, [("power", "stopped"), ("play", "playing")])


def test_what_chart_paths_cover(player: Any) -> None:
    paths = [[("power", "stopped"), ("jump", "playing")], [("smash", "broken")]]
    assert transitions_taken(player, paths) == {
        ("standby", "power"),
        ("stopped", "jump"),
        ("standby", "smash"),
    }
    assert states_reached(player, paths) == {
        "standby",
        "powered",
        "stopped",
        "playing",
        "video",
        "fast",
        "audio",
        "muted",
        "broken",
    }
