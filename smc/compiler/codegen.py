"""Model in, Python source out: one typed module per machine, plus the package ``__init__``.

Three parts make a module: ``smc.compiler.plan`` decides what it holds (a frozen
``ModulePlan``), the templates (``templates/*.jinja``) write it, and
``smc.compiler.pylayout`` lays out what depends on the machine as black would. This module
is the emitter between them: the Jinja2 environment, the filters through which a template
reaches ``pylayout``, and rendering.

Every name from YAML reaches a template either as a string literal (``pystr``, ``docrepr``)
or as an identifier made by ``smc.compiler.names`` and checked with ``str.isidentifier()``.
Jinja2 runs with ``StrictUndefined`` and no autoescaping. A value whose layout depends on its
width is placed with ``| pylayout``, which lays it out where it stands on its template line
(``pylayout.lay_out_marks``): the template decides indentation, prefix and suffix.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smc.compiler.config import DEFAULT_LINE_LENGTH
from smc.compiler.data import annotation
from smc.compiler.model import Machine
from smc.compiler.plan import (
    CodegenError,
    ModuleNames,
    ModulePlan,
    TimerPlan,
    TransitionPlan,
    module_names,
    module_plan,
)
from smc.compiler.pylayout import (
    Node,
    RightHandSide,
    Seq,
    Text,
    data_node,
    doc_literal,
    finish_module,
    format_python,
    header_path,
    in_black_style,
    lay_out_marks,
    literal,
    mark,
    pystr,
    tuple_node,
)
from smc.compiler.resources import data_dir

if TYPE_CHECKING:
    import jinja2

    from smc.compiler.chartplan import (
        EntryPlan,
        InlinePlan,
        MovePlan,
        ProgramsPlan,
        SituationPlan,
        TestPlan,
    )

__all__ = [
    "CODEGEN_VERSION",
    "CodegenError",
    "ModuleNames",
    "finish_module",
    "format_python",
    "generate_init",
    "generate_machine",
    "in_black_style",
    "init_hash",
    "machine_context",
    "module_names",
    "render_context",
    "render_machine",
    "templates_digest",
    "templates_dir",
]

#: Bumped when the generated code's shape changes; part of every output's hash. The source
#: hash covers the plan and the templates, not ``pylayout``'s rules or the filters below: a
#: change to those that changes any output must bump it.
CODEGEN_VERSION = "4"

#: The render-context key of the nodes ``| pylayout`` placed, for ``lay_out_marks``.
_NODES = "_layout_nodes"


@cache
def templates_dir() -> Path:
    return data_dir("templates")


# ---- filters: the templates' way to pylayout -----------------------------------------------
#
# A ``*_each`` filter converts every item of a sequence in one call: Jinja's ``map("f")``
# dispatches each item to the filter separately, which made rendering several times slower.


def _qualify(member: str, owner: str) -> str:
    """``owner.member`` (``"idle" | qualify("State")`` -> ``State.idle``)."""
    return f"{owner}.{member}"


def _qualify_each(members: Iterable[str], owner: str) -> list[str]:
    return [f"{owner}.{member}" for member in members]


def _pystr_each(texts: Iterable[str]) -> list[str]:
    return [pystr(text) for text in texts]


def _pydata_each(values: Iterable[Any]) -> list[Node]:
    return [data_node(value) for value in values]


def _pytext_each(texts: Iterable[str]) -> list[Node]:
    return [Text(text) for text in texts]


def _pytuple(items: Iterable[Node]) -> Node:
    return tuple_node(list(items))


def _pylist(items: Iterable[Node]) -> Node:
    return Seq("[", "]", tuple(items))


def _pyset(items: Iterable[Node]) -> Node:
    return Seq("{", "}", tuple(items))


def _pycall(items: Iterable[Node], function: str) -> Node:
    """``function(items...)``."""
    return Seq(f"{function}(", ")", tuple(items))


def _pysubscript(items: Iterable[Node], name: str) -> Node:
    """``name[items...]``, split as black splits a subscript."""
    return Seq(f"{name}[", "]", tuple(items), subscript=True)


def _transition_rows(rows: Iterable[TransitionPlan]) -> list[Node]:
    """``TRANSITIONS``' rows, each a ``(State.x, Event.y, State.z)`` tuple."""
    return [
        tuple_node([f"State.{row.source}", f"Event.{row.event}", f"State.{row.target}"])
        for row in rows
    ]


def _timer_each(timers: Iterable[TimerPlan]) -> list[Node]:
    # code, not tuple nodes: a timer too long for its line is left to black (in_black_style)
    return [f"({timer.seconds!r}, Event.{timer.event})" for timer in timers]


# ---- filters of the chart template (``chart.py.jinja``) ----------------------------------


def _situation_views(situations: Iterable[SituationPlan]) -> list[Node]:
    return [f"State.{situation.state}" for situation in situations]


def _final_situations(situations: Iterable[SituationPlan]) -> list[Node]:
    return [str(index) for index, situation in enumerate(situations) if situation.final]


