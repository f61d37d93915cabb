"""Checks of the actions written in states: known action types (SMC030, SMC034), a built-in's
parameters (SMC031, SMC032, SMC035), a queue poll that spins (SMC036) and placeholders
(SMC033).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator
from typing import Any

from smc.catalog import BUILTIN_ACTIONS, COMMON_KEYS, REMOVED_ACTIONS
from smc.compiler.analysis.context import Context, closest, diagnostic, did_you_mean
from smc.compiler.diagnostics import Diagnostic
from smc.compiler.model import BRANCH_ACTIONS, IF, Action, Machine, nested_actions

_FILTER = re.compile(r"\{[A-Za-z_][\w.]*\|[^{}]*\}")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _declares_user_actions(machine: Machine) -> bool:
    data = machine.source_data
    return data.get("action_types") is not None or data.get("actions_root") is not None


def check_actions(machine: Machine, context: Context) -> Iterator[Diagnostic]:
    known_user = set(machine.user_action_types) | context.extra_action_types
    sources_known = context.user_actions_known or _declares_user_actions(machine)
    written = [(state.name, action) for state in machine.states for action in state.actions]
    written += [(state.name, action) for state in machine.states for action in state.on_exit]
    # A transition's own actions (the pure ones) are checked the same way.
    written += [(t.source, action) for t in machine.transitions for action in t.actions]
    # The actions inside ``if`` blocks too; one the class cannot run there is SMC097
    # (``exprcheck``), not an unknown type.
    written = [
        (owner, action)
        for owner, top in written
        for action in nested_actions((top,))
        if action is top or action.type in BRANCH_ACTIONS
    ]
    for owner, action in written:
        spec = BUILTIN_ACTIONS.get(action.type)
        if (
            spec is None
            and action.type not in known_user
            and action.type not in context.entry_point_types
        ):
            yield _unknown_action(action, owner, known_user, sources_known)
        if spec is not None:
            for required in spec.required:
                # `<param>_expr` computes `<param>` (send's event_expr)
                computed = f"{required}_expr"
                if computed in spec.parameters and computed in action.params:
                    continue
                if required not in action.params:
                    given = [str(param) for param in action.params]
                    close = difflib.get_close_matches(required, given, n=1)
                    hint = (
                        f"{close[0]!r} looks like a misspelling of it"
                        if close
                        else f"add `{required}: ...`"
                    )
                    yield diagnostic(
                        action.pos,
                        "SMC031",
                        f"{action.type!r} needs the parameter {required!r}",
                        hint,
                    )
            allowed = spec.parameters | COMMON_KEYS
            for param in action.params:
                if param not in allowed:
                    hint = did_you_mean(param, spec.parameters) or (
                        "parameters it reads: " + ", ".join(sorted(spec.parameters))
                    )
                    yield diagnostic(
                        action.param_key_pos.get(param, action.pos),
                        "SMC032",
                        f"{action.type!r} has no parameter {param!r}; it is ignored",
                        hint,
                    )
            for param, positive in spec.numbers.items():
                if param in action.params:
                    problem = _number_problem(action.params[param], positive)
                    if problem is not None:
                        yield diagnostic(
                            action.param_pos.get(param, action.pos),
                            "SMC035",
                            f"{action.type!r} {param} {problem}",
                            "write a number of seconds"
                            + (" more than 0" if positive else " (0 or more)"),
                        )
            if action.type == "check_database_queue" and _spins(machine, owner, action):
                yield diagnostic(
                    action.param_pos.get("wait", action.pos),
                    "SMC036",
                    f"'check_database_queue' in state {owner!r} has wait 0 and its no_jobs "
                    f"comes back to {owner!r}: an idle worker polls without a pause, tens of "
                    "thousands of transitions a second into the history",
                    "leave `wait` out (5 s, woken at once when a job is added), or give "
                    "no_jobs somewhere else to go",
                )
        if action.pure or action.type == IF:
            continue  # expressions, not templates: nothing in them is substituted
        for param, value in action.params.items():
            for text in _strings(value):
                match = _FILTER.search(text)
                if match:
                    yield diagnostic(
                        action.param_pos.get(param, action.pos),
                        "SMC033",
                        f"placeholder {match.group(0)!r} uses a filter; filters are "
                        "not supported and the text is left as written",
                        "compute the value in an action (set_context) and refer to "
                        "it with a plain {name}",
                    )


def _spins(machine: Machine, state: str, action: Action) -> bool:
    """Whether ``action`` (a ``check_database_queue``) waits 0 s for a job in ``state`` and
    its ``no_jobs`` leads straight back there: a loop with no wait in it."""
    if _seconds(action.params.get("wait")) != 0:
        return False
    if any(other.type == "sleep" for other in machine.state(state).actions):
        return False  # the state pauses on each pass
    return any(
        t.event == "no_jobs" and t.source in (state, "*") and t.target == state
        for t in machine.transitions
    )


def _known_later(value: Any) -> bool:
    """Whether ``value`` is the default (empty, as the runtime reads it) or a placeholder's
    text, known only at run time."""
    return value is None or value == "" or (isinstance(value, str) and "{" in value)


def _seconds(value: Any) -> float | None:
    """``value`` as the runtime reads a number of seconds (``float()``); None when it is not
    one, or is known only at run time."""
    if _known_later(value) or isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _number_problem(value: Any, positive: bool) -> str | None:
    """What is wrong with ``value`` as a number of seconds; None when nothing is, or when it
    is known only at run time."""
    if _known_later(value):
        return None
    number = _seconds(value)
    if number is None or math.isnan(number):  # infinity is a wait with no end: allowed
        return f"is {value!r}, not a number"
    if number < 0 or (positive and number == 0):
        return f"is {value!r}: it must be more than 0" if positive else f"is {value!r}: below 0"
    return None


def _unknown_action(
    action: Action, state: str, known_user: set[str], sources_known: bool
) -> Diagnostic:
    """SMC030 (error): ``smc run`` would refuse the type. SMC034 (warning): the type is not a
    misspelling and the checker was told of no place user actions come from, so it cannot
    tell; ``smc run`` refuses it unless a user action provides it."""
    removed = REMOVED_ACTIONS.get(action.type)
    close = None if removed else closest(action.type, [*BUILTIN_ACTIONS, *known_user])
    message = f"unknown action type {action.type!r} in state {state!r}"
    if close is not None:
        return diagnostic(action.pos, "SMC030", message, f"did you mean {close!r}?")
    if sources_known:
        return diagnostic(
            action.pos,
            "SMC030",
            message,
            removed
            or "no built-in, declared type (`action_types:`), --actions-dir file or smc.actions "
            "entry point provides it",
        )
    return diagnostic(
        action.pos,
        "SMC034",
        f"action type {action.type!r} in state {state!r} is not built in; smc run refuses "
        "it unless a user action provides it",
        removed
        or "pass the directory of its user action with --actions-dir, or declare it under "
        "`action_types:`",
    )
