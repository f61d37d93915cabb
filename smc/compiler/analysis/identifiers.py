"""Checks that names become Python: states, events and machines each become an identifier
(SMC050), distinct ones distinct identifiers and modules (SMC051), and no two machines share a
name (SMC042); a named condition (``guard:``, ``unless:``) is a method name as written
(SMC050) that the generated class does not use already (SMC051).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence

from smc.compiler import names
from smc.compiler.analysis.context import Context, diagnostic
from smc.compiler.diagnostics import Diagnostic
from smc.compiler.model import Machine, Position

#: The longest module name (UTF-8 bytes): its files, `<module>.py` and the diagrams, and
#: their temporary names while written (`.<file>.XXXXXXXX.tmp`), must fit a file system's
#: 255-byte file names.
MAX_MODULE_BYTES = 200


def check_identifiers(machine: Machine, _: Context) -> Iterator[Diagnostic]:
    kinds: list[tuple[str, Callable[[str], str | None], Sequence[tuple[str, Position]]]] = [
        ("state", names.member, [(s.name, s.pos) for s in machine.states]),
        ("event", names.member, [(e.name, e.pos) for e in machine.events]),
        (
            "event method",
            functools.partial(names.method, chart=machine.is_chart),
            [(e.name, e.pos) for e in machine.events],
        ),
    ]
    for kind, convert, items in kinds:
        taken: dict[str, str] = {}
        for name, pos in items:
            ident = convert(name)
            if ident is None:
                if kind != "event method":  # one diagnostic per bad event name
                    yield diagnostic(
                        pos,
                        "SMC050",
                        f"{kind} name {name!r} cannot become a Python identifier",
                        "use letters, digits and '_' in the name",
                    )
                continue
            if ident in taken and taken[ident] != name:
                yield diagnostic(
                    pos,
                    "SMC051",
                    f"{kind} {name!r} and {taken[ident]!r} both become {ident!r} in " "Python",
                    "rename one of them",
                )
            taken.setdefault(ident, name)
    if machine.is_chart:
        yield from _check_hook_names(machine)
    if machine.has_guards:
        yield from _check_condition_names(machine)
    for convert in (names.pascal, names.module):
        if convert(machine.name) is None:
            yield diagnostic(
                machine.initial_pos,
                "SMC050",
                f"machine name {machine.name!r} cannot become a Python identifier",
                "set metadata.machine_name to letters, digits and '_'",
            )
            break
    else:
        size = len(str(names.module(machine.name)).encode())
        if size > MAX_MODULE_BYTES:
            # `smc build` and `smc diagram` failed writing <module>.py ("File name too long")
            yield diagnostic(
                machine.initial_pos,
                "SMC050",
                f"machine name {machine.name[:40]!r}... becomes a file name of {size} bytes; "
                f"the limit is {MAX_MODULE_BYTES}",
                "set a shorter metadata.machine_name",
            )


def _check_hook_names(machine: Machine) -> Iterator[Diagnostic]:
    """A chart's class declares ``on_enter_<state>``, ``on_exit_<state>`` and ``on_<event>``
    beside its event methods: an event named ``enter_x`` would make ``on_enter_x`` both
    state x's entry hook and its own; an event named ``on_go`` a method that is event go's
    hook."""
    # Imported here: flat machines never need the chart plan.
    from smc.compiler.chartplan import hook_names

    pos_of = {s.name: s.pos for s in machine.states} | {e.name: e.pos for e in machine.events}
    taken: dict[str, str] = {}
    for event in machine.events:
        method = names.method(event.name, chart=machine.is_chart)
        if method is not None:
            taken.setdefault(method, f"the method of event {event.name!r}")
    for kind, name, method in hook_names(machine):
        what = {"entry": "entry hook", "exit": "exit hook", "on": "hook"}[kind]
        owner = f"the {what} of {'event' if kind == 'on' else 'state'} {name!r}"
        if method in taken:
            yield diagnostic(
                pos_of[name],
                "SMC051",
                f"{owner} and {taken[method]} both become {method!r} in Python",
                "rename one of them",
            )
        elif method in names.GENERATED_MEMBERS:
            # event `log`'s hook replaced the class's own on_log(label, value)
            yield diagnostic(
                pos_of[name],
                "SMC051",
                f"{owner} becomes {method!r}, a method the generated class has itself",
                "rename it",
            )
        taken.setdefault(method, owner)


def _check_condition_names(machine: Machine) -> Iterator[Diagnostic]:
    """``guard:`` and ``unless:`` name methods the user writes in a subclass of the
    generated class: each must be an identifier as written (SMC050) and must not be one of
    the class's own attributes, event methods or hooks (SMC051). Each name once, where it is
    first written."""
    from smc.compiler.chartplan import hook_names

    taken: dict[str, str] = {}
    for event in machine.events:
        method = names.method(event.name, chart=machine.is_chart)
        if method is not None:
            taken.setdefault(method, f"the method of event {event.name!r}")
    for kind, name, method in hook_names(machine):
        what = {"entry": "entry hook", "exit": "exit hook", "on": "hook"}[kind]
        taken.setdefault(method, f"the {what} of {'event' if kind == 'on' else 'state'} {name!r}")
    seen: set[str] = set()
    written = [
        (key, name, pos or t.pos)
        for t in machine.transitions
        for key, name, pos in (("guard", t.guard, t.guard_pos), ("unless", t.unless, t.unless_pos))
        if name is not None
    ]
    for key, name, where in written:
        if name in seen:
            continue
        seen.add(name)
        problem = names.condition_name_problem(name)
        if problem is not None:
            yield diagnostic(
                where,
                "SMC050",
                f"`{key}:` {name!r} {problem}: it names a method you write as it is written",
                "use letters, digits and '_', not first",
            )
        elif name in names.GENERATED_MEMBERS:
            yield diagnostic(
                where,
                "SMC051",
                f"`{key}:` {name!r} is an attribute the generated class has itself",
                "name the condition after what it checks, e.g. `has_capacity`",
            )
        elif name in taken:
            yield diagnostic(
                where,
                "SMC051",
                f"`{key}:` {name!r} is also {taken[name]} in Python",
                "rename the condition",
            )


def check_machine_names(machines: Sequence[Machine]) -> Iterator[Diagnostic]:
    by_name: dict[str, Machine] = {}
    by_module: dict[str, Machine] = {}
    for machine in machines:
        pos = machine.name_pos or Position(machine.path, 1, 1)
        first = by_name.get(machine.name)
        if first is not None:
            yield diagnostic(
                pos,
                "SMC042",
                f"machine name {machine.name!r} is also used by {first.path}",
                "give one of them another metadata.machine_name",
            )
            continue
        by_name[machine.name] = machine
        module = names.module(machine.name)
        if module is not None:
            other = by_module.get(module)
            if other is not None:
                yield diagnostic(
                    pos,
                    "SMC051",
                    f"machines {machine.name!r} and {other.name!r} both become module "
                    f"{module!r}",
                    "rename one of them",
                )
            by_module.setdefault(module, machine)