def _dispatch_row(entries: Iterable[EntryPlan]) -> Node:
    """One situation's ``{Event.x: (next, State.y, step), ...}``."""
    return Seq(
        "{",
        "}",
        tuple(
            (
                f"Event.{entry.event}: ",
                tuple_node([str(entry.next), f"State.{entry.state}", str(entry.step)]),
            )
            for entry in entries
        ),
    )


def _step_moves(moves: Iterable[MovePlan]) -> list[Node]:
    return [
        tuple_node([pystr(move.kind), f"{'Event' if move.kind == 'on' else 'State'}.{move.member}"])
        for move in moves
    ]


def _program_node(program: tuple[Any, ...]) -> Node:
    """A decision program (``chartplan.ProgramsPlan``): nested tuples of ints."""
    return tuple_node([_program_node(v) if isinstance(v, tuple) else str(int(v)) for v in program])


def _programs_row(row: Iterable[tuple[str, tuple[Any, ...]]]) -> Node:
    """One situation's ``{Event.x: program, ...}``."""
    return Seq("{", "}", tuple((f"Event.{event}: ", _program_node(p)) for event, p in row))


def _programs_table(rows: Iterable[Iterable[tuple[str, tuple[Any, ...]]]]) -> Node:
    """``_PROGRAMS``: situation -> its row of programs."""
    return tuple_node([_programs_row(row) for row in rows])


def _program_events(rows: Iterable[Iterable[tuple[str, tuple[Any, ...]]]]) -> Node:
    """``PROGRAM_EVENTS``: situation -> the frozenset of events its programs decide."""
    sets: list[Node] = []
    for row in rows:
        events = tuple(f"Event.{event}" for event, _ in row)
        sets.append(Seq("frozenset({", "})", events) if events else "frozenset()")
    return tuple_node(sets)


def _entry_node(entry: EntryPlan | None) -> Node:
    """``(next, State.y, step)``, or None."""
    if entry is None:
        return "None"
    return tuple_node([str(entry.next), f"State.{entry.state}", str(entry.step)])


def _test_entries(tests: Iterable[TestPlan], which: str) -> Node:
    """``_YES`` (``which`` "yes") or ``_NO``: per one-condition program, that entry."""
    return tuple_node([_entry_node(getattr(test, which)) for test in tests])


def _tests_table(tests: Iterable[TestPlan], situations: int) -> Node:
    """``_TESTS``: situation -> ``{Event.x: test index, ...}``."""
    rows: list[list[tuple[str, Node]]] = [[] for _ in range(situations)]
    for index, test in enumerate(tests):
        rows[test.situation].append((f"Event.{test.event}: ", str(index)))
    return tuple_node([Seq("{", "}", tuple(row)) for row in rows])


def _decide_lines(
    programs: ProgramsPlan, inline: InlinePlan, test: Sequence[str], data: str
) -> list[str]:
    """The lines (unindented) that set ``entry`` to a one-condition program's entry as its
    condition holds or not. ``test`` is the code of that program's two entries, slot and
    condition (``_YES[step]``, ``_NO[step]``, ``_SLOT[step]``, ``_TEST_COND[step]`` in
    ``fire()``); ``data`` the code of the payload. The conditions of ``inline.slots`` are
    written out, in a chain over the slot when there are several (or some are left to
    call), the others called."""
    yes, no, slot_code, cond_code = test

    def branch(condition: str, prelude: Sequence[str] = ()) -> list[str]:
        return [*prelude, f"if {condition}:", f"    entry = {yes}", "else:", f"    entry = {no}"]

    def written(slot: int) -> list[str]:
        cond = programs.conds[programs.inline[slot]]
        prelude = ["ctx = self.context"] if cond.uses_context else []
        prelude += ["job = self.job"] if cond.uses_job else []
        return branch(cond.source, prelude)

    called = branch(f"_CONDS[{cond_code}](self, {data})")
    if not inline.slots:
        return called
    if len(inline.slots) == 1 and not inline.fallback:
        return written(inline.slots[0])
    lines = [f"slot = {slot_code}"]
    for number, slot in enumerate(inline.slots):
        last = number == len(inline.slots) - 1 and not inline.fallback
        head = "if" if number == 0 else "elif"
        lines.append("else:" if last else f"{head} slot == {slot}:")
        lines += [f"    {line}" for line in written(slot)]
    if inline.fallback:
        lines.append("else:")
        lines += [f"    {line}" for line in called]
    return lines


def _cond_names(items: Sequence[object], prefix: str) -> list[Node]:
    """``_cond_0``, ``_cond_1``, ... (or ``_action_<n>``): one generated function per item."""
    return [f"{prefix}{index}" for index in range(len(items))]


def _program_each(programs: Iterable[tuple[Any, ...]]) -> list[Node]:
    return [_program_node(program) for program in programs]


def _pylayout(context: Mapping[str, Any], node: Node) -> str:
    """``node`` laid out where it stands on its template line (``lay_out_marks``)."""
    nodes: list[Node] = context[_NODES]
    return mark(nodes, node)


