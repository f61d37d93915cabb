"""``MachineTest``: a Hypothesis rule-based state machine derived from a generated class.

The generated class carries its own model as data (``TRANSITIONS``), so the test needs
nothing else: the model is a dict ``(state, event) -> target`` built from that table, and the
system under test is an instance of the class. For a statechart (a class with ``DISPATCH``)
the model is its dispatch table of situations, ``(situation, event) -> next situation``, and
each step is checked against the situation's configuration, state view and finality.
Hypothesis walks random event sequences,
checks the instance against the model after every step and, on failure, shrinks the walk to
a shortest reproducer; each step of it is also listed as smc's own note
(``smc step 2: new_job() in state 'waiting'``, see ``MachineTest.record_step``).

This module runs in users' test suites with only smc and the generated package installed:
it must never import ``smc.compiler``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from smc import IllegalTransition
from smc.machine import ChartMachine, GeneratedMachine, event_enum, is_chart, state_enum
from smc.testing.model import event_methods, situation_model, transition_model

#: A fake for one action type: ``fake(action, payload)``, called when a state is entered,
#: with the action as the generated ``STATE_ACTIONS`` holds it and the event's payload.
FakeAction = Callable[[Mapping[str, Any], Any], object]

#: How each step's note starts in a failure report: ``"smc step 3: error() in state
#: 'processing'"`` (see ``MachineTest.record_step``).
STEP_NOTE_PREFIX = "smc step"


def _rule_names(machine: type[GeneratedMachine]) -> dict[str, str]:
    """Event name -> rule name (``send_<method>``), unique per class."""
    methods = event_methods(machine)
    names: dict[str, str] = {}
    taken: set[str] = set()
    for event in (str(e) for e in event_enum(machine)):
        method = methods[event]
        name = "send_" + method.rstrip("_")
        if name in taken:  # a keyword or reserved name had a "_" added; keep it then
            name = "send_" + method
        taken.add(name)
        names[event] = name
    return names


class MachineTest(RuleBasedStateMachine):
    """Random walks over a generated machine, checked against its transition table.

    Use it as ``class DoorMachine(MachineTest, machine=Door): ...`` (then
    ``TestDoor = DoorMachine.TestCase`` for pytest) or ``MachineTest.for_machine(Door)``.

    Rules: one ``send_<event>`` per event, enabled when the model accepts the event in the
    current state, calling the event's method; ``try_any_event(event)`` calls any event's
    method and ``try_fire(event)`` calls ``fire(event)``, so rejections are tested too; for
    execution-contract machines ``try_transition(new_state)`` calls ``transition``; in a final
    state ``restart()`` starts again with a new instance.

    Built-in invariant ``matches_model``, checked after every step: the state is a member of
    ``State``; it equals the model's prediction; ``allowed_events()``, ``can_fire`` and
    ``is_final`` agree with the model; a final state has no transition to another state.
    A rejected event must raise ``IllegalTransition`` and leave the state unchanged.
    For a statechart the model's state is a situation: the state is its state view, and
    ``configuration`` and ``in_state`` must show its active states (``CONFIGURATIONS``); a
    rejected event must leave the configuration unchanged too.

    Customise in a subclass: ``payloads`` (event name -> strategy, passed to the hooks),
    ``actions`` (action type -> fake, called on entering a state and, in a statechart, on
    leaving one, in the order of the step's ``STEPS`` entry), ``on_transition`` and
    ``create_machine``; add ``@invariant()`` and ``@rule()`` methods as usual. A method the
    subclass defines itself under a rule's name replaces the generated rule.
    """

    #: The generated class under test (set by ``machine=``).
    machine: ClassVar[type[GeneratedMachine] | None] = None
    #: Event name -> strategy for the payload that comes with the event.
    payloads: ClassVar[Mapping[str, st.SearchStrategy[Any]]] = {}
    #: Action type -> fake, called for each of the entered state's ``STATE_ACTIONS``.
    actions: ClassVar[Mapping[str, FakeAction]] = {}

    # ---- class construction ----------------------------------------------------------

    def __init_subclass__(
        cls, machine: type[GeneratedMachine] | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if machine is not None:
            cls.machine = machine
        if cls.machine is not None:
            cls._install_rules(cls.machine)

    @classmethod
    def for_machine(
        cls,
        machine: type[GeneratedMachine],
        *,
        payloads: Mapping[str, st.SearchStrategy[Any]] | None = None,
        actions: Mapping[str, FakeAction] | None = None,
        name: str | None = None,
    ) -> type[MachineTest]:
        """A ``MachineTest`` subclass for ``machine``; pytest collects its ``.TestCase``."""
        namespace: dict[str, Any] = {"__module__": machine.__module__}
        if payloads is not None:
            namespace["payloads"] = dict(payloads)
        if actions is not None:
            namespace["actions"] = dict(actions)
        class_name = name or f"{machine.__name__}MachineTest"
        created: type[MachineTest] = type(class_name, (cls,), namespace, machine=machine)
        return created

    @classmethod
    def _install_rules(cls, machine: type[GeneratedMachine]) -> None:
        methods = event_methods(machine)
        own = vars(cls)
        for event, rule_name in _rule_names(machine).items():
            if rule_name in own:
                continue
            setattr(cls, rule_name, _event_rule(rule_name, event, methods[event], cls))
        event_values = st.sampled_from([str(e) for e in event_enum(machine)])
        if "try_any_event" not in own:
            cls.try_any_event = _any_event_rule(event_values, methods, cls.payloads)
        if "try_fire" not in own:
            cls.try_fire = _fire_rule(event_values, cls.payloads)
        if callable(getattr(machine, "transition", None)) and "try_transition" not in own:
            state_values = st.sampled_from([str(s) for s in state_enum(machine)])
            cls.try_transition = _transition_rule(state_values)
        if callable(getattr(machine, "transition", None)) and "take_transition" not in own:
            cls.take_transition = _allowed_transition_rule()

    # ---- per-run state ---------------------------------------------------------------

    def __init__(self) -> None:
        machine = type(self).machine
        if machine is None:
            raise TypeError(
                f"{type(self).__name__} has no machine: subclass it as "
                "class X(MachineTest, machine=GeneratedClass) or use MachineTest.for_machine"
            )
        super().__init__()
        self.machine_class: type[GeneratedMachine] = machine
        #: The statechart class under test, or None for a flat machine.
        self.chart: type[ChartMachine] | None = machine if is_chart(machine) else None
        #: A statechart's ``PROGRAM_EVENTS`` (situation -> the events its guards or
        #: assignments decide), None when it has none.
        self.program_events: tuple[frozenset[str], ...] | None = getattr(
            self.chart, "PROGRAM_EVENTS", None
        )
        #: ``(state, event) -> target`` from ``TRANSITIONS`` (for a statechart only an
        #: overview between state views: ``situations`` is its model).
        self.model: dict[tuple[str, str], str] = transition_model(machine)
        self.model_allowed: dict[str, tuple[str, ...]] = {}
        for source, event in self.model:
            self.model_allowed.setdefault(source, ())
            self.model_allowed[source] += (event,)
        #: A statechart's model: ``(situation, event) -> next situation`` (empty if flat).
        self.situations: dict[tuple[int, str], int] = (
            situation_model(self.chart) if self.chart is not None else {}
        )
        self.event_method: dict[str, str] = event_methods(machine)
        #: The system under test.
        self.instance: Any = self.create_machine()
        #: The state the model predicts; starts at ``INITIAL_STATE`` (a statechart's state
        #: view of ``expected_situation``).
        self.expected_state: str = str(machine.INITIAL_STATE)
        #: The situation a statechart's model predicts (0: after starting; flat: unused).
        self.expected_situation: int = 0
        self.final_state_names: frozenset[str] = frozenset(str(s) for s in machine.FINAL_STATES)
        #: ``(state, action type)`` for every action run on entry, in order.
        self.action_log: list[tuple[str, str]] = []
        #: A statechart's ``(state, action type)`` for every action run on exit, in order.
        self.exit_action_log: list[tuple[str, str]] = []
        #: The moves of a statechart's last accepted event (its ``STEPS`` entry).
        self.last_step: tuple[tuple[str, str], ...] = ()
        #: What each step called on the instance, in order (``"new_job()"``,
        #: ``"fire('stop')"``, ``"transition('PENDING')"``); also given to Hypothesis as a
        #: note ``"smc step N: CALL in state 'S'"``, so a failure report lists the walk.
        self.steps: list[str] = []

    def create_machine(self) -> Any:
        """The instance under test; override to pass arguments or wrap it."""
        assert self.machine_class is not None
        return self.machine_class()

    # ---- hooks ----------------------------------------------------------------------

    def on_transition(self, source: str, event: str, target: str, payload: Any) -> None:
        """Called after each accepted event; by default runs the entered state's actions
        (a statechart's: those of every state the step exits and enters, ``last_step``)."""
        if self.chart is not None:
            self.run_step_actions(self.last_step, payload)
        else:
            self.run_entry_actions(target, payload)

    def run_entry_actions(self, state: str, payload: Any) -> None:
        """Call the fake of each action ``state`` runs on entry, in order."""
        state_actions: Mapping[Any, Sequence[Mapping[str, Any]]] = getattr(
            self.machine_class, "STATE_ACTIONS", {}
        )
        self._run_actions(state, state_actions, self.action_log, payload)

    def run_exit_actions(self, state: str, payload: Any) -> None:
        """Call the fake of each action a statechart's ``state`` runs on exit, in order."""
        exit_actions: Mapping[Any, Sequence[Mapping[str, Any]]] = getattr(
            self.machine_class, "EXIT_ACTIONS", {}
        )
        self._run_actions(state, exit_actions, self.exit_action_log, payload)

    def run_step_actions(self, moves: Sequence[tuple[str, str]], payload: Any) -> None:
        """A statechart step's actions, in its ``STEPS`` order: exits, then entries."""
        for kind, state in moves:
            if kind == "exit":
                self.run_exit_actions(str(state), payload)
            elif kind == "entry":
                self.run_entry_actions(str(state), payload)

    def _run_actions(
        self,
        state: str,
        table: Mapping[Any, Sequence[Mapping[str, Any]]],
        log: list[tuple[str, str]],
        payload: Any,
    ) -> None:
        for action in table.get(state_enum(self.machine_class)(state), ()):
            action_type = str(action.get("type"))
            if self.chart is not None and action_type == "raise":
                continue  # resolved into DISPATCH when the chart was compiled
            log.append((state, action_type))
            fake = self.actions.get(action_type)
            if fake is not None:
                fake(action, payload)

    # ---- what every rule checks ------------------------------------------------------

    def record_step(self, called: str) -> None:
        """Remember ``called`` (before it runs, so the failing step is listed too) and note
        it for Hypothesis's report of the minimal failing walk."""
        self.steps.append(called)
        # Called directly, outside a Hypothesis test, there is no report to note it in.
        with contextlib.suppress(InvalidArgument):
            note(f"{STEP_NOTE_PREFIX} {len(self.steps)}: {called} in state {self.expected_state!r}")

    def _method_call(self, event: str) -> str:
        return f"{self.event_method.get(event, event)}()"

    def _accepted(
        self,
        event: str,
        call: Callable[[], Any],
        payload: Any = None,
        *,
        called: str | None = None,
    ) -> None:
        source = self.expected_state
        if self.chart is not None:
            situation = self.situations[(self.expected_situation, event)]
            target = str(self.chart.STATE_VIEWS[situation])
            step = self.chart.DISPATCH[self.expected_situation][event][2]
        else:
            target = self.model[(source, event)]
        self.record_step(called or self._method_call(event))
        returned = call()
        assert str(self.instance.state) == target, (
            f"{event!r} in state {source!r}: the model goes to {target!r}, "
            f"the machine went to {str(self.instance.state)!r}"
        )
        assert (
            str(returned) == target
        ), f"{event!r} in state {source!r} returned {returned!r}, expected {target!r}"
        self.expected_state = target
        if self.chart is not None:
            self.expected_situation = situation
            self.last_step = self.chart.STEPS[step]
            self.check_configuration(f"after {event!r} in state {source!r}")
        self.on_transition(source, event, target, payload)

    def _decided(self, event: str, payload: Any, *, called: str) -> None:
        """An event a decision program decides: the data, not the model, says where it
        leads. Fired with its payload, it must either raise ``IllegalTransition`` having
        changed nothing (no guard held) or reach a situation of the class whose state view
        it returns; the walk goes on from there. Its actions are not faked (the steps it
        took are the class's to say: its hooks ran them)."""
        assert self.chart is not None
        source = self.expected_state
        before = self.instance.situation
        self.record_step(called)
        try:
            if payload is None:
                returned = self.instance.fire(event)
            else:
                returned = self.instance.fire(event, payload)
        except IllegalTransition:
            assert self.instance.situation == before, (
                f"{event!r} in state {source!r}: no guard held, but the situation changed "
                f"from {before} to {self.instance.situation}"
            )
            return
        situation = self.instance.situation
        target = str(self.chart.STATE_VIEWS[situation])
        assert (
            str(returned) == target
        ), f"{event!r} in state {source!r} returned {returned!r}, its state view is {target!r}"
        self.expected_state = target
        self.expected_situation = situation
        self.last_step = ()
        self.check_configuration(f"after {event!r} in state {source!r}")
        self.on_transition(source, event, target, payload)

    def _rejected(self, what: str, call: Callable[[], Any], *, called: str | None = None) -> None:
        source = self.expected_state
        self.record_step(called or what)
        try:
            returned = call()
        except IllegalTransition:
            pass
        else:
            raise AssertionError(
                f"{what} in state {source!r} is not allowed by the model, but the machine "
                f"accepted it and went to {returned!r}"
            )
        assert str(self.instance.state) == source, (
            f"{what} was rejected in state {source!r} but the state changed to "
            f"{str(self.instance.state)!r}"
        )
        if self.chart is not None:
            self.check_configuration(f"{what} was rejected in state {source!r}, but")

    def draw_payload(self, event: str, data: st.DataObject) -> Any:
        """A payload for ``event`` when the model accepts it now and it has a strategy."""
        strategy = self.payloads.get(event)
        if strategy is None or not (self.model_accepts(event) or self.model_decides(event)):
            return None
        return data.draw(strategy, label=f"payload for {event!r}")

    def attempt_event(
        self,
        event: str,
        call: Callable[[], Any],
        payload: Any = None,
        *,
        called: str | None = None,
    ) -> None:
        """Expect ``call`` to move as the model says, or to be rejected if it does not
        accept ``event`` in the current state. ``called`` says what ``call`` does, for the
        step list (default: the event's method)."""
        called = called or self._method_call(event)
        if self.model_accepts(event):
            self._accepted(event, call, payload, called=called)
        elif self.model_decides(event):
            self._decided(event, payload, called=called)
        else:
            self._rejected(f"event {event!r}", call, called=called)

    # ---- restarting ------------------------------------------------------------------

    def model_accepts(self, event: str) -> bool:
        """Whether the model accepts ``event`` now (a statechart's: in its situation)."""
        if self.chart is not None:
            return (self.expected_situation, event) in self.situations
        return (self.expected_state, event) in self.model

    def model_decides(self, event: str) -> bool:
        """Whether a decision program of the class (a guard, an ``assign``) decides what
        ``event`` does now: the model cannot say where it leads (``_decided``)."""
        programs = self.program_events
        return programs is not None and event in programs[self.expected_situation]

    def model_allowed_events(self) -> tuple[str, ...]:
        """The events the model accepts now, in the order ``allowed_events()`` gives them."""
        if self.chart is not None:
            row = self.chart.DISPATCH[self.expected_situation]
            programs = self.program_events
            if programs is None:
                return tuple(str(e) for e in row)
            decided = programs[self.expected_situation]
            # A class with programs lists them in its events' order.
            return tuple(str(e) for e in self.event_method if e in row or e in decided)
        return self.model_allowed.get(self.expected_state, ())

    def in_final_state(self) -> bool:
        if self.chart is not None:
            return self.expected_situation in self.chart.FINAL_SITUATIONS
        return self.expected_state in self.final_state_names

    @precondition(in_final_state)
    @rule()
    def restart(self) -> None:
        """A new instance once a final state is reached, so the rest of the walk is not spent
        on a machine that can only reject events (a final state's rejections are tested
        first: this is one rule among many)."""
        self.record_step("restart()")
        self.instance = self.create_machine()
        self.expected_state = str(self.machine_class.INITIAL_STATE)
        self.expected_situation = 0
        self.last_step = ()

    # ---- built-in invariants ---------------------------------------------------------

    @invariant()
    def matches_model(self) -> None:
        """The built-in checks after every step (one invariant, so reproducers stay short);
        override any ``check_*`` method with a no-op to switch that check off."""
        self.check_state_is_a_state()
        self.check_state_matches_model()
        self.check_configuration()
        self.check_allowed_events()
        self.check_final_states()

    def check_state_is_a_state(self) -> None:
        state = self.instance.state
        assert isinstance(state, state_enum(self.machine_class)), f"state {state!r} is not a State"

    def check_state_matches_model(self) -> None:
        assert str(self.instance.state) == self.expected_state, (
            f"the machine is in {str(self.instance.state)!r}, "
            f"the model predicts {self.expected_state!r}"
        )

    def check_configuration(self, when: str = "") -> None:
        """A statechart's ``configuration`` is the predicted situation's, and ``in_state``
        agrees with it for every state (nothing to check for a flat machine)."""
        if self.chart is None:
            return
        expected = sorted(str(s) for s in self.chart.CONFIGURATIONS[self.expected_situation])
        actual = sorted(str(s) for s in self.instance.configuration)
        where = when or f"in state {self.expected_state!r}"
        assert actual == expected, (
            f"{where}: the configuration is {actual}, the model predicts {expected} "
            f"(situation {self.expected_situation})"
        )
        for state in state_enum(self.chart):
            active = str(state) in expected
            assert (
                bool(self.instance.in_state(state)) == active
            ), f"{where}: in_state({str(state)!r}) should be {active}"

    def check_allowed_events(self) -> None:
        """``allowed_events()`` (in priority order) and ``can_fire`` agree with the model."""
        expected = self.model_allowed_events()
        allowed = tuple(str(e) for e in self.instance.allowed_events())
        assert allowed == expected, (
            f"allowed_events() in {self.expected_state!r} is {allowed}, the model says "
            f"{expected}"
        )
        for event in self.event_method:
            accepted = self.model_accepts(event) or self.model_decides(event)
            assert (
                self.instance.can_fire(event) == accepted
            ), f"can_fire({event!r}) in {self.expected_state!r} should be {accepted}"

    def check_final_states(self) -> None:
        """``is_final`` agrees with ``FINAL_STATES`` (a statechart's ``FINAL_SITUATIONS``),
        and a final state has no way out (a final situation accepts no event)."""
        is_final = self.in_final_state()
        assert (
            bool(self.instance.is_final) == is_final
        ), f"is_final in {self.expected_state!r} should be {is_final}"
        if is_final and self.chart is not None:
            accepted = self.model_allowed_events()
            assert not accepted, f"final state {self.expected_state!r} accepts {accepted}"
        elif is_final:
            exits = {
                event: target
                for (source, event), target in self.model.items()
                if source == self.expected_state and target != source
            }
            assert not exits, f"final state {self.expected_state!r} has a way out: {exits}"


def _event_rule(
    rule_name: str,
    event: str,
    method_name: str,
    owner: type[MachineTest],
) -> Callable[..., None]:
    """``send_<event>``: enabled when the model accepts the event; calls its method."""
    payload_strategy = owner.payloads.get(event)

    if payload_strategy is None:

        def send(self: MachineTest) -> None:
            method = getattr(self.instance, method_name)
            self.attempt_event(event, method)

    else:

        def send(self: MachineTest, payload: Any) -> None:  # type: ignore[misc]
            method = getattr(self.instance, method_name)
            self.attempt_event(event, method, payload)

    # The name must be set before @rule wraps the function: Hypothesis prints reproducers
    # from the wrapped function's __name__ (otherwise they read ``state.send()``).
    send.__name__ = rule_name
    send.__qualname__ = f"{owner.__qualname__}.{rule_name}"
    send.__doc__ = f"Send {event!r} when the model accepts it in the current state."

    def accepted_now(self: MachineTest) -> bool:
        return self.model_accepts(event) or self.model_decides(event)

    wrapped: Callable[..., None]
    if payload_strategy is None:  # noqa: SIM108 (the overloads of rule() need two calls)
        wrapped = rule()(send)
    else:
        wrapped = rule(payload=payload_strategy)(send)
    result: Callable[..., None] = precondition(accepted_now)(wrapped)
    return result


def _any_event_rule(
    events: st.SearchStrategy[str],
    methods: Mapping[str, str],
    payloads: Mapping[str, st.SearchStrategy[Any]],
) -> Callable[..., None]:
    if not payloads:

        def try_any_event(self: MachineTest, event: str) -> None:
            """Call any event's method: accepted ones must move, the others must raise."""
            self.attempt_event(event, getattr(self.instance, methods[event]))

        plain: Callable[..., None] = rule(event=events)(try_any_event)
        return plain

    def try_any_event_with_payload(self: MachineTest, event: str, data: st.DataObject) -> None:
        """Call any event's method, with a payload drawn for it if it is accepted."""
        payload = self.draw_payload(event, data)
        self.attempt_event(event, getattr(self.instance, methods[event]), payload)

    try_any_event_with_payload.__name__ = "try_any_event"
    with_payload: Callable[..., None] = rule(event=events, data=st.data())(
        try_any_event_with_payload
    )
    return with_payload


def _fire_rule(
    events: st.SearchStrategy[str], payloads: Mapping[str, st.SearchStrategy[Any]]
) -> Callable[..., None]:
    if not payloads:

        def try_fire(self: MachineTest, event: str) -> None:
            """``fire(event)`` with any event, by its YAML name."""
            self.attempt_event(event, lambda: self.instance.fire(event), called=f"fire({event!r})")

        plain: Callable[..., None] = rule(event=events)(try_fire)
        return plain

    def try_fire_with_payload(self: MachineTest, event: str, data: st.DataObject) -> None:
        """``fire(event)`` with any event, with a payload drawn for it if it is accepted."""
        payload = self.draw_payload(event, data)
        self.attempt_event(
            event, lambda: self.instance.fire(event), payload, called=f"fire({event!r})"
        )

    try_fire_with_payload.__name__ = "try_fire"
    with_payload: Callable[..., None] = rule(event=events, data=st.data())(try_fire_with_payload)
    return with_payload


def _transition_rule(states: st.SearchStrategy[str]) -> Callable[..., None]:
    def try_transition(self: MachineTest, new_state: str) -> None:
        """``transition(new_state)`` (execution contract): the first event leading there."""
        source = self.expected_state
        event = next(
            (e for (s, e), target in self.model.items() if s == source and target == new_state),
            None,
        )
        call: Callable[[], Any] = lambda: self.instance.transition(new_state)  # noqa: E731
        called = f"transition({new_state!r})"
        if event is None:
            self._rejected(f"transition to {new_state!r}", call, called=called)
        else:
            self._accepted(event, call, called=called)

    result: Callable[..., None] = rule(new_state=states)(try_transition)
    return result


def _allowed_transition_rule() -> Callable[..., None]:
    """``transition(new_state)`` to a state the model allows from the current one.

    ``try_transition`` draws from every state, so a particular legal edge (FAILED -> PENDING)
    is rare among its draws; this rule makes legal ``transition()`` calls common."""

    def targets(self: MachineTest) -> list[str]:
        source = self.expected_state
        return sorted({str(target) for (s, _), target in self.model.items() if s == source})

    def take_transition(self: MachineTest, data: st.DataObject) -> None:
        """``transition(new_state)`` to an allowed target (execution contract)."""
        new_state = data.draw(st.sampled_from(targets(self)), label="new_state")
        source = self.expected_state
        event = next(e for (s, e), t in self.model.items() if s == source and str(t) == new_state)
        self._accepted(
            event, lambda: self.instance.transition(new_state), called=f"transition({new_state!r})"
        )

    guarded = precondition(lambda self: bool(targets(self)))(take_transition)
    result: Callable[..., None] = rule(data=st.data())(guarded)
    return result
