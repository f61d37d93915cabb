"""A machine's Markdown page: its Mermaid diagrams, then tables of its states, events and
transitions; and the Markdown helpers the system page uses too.

Every name is written as a code span (:func:`md_code`) and every description escaped
(:func:`md_text`), so no text from YAML can break a table.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

from smc.catalog import emitted_events
from smc.compiler.diagrams.model import (
    HEADER_TEXT,
    TIMER_PREFIX,
    machine_title,
    seconds_text,
    timeout_seconds,
)
from smc.compiler.model import Action, Machine, State


@functools.lru_cache(maxsize=65536)
def md_code(text: str) -> str:
    """``text`` as a Markdown code span that is also safe inside a table cell."""
    if text.strip() == text and text and not any(c in text for c in "`|\n\r"):
        return f"`{text}`"
    text = " ".join(text.splitlines()).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~])")


def md_text(text: str) -> str:
    """Free text (a description) with Markdown punctuation escaped, one line per line."""
    return "\n".join(_MD_SPECIAL.sub(r"\\\1", line) for line in text.splitlines())


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def codes(items: Iterable[str]) -> str:
    return ", ".join(md_code(item) for item in items) or "—"


def mermaid_fence(text: str) -> list[str]:
    return ["```mermaid", *text.rstrip("\n").splitlines(), "```"]


def machine_markdown(machine: Machine, overview: str, groups: Sequence[tuple[str, str]]) -> str:
    """The page: ``overview`` is the machine's Mermaid diagram, ``groups`` each group's name
    and Mermaid diagram."""
    lines = [f"<!-- {HEADER_TEXT} -->", f"# {md_text(machine_title(machine))}", ""]
    if machine.description:
        lines += [md_text(machine.description), ""]
    lines += table(
        ["Machine", "Initial state", "Final states"],
        [[md_code(machine.name), md_code(machine.initial_state), codes(machine.final_states)]],
    )
    lines += ["", "## Diagram", "", *mermaid_fence(overview), ""]
    for group_name, text in groups:
        lines += [f"### Group {md_text(group_name)}", "", *mermaid_fence(text), ""]

    group_names = {g.id: g.name for g in machine.groups}
    lines += ["## States", ""]
    rows = []
    for state in machine.states:
        marks = []
        if state.name == machine.initial_state:
            marks.append("initial")
        if state.name in machine.final_states:
            marks.append("final")
        marks.extend(_chart_marks(state))
        name = md_code(state.name) + (f" ({', '.join(marks)})" if marks else "")
        group = machine.group_of.get(state.name)
        actions = "<br>".join(_action_markdown(action) for action in state.actions) or "—"
        description = md_text(state.description) if state.description else ""
        row = [
            name,
            md_text(group_names[group]) if group else "—",
            actions,
            " ".join(description.splitlines()),
        ]
        if machine.is_chart:  # where the state is, and what it runs on the way out
            on_exit = "<br>".join(_action_markdown(action) for action in state.on_exit)
            row[1:1] = [md_code(state.parent) if state.parent else "—"]
            row[4:4] = [on_exit or "—"]
        rows.append(row)
    header = ["State", "Group", "Actions (on entry)", "Description"]
    if machine.is_chart:
        header[1:1] = ["In"]
        header[4:4] = ["On exit"]
    lines += [*table(header, rows), ""]

    lines += ["## Events", ""]
    emitters: dict[str, list[str]] = {}
    for state in machine.states:
        for action in state.actions:
            for event, _kind in emitted_events(action.type, action.params):
                entry = f"{md_code(state.name)} ({md_code(action.type)})"
                if entry not in emitters.setdefault(event, []):
                    emitters[event].append(entry)
    handlers: dict[str, list[str]] = {}
    for transition in machine.transitions:
        if transition.synthesized or transition.event is None:
            continue
        source = "`*` (any state)" if transition.wildcard else md_code(transition.source)
        if source not in handlers.setdefault(transition.event, []):
            handlers[transition.event].append(source)
    events = list(dict.fromkeys([*machine.event_names, *emitters]))
    rows = []
    for event in events:
        if event not in handlers and event not in emitters and event.startswith("to_"):
            continue  # contract style: a synthesized event nobody names
        seconds = timeout_seconds(event)
        sources = list(emitters.get(event, []))
        if seconds is not None:
            sources.insert(0, f"timer: {TIMER_PREFIX}{seconds_text(seconds)} in the state")
        rows.append(
            [
                md_code(event),
                ", ".join(sources) or "—",
                ", ".join(handlers.get(event, [])) or "— (not handled)",
            ]
        )
    lines += [*table(["Event", "Emitted by", "Handled in"], rows), ""]

    lines += ["## Transitions", ""]
    rows = []
    for transition in machine.transitions:
        if transition.synthesized:
            event = "— (allowed transition)"
        elif transition.event is None:
            event = "— (eventless)"
        else:
            event = md_code(transition.event) + (" (internal)" if transition.internal else "")
        description = " ".join(md_text(transition.description or "").splitlines())
        targets = codes(transition.targets or (transition.target,))
        rows.append([md_code(transition.source), event, targets, description])
    lines += [*table(["From", "Event", "To", "Description"], rows), ""]
    return "\n".join(lines)


def _chart_marks(state: State) -> list[str]:
    """What a statechart's state is, beyond atomic: ``compound, initial `idle```..."""
    if state.kind == "compound":
        initial = f", initial {md_code(state.initial)}" if state.initial else ""
        return [f"compound{initial}"]
    if state.kind == "parallel":
        return ["parallel"]
    if state.kind == "history":
        default = f" → {codes(state.history_default)}" if state.history_default else ""
        return [f"{state.history or 'shallow'} history{default}"]
    return []


def _action_markdown(action: Action) -> str:
    events = [event for event, _kind in emitted_events(action.type, action.params)]
    text = md_code(action.type)
    return text + (" → " + codes(events) if events else "")