def _pyvalue(context: Mapping[str, Any], code: str) -> str:
    """``code`` as the value of the assignment its template line begins, laid out where it
    stands (``RightHandSide``)."""
    nodes: list[Node] = context[_NODES]
    return mark(nodes, RightHandSide(code))


@cache
def _environment() -> jinja2.Environment:
    # Imported here, not at the top: a no-op rebuild renders nothing and should not pay for
    # importing Jinja2 and black.
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        pystr=pystr,
        pystr_each=_pystr_each,
        docrepr=doc_literal,
        header_path=header_path,
        qualify=_qualify,
        qualify_each=_qualify_each,
        pydata=data_node,
        pydata_each=_pydata_each,
        pytext_each=_pytext_each,
        pytuple=_pytuple,
        pylist=_pylist,
        pyset=_pyset,
        pycall=_pycall,
        pysubscript=_pysubscript,
        transition_rows=_transition_rows,
        program_node=_program_node,
        programs_table=_programs_table,
        program_events=_program_events,
        program_each=_program_each,
        cond_names=_cond_names,
        test_entries=_test_entries,
        tests_table=_tests_table,
        decide_lines=_decide_lines,
        timer_each=_timer_each,
        situation_views=_situation_views,
        final_situations=_final_situations,
        dispatch_row=_dispatch_row,
        step_moves=_step_moves,
        pyliteral=literal,
        pytype=annotation,
        pylayout=jinja2.pass_context(_pylayout),
        pyvalue=jinja2.pass_context(_pyvalue),
    )
    return env


def _render(template_name: str, values: Mapping[str, Any], line_length: int) -> str:
    nodes: list[Node] = []
    text = _environment().get_template(template_name).render(values, **{_NODES: nodes})
    return lay_out_marks(text, nodes, line_length)


# ---- hashes ------------------------------------------------------------------------------


@cache
def templates_digest() -> str:
    """A hash of the template set, so a template change marks every output stale."""
    digest = hashlib.sha256(CODEGEN_VERSION.encode())
    for path in sorted(templates_dir().glob("*.jinja")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _plan_hash(plan: ModulePlan) -> str:
    # The plan is NamedTuples of plain data: JSON as it is, each record a list. Not
    # sort_keys: the order of action parameters and context-map keys is the module's.
    payload = json.dumps(plan, ensure_ascii=False)
    return hashlib.sha256(f"{payload}\0{templates_digest()}".encode()).hexdigest()


# ---- machine modules -----------------------------------------------------------------------


def machine_context(
    machine: Machine, source_path: str, line_length: int = DEFAULT_LINE_LENGTH
) -> dict[str, Any]:
    """What ``machine.py.jinja`` renders: the module's ``plan`` and its ``source_hash``.

    The hash is the sha256 of everything the module is made from: the plan (names, table,
    actions and where they were written, the header path, the line length) and the template
    set. Same hash, same module; the ``# smc-source-sha256:`` header holds it."""
    plan = module_plan(machine, source_path, line_length)
    return {"plan": plan, "source_hash": _plan_hash(plan)}


def render_machine(
    machine: Machine, source_path: str, line_length: int = DEFAULT_LINE_LENGTH
) -> str:
    """The module for ``machine`` before formatting (``finish_module`` formats it)."""
    return render_context(machine_context(machine, source_path, line_length))


def render_context(context: Mapping[str, Any]) -> str:
    """The module for a ``machine_context()`` before formatting; a build that already holds
    the context (for its ``source_hash``) renders from it instead of preparing it again."""
    plan: ModulePlan = context["plan"]
    template = "machine.py.jinja" if plan.chart is None else "chart.py.jinja"
    return _render(template, context, plan.line_length)


def generate_machine(
    machine: Machine, source_path: str, line_length: int = DEFAULT_LINE_LENGTH
) -> str:
    """The generated module for ``machine``; ``source_path`` goes in the header."""
    return finish_module(render_machine(machine, source_path, line_length), line_length)


# ---- the package __init__ ------------------------------------------------------------------


def _init_classes(machines: Sequence[Machine]) -> list[tuple[str, str]]:
    return sorted((module_names(m).module, module_names(m).class_name) for m in machines)


def init_hash(
    machines: Sequence[Machine], root: str, line_length: int = DEFAULT_LINE_LENGTH
) -> str:
    """What the package ``__init__`` depends on: the templates, the inputs, the line length
    and each machine's module and class name."""
    digest = hashlib.sha256(templates_digest().encode())
    digest.update(root.encode() + b"\0" + str(line_length).encode() + b"\0")
    for module, class_name in _init_classes(machines):
        digest.update(f"{module}\0{class_name}\0".encode())
    return digest.hexdigest()


def generate_init(
    machines: Sequence[Machine], root: str, line_length: int = DEFAULT_LINE_LENGTH
) -> str:
    """The package ``__init__``: imports and re-exports every machine class. ``root`` names
    the inputs in the docstring."""
    classes = _init_classes(machines)
    values = {
        "classes": classes,
        "exports": [class_name for _, class_name in classes],
        "source_hash": init_hash(machines, root, line_length),
        "root": root,
    }
    return finish_module(_render("__init__.py.jinja", values, line_length), line_length)
