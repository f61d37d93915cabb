"""Compile-time resolution of a chart into a dispatch table, the point of smc: the hierarchy,
the entry/exit order, history, eventless transitions and raised events are all worked out
here, once, so a generated machine handles an event with one dict lookup.

Starting from the initial macrostep, every reachable stable *situation* (configuration plus
the history memory that can still matter, see ``relevant_histories``) is explored under
every external event, breadth first, events in the chart's order, so the numbering is
deterministic: situation 0 is the initial one (when starting evaluates no guard). The table
is plain data (ints, strings, tuples, dicts) ready to be written into generated code::

    next_situation, actions = table.dispatch[situation][event]   # KeyError: not accepted

``actions`` are ``(kind, owner, position)`` tuples (``ActionRef`` without its class) in SCXML
order. Raise actions are left out: their effect (the transitions they trigger) is already
resolved into the table, so nothing is left to run for them; but a raise whose event
carries data drawn when it runs (``chart.raise_carries``: a send id) is kept, and so is
each ``("take", event, carried)`` the interpreter records where a queued event is taken in
such a chart: the caller keeps the data in a first-in first-out queue, filled by those
raises and emptied by the takes, so each event gets the data of the raise that queued it.

Guards (issue 14). Data is not part of a situation: a cond is evaluated at run time. An
entry whose macrostep evaluates no cond is resolved as above, whatever the chart's other
transitions are (so a chart without conds builds the very table it always did). An entry
that evaluates one is a *decision program* instead (``Program``): every outcome of every
cond the interpreter evaluates on the way is explored, depth first, by replaying the
macrostep with a guard that answers a prefix of decided outcomes and branches at the next
one. The program is the trace of what must happen at run time, in order::

    ("act", action)                  run an action (never a raise: resolved away)
    ("test", cond, then, else)       evaluate cond; go on with the program then or else
    ("goto", situation, moves, n)    done: the next situation; the moves since the program
                                     began; n microsteps since it began (see below)
    ("resume", point, moves, n)      go on with the program of resume point ``point``
    ("reject",)                      the event is not accepted (no transition enabled:
                                     only tests precede it, so nothing ran)
    ("unsettled",)                   on this path the macrostep never settles: raise

A program is a tuple of zero or more "act" items then exactly one of the others, so the
order of assignments and tests is kept (an action before a test runs before it: the guard
may read what it assigned). Equal sub-programs are one shared object.

A guarded eventless loop (``count -> count when i < 3`` with ``assign i = i + 1``) would
unroll without end. The exploration watches the ``Checkpoint`` at each round of the
macrostep; when one comes back on the same path after a test, the path stops there with a
"resume" leaf, and that checkpoint becomes a *resume point* whose own program (in
``DispatchTable.points``) is explored from it, and may resume itself: programs form a graph.
The run time adds up the ``n`` of the "resume" and "goto" leaves it meets and raises past
``max_microsteps``, where the interpreter would. A checkpoint that comes back with no test in
between loops for ever whatever the data: "unsettled" at once. A path that needs no test to
never settle fails the build (``UnsettledMacrostep``), as without guards.

``run_program`` (and ``DispatchTable.fire``/``start``) run the table with a guard and an
executor: what a generated module does, in plain Python, for tests.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Literal, NamedTuple, TypeAlias

from .chart import ActionRef, Chart, Cond, StatechartError, raise_carries, raised_event
from .semantics import (
    DEFAULT_MAX_MICROSTEPS,
    Checkpoint,
    Interpreter,
    Macrostep,
    Move,
    Situation,
    UnsettledMacrostep,
)

#: A chart with more reachable situations than this is refused rather than compiled into a
#: table too large to emit (several parallel regions with deep history multiply quickly).
DEFAULT_MAX_SITUATIONS = 10_000

#: The paths (leaves) one decision program may have: each test doubles what follows it, so
#: a few independent guards in parallel regions multiply quickly.
DEFAULT_MAX_OUTCOMES = 64

#: An action as tables hold it: ``ActionRef`` as a plain tuple (kind, owner, position).
PlainAction = tuple[str, str | int, int | tuple[int, ...]]
#: The actions a table entry runs, as plain tuples.
TableActions = tuple[PlainAction, ...]

Act: TypeAlias = tuple[Literal["act"], PlainAction]
Test: TypeAlias = tuple[Literal["test"], Cond, "Program", "Program"]
Goto: TypeAlias = tuple[Literal["goto"], int, tuple[Move, ...], int]
Resume: TypeAlias = tuple[Literal["resume"], int, tuple[Move, ...], int]
Reject: TypeAlias = tuple[Literal["reject"]]
Unsettled: TypeAlias = tuple[Literal["unsettled"]]
Item: TypeAlias = "Act | Test | Goto | Resume | Reject | Unsettled"
#: "act" items, then one test, goto, resume, reject or unsettled (see the module docstring).
Program: TypeAlias = tuple[Item, ...]

#: Resolves a cond at build time where the configuration and the event being handled are
#: known (SCXML's ``In()`` and ``_event.name``; the last argument: whether that event came
#: from the internal queue, ``_event.type``): True or False decides it (no test is left in
#: the program), anything else is the cond to test at run time (it may be simplified).
Specialize = Callable[[Cond, frozenset[str], str | None, bool], object]


class TooManySituations(StatechartError):
    """The chart reaches more situations than the limit allows."""


class TooManyOutcomes(StatechartError):
    """One entry's decision program has more paths than the limit allows. ``where`` says
    which entry (a configuration and an event, the start, or a loop's resume point);
    ``conds`` are the conds tested on the path that went over, first tested first."""

    def __init__(self, message: str, where: str, conds: tuple[Cond, ...]) -> None:
        super().__init__(message)
        self.where = where
        self.conds = conds


@dataclass(frozen=True)
class DispatchTable:
    """Situations are numbered 0..n-1 (0 is where the machine is after starting).
    ``configurations[i]`` are the active states of situation i in document order (compound
    and parallel ancestors included, no history pseudo-states); ``histories[i]`` its history
    memory (history name, remembered states) for the ``relevant_histories``; ``final[i]``
    whether a top-level final state was reached (no event is accepted then).
    ``dispatch[i]`` maps every event situation i accepts whatever the data to (next
    situation, actions). ``moves[i][event]`` is what that entry does,
    in order (``Macrostep.moves``: states exited and entered, transitions taken), and
    ``initial_moves`` what starting does: the generated code's hooks and the runtime's
    timers follow them.

    Guarded entries (see the module docstring) are not in ``dispatch`` nor ``moves``:
    ``programs[i][event]`` is their decision program (the key sets of ``dispatch[i]`` and
    ``programs[i]`` are disjoint; an event in neither is never accepted). ``points[j]`` is
    the program of resume point j. When starting evaluates a cond, ``initial_program`` is
    its program (``initial_actions`` and ``initial_moves`` are then empty, and situation 0
    is merely the first situation the exploration reached: where a start ends depends on
    the data). ``max_microsteps`` is the bound the run time applies over resumes."""

    chart_name: str
    events: tuple[str, ...]
    initial: int
    initial_actions: TableActions
    configurations: tuple[tuple[str, ...], ...]
    histories: tuple[tuple[tuple[str, tuple[str, ...]], ...], ...]
    final: tuple[bool, ...]
    dispatch: tuple[Mapping[str, tuple[int, TableActions]], ...]
    initial_moves: tuple[Move, ...] = ()
    moves: tuple[Mapping[str, tuple[Move, ...]], ...] = ()
    programs: tuple[Mapping[str, Program], ...] = ()
    points: tuple[Program, ...] = ()
    initial_program: Program | None = None
    max_microsteps: int = DEFAULT_MAX_MICROSTEPS

    @property
    def size(self) -> int:
        return len(self.configurations)

    @property
    def guarded(self) -> bool:
        """Whether some entry (or the start) is a decision program."""
        return self.initial_program is not None or any(self.programs)

    def step(self, situation: int, event: str) -> tuple[int, TableActions] | None:
        """(next situation, actions), or None when the event is not accepted. A guarded
        entry has no such answer: ``ValueError`` (see ``programs`` and ``fire``)."""
        if self.programs and event in self.programs[situation]:
            raise ValueError(f"situation {situation} guards {event!r}: it has a program")
        return self.dispatch[situation].get(event)

    def start(
        self, guard: Callable[[Cond], bool], execute: Callable[[PlainAction], None]
    ) -> tuple[int, tuple[Move, ...]]:
        """Start as a generated machine does: (first situation, moves)."""
        if self.initial_program is None:
            for action in self.initial_actions:
                execute(action)
            return self.initial, self.initial_moves
        outcome = run_program(
            self.initial_program,
            guard,
            execute,
            points=self.points,
            max_microsteps=self.max_microsteps,
        )
        assert outcome is not None, "starting is never rejected"
        return outcome

    def fire(
        self,
        situation: int,
        event: str,
        guard: Callable[[Cond], bool],
        execute: Callable[[PlainAction], None],
    ) -> tuple[int, tuple[Move, ...]] | None:
        """Handle ``event`` as a generated machine does: (next situation, moves), or None
        when it is not accepted; ``UnsettledMacrostep`` on a path that does not settle."""
        entry = self.dispatch[situation].get(event)
        if entry is not None:
            for action in entry[1]:
                execute(action)
            return entry[0], self.moves[situation][event]
        program = self.programs[situation].get(event) if self.programs else None
        if program is None:
            return None
        return run_program(
            program, guard, execute, points=self.points, max_microsteps=self.max_microsteps
        )


def run_program(
    program: Program,
    guard: Callable[[Cond], bool],
    execute: Callable[[PlainAction], None],
    *,
    points: Sequence[Program] = (),
    max_microsteps: int = DEFAULT_MAX_MICROSTEPS,
) -> tuple[int, tuple[Move, ...]] | None:
    """Run a decision program: (next situation, moves in order), None when the event is
    rejected. ``execute`` gets each "act" in order, ``guard`` each "test"'s cond.
    ``UnsettledMacrostep`` on an "unsettled" leaf or past ``max_microsteps`` over resumes."""
    moves: tuple[Move, ...] = ()
    microsteps = 0
    items = program
    while True:
        for item in items:
            match item:
                case ("act", action):
                    execute(action)
                case ("test", cond, then, otherwise):
                    items = then if guard(cond) else otherwise
                    break
                case ("goto" | "resume", target, more, count):
                    moves += more
                    microsteps += count
                    if microsteps > max_microsteps:
                        raise UnsettledMacrostep(
                            f"the macrostep does not settle within {max_microsteps} "
                            "microsteps (a guarded eventless loop keeps running)",
                            None,
                            (),
                        )
                    if item[0] == "goto":
                        return target, moves
                    items = points[target]
                    break
                case ("reject",):
                    return None
                case _:
                    raise UnsettledMacrostep(
                        "the macrostep does not settle on this path (its eventless "
                        "transitions or raised events loop whatever the data)",
                        None,
                        (),
                    )
        else:
            raise ValueError(f"a program ends without a goto: {items!r}")


def build_table(
    chart: Chart,
    *,
    events: Sequence[str] | None = None,
    max_situations: int = DEFAULT_MAX_SITUATIONS,
    max_microsteps: int = DEFAULT_MAX_MICROSTEPS,
    max_outcomes: int = DEFAULT_MAX_OUTCOMES,
    specialize: Specialize | None = None,
    origins: bool = False,
) -> DispatchTable:
    """Explore the chart (under ``events``, default: ``chart.external_events()``).

    Raises ``TooManySituations`` past ``max_situations``, ``TooManyOutcomes`` when an
    entry's program has more than ``max_outcomes`` paths, and ``UnsettledMacrostep`` when a
    macrostep that evaluates no cond does not settle within ``max_microsteps``.
    ``specialize`` resolves conds at build time where it can (``Specialize``); ``origins``:
    whether it reads where the event being handled came from (its last argument), so that
    a resume point tells an event raised from the same one from outside (else the two are
    one point, and the table is what it was before origins were known)."""
    alphabet = tuple(chart.external_events() if events is None else events)
    relevant = relevant_histories(chart)
    explorer = _Explorer(chart, max_microsteps, max_outcomes, relevant, specialize, origins)
    numbering: dict[Situation, int] = {}
    situations: list[Situation] = []
    checkpoints: dict[Checkpoint, int] = {}
    resumed: list[Checkpoint] = []
    work: deque[tuple[str, int]] = deque()  # ("situation", i) or ("point", j), FIFO

    def number(situation: Situation) -> int:
        found = numbering.get(situation)
        if found is None:
            if len(situations) >= max_situations:
                raise TooManySituations(
                    f"{chart.describe()} reaches more than {max_situations} "
                    "situations (configurations and history memories); split it or "
                    "lower its parallelism or deep history"
                )
            found = numbering[situation] = len(situations)
            situations.append(situation)
            work.append(("situation", found))
        return found

    def point(checkpoint: Checkpoint) -> int:
        found = checkpoints.get(checkpoint)
        if found is None:
            found = checkpoints[checkpoint] = len(resumed)
            resumed.append(checkpoint)
            work.append(("point", found))
        return found

    explorer.number, explorer.point = number, point
    start = explorer.explore(explorer.start, "the start")
    initial_program: Program | None = None
    initial_actions: TableActions = ()
    initial_moves: tuple[Move, ...] = ()
    if isinstance(start, _Settled):
        number(start.situation)
        initial_actions = _plain(chart, start.step.actions)
        initial_moves = start.step.moves
    else:
        initial_program = start

    dispatch: dict[int, dict[str, tuple[int, TableActions]]] = {}
    moves: dict[int, dict[str, tuple[Move, ...]]] = {}
    programs: dict[int, dict[str, Program]] = {}
    points: dict[int, Program] = {}
    while work:
        kind, index = work.popleft()
        if kind == "point":
            checkpoint = resumed[index]
            found = explorer.explore(
                partial(explorer.resume, checkpoint),
                f"a loop in {sorted(checkpoint.configuration)}",
                guarded=True,
            )
            assert not isinstance(found, _Settled), "a resume point always has a program"
            points[index] = found
            continue
        situation = situations[index]
        row = dispatch[index] = {}
        row_moves = moves[index] = {}
        row_programs = programs[index] = {}
        if situation.finished:
            continue
        for event in alphabet:

            def send(situation: Situation = situation, event: str = event) -> Macrostep:
                explorer.restore(situation)
                return explorer.send(event)

            entry = explorer.explore(send, f"event {event!r} in {sorted(situation.configuration)}")
            if isinstance(entry, _Settled):
                if entry.step.accepted:
                    row[event] = (number(entry.situation), _plain(chart, entry.step.actions))
                    row_moves[event] = entry.step.moves
            else:
                row_programs[event] = entry

    position = {s.name: i for i, s in enumerate(chart.states)}
    count = len(situations)
    return DispatchTable(
        chart_name=chart.name,
        events=alphabet,
        initial=0,
        initial_actions=initial_actions,
        configurations=tuple(
            tuple(sorted(s.configuration, key=position.__getitem__)) for s in situations
        ),
        histories=tuple(s.history for s in situations),
        final=tuple(s.finished for s in situations),
        dispatch=tuple(dispatch[i] for i in range(count)),
        initial_moves=initial_moves,
        moves=tuple(moves[i] for i in range(count)),
        programs=tuple(programs[i] for i in range(count)),
        points=tuple(points[j] for j in range(len(resumed))),
        initial_program=initial_program,
        max_microsteps=max_microsteps,
    )


def relevant_histories(chart: Chart) -> frozenset[str]:
    """The history states whose memory can change what happens: those a transition or a
    history default or a compound's initial targets. What the others remember is never
    read, and keeping it in the situations would multiply them for nothing."""
    targets = {t for transition in chart.transitions for t in transition.targets}
    targets.update(t for state in chart.states for t in state.default)
    targets.update(t for state in chart.states for t in state.initial_targets)
    targets.update(chart.initial)
    return frozenset(t for t in targets if chart.state(t).kind == "history")


def _plain(chart: Chart, actions: Iterable[ActionRef]) -> TableActions:
    """The actions to run, as plain tuples: a raise is left out (resolved into the
    table) unless it carries data (``raise_carries``: drawing it is left to run), and a
    ``take`` is kept (the caller hands over the data of the event taken there)."""
    return tuple(
        (ref.kind, ref.owner, ref.position)
        for ref in actions
        if ref.kind == "take"
        or raised_event(action := chart.action(ref)) is None
        or raise_carries(action)
    )


# --- the exploration -----------------------------------------------------------------


class _Settled(NamedTuple):
    """An entry that evaluates no cond: what it does, as the table has always held it."""

    step: Macrostep
    situation: Situation


class _Cut(Exception):
    """Stops a run at a checkpoint seen before on the same path: resume there (the
    checkpoint) or, with no test in between, a loop whatever the data (None)."""

    def __init__(self, checkpoint: Checkpoint | None) -> None:
        super().__init__()
        self.checkpoint = checkpoint


@dataclass
class _Run:
    """One path: the actions that ran (raises included), its tests (how many actions ran
    before each, its cond) and their outcomes, the leaf it ended in, and for a settled
    path its macrostep and situation."""

    actions: list[ActionRef] = field(default_factory=list)
    tests: list[tuple[int, Cond]] = field(default_factory=list)
    outcomes: list[bool] = field(default_factory=list)
    leaf: Item = ("unsettled",)
    settled: _Settled | None = None


class _Explorer(Interpreter):
    """The interpreter, with a guard that replays decided outcomes and answers True to
    the others (each gets its False branch explored later), recording what runs."""

    def __init__(
        self,
        chart: Chart,
        max_microsteps: int,
        max_outcomes: int,
        relevant: frozenset[str],
        specialize: Specialize | None,
        origins: bool = False,
    ) -> None:
        super().__init__(chart, max_microsteps=max_microsteps, guard=self._oracle)
        self.origins = origins
        self.max_outcomes = max_outcomes
        self.relevant = relevant
        self.specialize = specialize
        self.number: Callable[[Situation], int] = lambda situation: 0
        self.point: Callable[[Checkpoint], int] = lambda checkpoint: 0
        self._prefix: Sequence[bool] = ()
        self._run = _Run()
        self._seen: dict[Checkpoint, int] = {}  # checkpoint -> tests before it, this path
        self._guarded = False  # whether the path needed a test to get where it began
        self._shared: dict[Program, Program] = {}

    def explore(
        self, begin: Callable[[], Macrostep], where: str, *, guarded: bool = False
    ) -> _Settled | Program:
        """``begin``'s macrostep: settled (no cond evaluated) or its decision program.
        ``guarded``: the macrostep continues from a resume point (tests led there)."""
        first = self._path(begin, [], guarded)
        if first.settled is not None and not first.tests and not guarded:
            return first.settled
        # a lower bound of the final count: this path, and an else path per test
        leaves = 1 + len(first.tests)

        def build(prefix: list[bool]) -> Program:
            nonlocal leaves
            run = self._path(begin, prefix, guarded)
            leaves += len(run.tests) - len(prefix)
            return assemble(run, len(prefix))

        def assemble(run: _Run, tests: int) -> Program:
            """The program of ``run`` after its first ``tests`` tests (decided above)."""
            if leaves > self.max_outcomes:
                conds = tuple(dict.fromkeys(cond for _, cond in run.tests))
                raise TooManyOutcomes(
                    f"{self.chart.describe()}: {where}, the guards {list(conds)!r} make more "
                    f"than {self.max_outcomes} outcomes (paths through tests: each guard "
                    "evaluated doubles them, and a guarded eventless loop that raises events "
                    "has no end); make fewer guards depend on one another",
                    where,
                    conds,
                )
            begin_at = run.tests[tests - 1][0] if tests else 0
            if tests == len(run.tests):
                return self._share((*self._acts(run.actions[begin_at:]), run.leaf))
            end_at, cond = run.tests[tests]
            then = assemble(run, tests + 1)
            otherwise = build([*run.outcomes[:tests], False])
            acts = self._acts(run.actions[begin_at:end_at])
            return self._share((*acts, ("test", cond, then, otherwise)))

        return assemble(first, 0)

    def _path(self, begin: Callable[[], Macrostep], prefix: list[bool], guarded: bool) -> _Run:
        """Run ``begin`` once, the first ``len(prefix)`` tests answered by ``prefix``."""
        run = self._run = _Run()
        self._prefix = prefix
        self._seen = {}
        self._guarded = guarded
        try:
            step = begin()
        except (_Cut, UnsettledMacrostep) as stop:
            run.actions = self._actions  # the actions of the path up to where it stopped
            if isinstance(stop, _Cut):
                run.leaf = self._cut(stop)
            elif not run.tests and not guarded:
                raise  # it loops whatever the data: an error, as without guards
            else:
                run.leaf = ("unsettled",)
            return run
        run.actions = self._actions
        if step.accepted:

            situation = self._settled()
            run.settled = _Settled(step, situation)
            run.leaf = ("goto", self.number(situation), step.moves, self._microsteps)
        else:
            run.leaf = ("reject",)
            run.settled = _Settled(step, self._settled())
        return run

    def _cut(self, cut: _Cut) -> Item:
        if cut.checkpoint is None:
            return ("unsettled",)
        return ("resume", self.point(cut.checkpoint), tuple(self._moves), self._microsteps)

    def _acts(self, actions: Iterable[ActionRef]) -> tuple[Act, ...]:
        return tuple(("act", action) for action in _plain(self.chart, actions))

    def _settled(self) -> Situation:
        reached = self.situation()
        if reached.finished:  # nothing happens any more: the memory is moot
            return reached._replace(history=())
        return reached._replace(history=self._relevant(reached.history))

    def _relevant(
        self, history: tuple[tuple[str, tuple[str, ...]], ...]
    ) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return tuple(h for h in history if h[0] in self.relevant)

    def _share(self, program: Program) -> Program:
        return self._shared.setdefault(program, program)

    # --- the interpreter's callbacks --------------------------------------------------

    def _oracle(self, cond: Cond) -> bool:
        if self.specialize is not None:
            cond = self.specialize(cond, self.configuration, self.event, self.event_internal)
            if isinstance(cond, bool):
                return cond  # decided where it is evaluated: no test at run time
        run = self._run
        number = len(run.outcomes)
        outcome = self._prefix[number] if number < len(self._prefix) else True
        run.tests.append((len(self._actions), cond))
        run.outcomes.append(outcome)
        return outcome

    def _round(self) -> None:
        tests = len(self._run.outcomes)
        if not tests and not self._guarded:
            # Nothing to watch before the first test: with no test at all, a loop runs on
            # to the interpreter's bound (the error of old); one that goes through a test
            # is caught the next time round. And tables without guards cost no more.
            return
        here = self.checkpoint()
        here = here._replace(
            history=self._relevant(here.history), internal=here.internal and self.origins
        )
        before = self._seen.get(here)
        if before is None:
            self._seen[here] = tests
        else:
            # Back where this path was: with a test in between, data may end the loop, so
            # the rest is the program of this point; without one, nothing can.
            raise _Cut(here if tests > before else None)
