"""The system diagram: the machines built together as one picture, written as ``system.mmd``
(a Mermaid flowchart), ``system.dot`` and ``system.md``.

Each machine is a node; each ``send_event`` and ``start_fsm`` action is a labelled edge to the
machines it reaches (or to an ``unbuilt`` node for a target no machine here matches); a
machine waiting for an event nobody sends (:func:`unsent_events`) is a highlighted
``waiting`` node listing a few of those events.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from smc.catalog import emitted_events
from smc.compiler.diagrams.dot import dot_system_diagram
from smc.compiler.diagrams.markdown import codes, md_code, mermaid_fence, table
from smc.compiler.diagrams.mermaid import mermaid_flowchart
from smc.compiler.diagrams.model import (
    HEADER_TEXT,
    IdAllocator,
    Node,
    Picture,
    slug,
    timeout_seconds,
)
from smc.compiler.model import Machine

LinkKind = Literal["send_event", "start_fsm"]

#: How many unsent events a machine's node in the system diagram lists.
UNSENT_SHOWN = 4
#: The system picture's title: the DOT graph's name.
SYSTEM_TITLE = "system"
UNBUILT_CAPTION = "(not built here)"


@dataclass(frozen=True)
class Link:
    """One arrow of the system diagram: an action in ``source`` aimed at another machine."""

    source: int  # index into the machines
    targets: tuple[int, ...]  # the machines it reaches; () when none of them is built here
    kind: LinkKind
    event: str | None  # send_event: the event sent
    target_text: str  # as written (target_machine, or yaml_path / machine_name)


def _pattern(text: str) -> re.Pattern[str]:
    """A target written with placeholders (``worker_{job_id}``) matches any text in them."""
    parts = re.split(r"\{[^{}]*\}", text)
    return re.compile("^" + ".+".join(re.escape(part) for part in parts) + "$")


def _send_targets(target: str, machines: Sequence[Machine]) -> tuple[int, ...]:
    pattern = _pattern(target)
    return tuple(i for i, m in enumerate(machines) if pattern.match(m.name))


def _start_targets(params: Mapping[str, object], machines: Sequence[Machine]) -> tuple[int, ...]:
    yaml_path = params.get("yaml_path")
    if isinstance(yaml_path, str) and yaml_path:
        wanted = PurePosixPath(yaml_path.replace("\\", "/")).parts
        found = tuple(
            i
            for i, m in enumerate(machines)
            if PurePosixPath(m.path.replace("\\", "/")).parts[-len(wanted) :] == wanted
        )
        if found:
            return found
    machine_name = params.get("machine_name")
    if isinstance(machine_name, str) and machine_name:
        return _send_targets(machine_name, machines)
    return ()


def system_links(machines: Sequence[Machine]) -> list[Link]:
    """Every ``send_event`` and ``start_fsm`` action, in machine, state and action order."""
    links = []
    for index, machine in enumerate(machines):
        for state in machine.states:
            for action in state.actions:
                params = action.params
                if action.type == "send_event":
                    target = params.get("target_machine")
                    if not isinstance(target, str) or not target:
                        continue
                    event = params.get("event_type")
                    links.append(
                        Link(
                            index,
                            _send_targets(target, machines),
                            "send_event",
                            event if isinstance(event, str) and event else None,
                            target,
                        )
                    )
                elif action.type == "start_fsm":
                    written = params.get("yaml_path") or params.get("machine_name")
                    links.append(
                        Link(
                            index,
                            _start_targets(params, machines),
                            "start_fsm",
                            None,
                            str(written) if written is not None else "?",
                        )
                    )
    return links


def unsent_events(machines: Sequence[Machine]) -> dict[int, list[str]]:
    """Machine index -> the events it waits for that nobody sends, in file order.

    An event counts as *waited for* when a transition of the machine names it (contract-style
    transitions name none). It counts as *sent* when it is a ``timeout(N)`` event (the runtime
    fires it), when an action of the machine itself may return it (``smc.catalog``'s
    ``emitted_events``: written, default and fixed events), or when a ``send_event`` action of
    any machine drawn here targets the machine with that ``event_type`` (a target written with
    ``{placeholders}`` matches any machine name that fits). What is left must come from outside
    the machines drawn together: ``smc send``, another program, or a machine missing here.
    """
    return _unsent_events(machines, system_links(machines))


def _unsent_events(machines: Sequence[Machine], links: Sequence[Link]) -> dict[int, list[str]]:
    sent: set[tuple[int, str]] = set()
    for link in links:
        if link.kind == "send_event" and link.event is not None:
            sent.update((target, link.event) for target in link.targets)
    result: dict[int, list[str]] = {}
    for index, machine in enumerate(machines):
        own = {
            event
            for state in machine.states
            for action in state.actions
            for event, _kind in emitted_events(action.type, action.params)
        }
        waiting = dict.fromkeys(
            t.event for t in machine.transitions if not t.synthesized and t.event is not None
        )
        missing = [
            event
            for event in waiting
            if timeout_seconds(event) is None and event not in own and (index, event) not in sent
        ]
        if missing:
            result[index] = missing
    return result


def _waiting_caption(events: Sequence[str]) -> list[str]:
    """The lines under a waiting machine's name: a few events (system.md lists them all)."""
    lines = ["waits for unsent:", *events[:UNSENT_SHOWN]]
    if len(events) > UNSENT_SHOWN:
        lines.append(f"+{len(events) - UNSENT_SHOWN} more")
    return lines


def _link_label(link: Link) -> str:
    if link.kind == "start_fsm":
        return "start_fsm"
    return f"send {link.event}" if link.event else "send"


def system_picture(
    machines: Sequence[Machine], links: Sequence[Link], unsent: Mapping[int, Sequence[str]]
) -> Picture:
    """A node per machine (in order), then one per target not built here (in link order),
    and an edge per pair of nodes listing what the links between them do."""
    picture = Picture(SYSTEM_TITLE)
    allocator = IdAllocator()
    machine_ids = [allocator.take(slug(m.name)) for m in machines]
    for index, (machine, node_id) in enumerate(zip(machines, machine_ids, strict=True)):
        if index in unsent:
            picture.nodes[node_id] = Node(
                node_id, machine.name, kind="waiting", details=_waiting_caption(unsent[index])
            )
        else:
            picture.nodes[node_id] = Node(node_id, machine.name, kind="machine")
    unbuilt_ids: dict[str, str] = {}
    for link in links:
        if link.targets:
            target_ids = [machine_ids[t] for t in link.targets]
        else:
            key = f"{link.kind}:{link.target_text}"
            if key not in unbuilt_ids:
                node_id = unbuilt_ids[key] = allocator.take("ext_" + slug(link.target_text))
                picture.nodes[node_id] = Node(
                    node_id, link.target_text, kind="unbuilt", details=[UNBUILT_CAPTION]
                )
            target_ids = [unbuilt_ids[key]]
        for target_id in target_ids:
            picture.labelled_edge(machine_ids[link.source], target_id, _link_label(link))
    return picture


_INTRODUCTION = (
    "Machines built together, the events they send each other (`send_event`) and the "
    "machines they start (`start_fsm`). Highlighted: machines waiting for an event that "
    "no machine here sends, no own action returns and no timer fires (it has to come "
    "from outside, e.g. `smc send`)."
)


def _system_markdown(
    machines: Sequence[Machine],
    links: Sequence[Link],
    unsent: Mapping[int, Sequence[str]],
    mermaid: str,
) -> str:
    md = [f"<!-- {HEADER_TEXT} -->", "# System", ""]
    md += [_INTRODUCTION, "", *mermaid_fence(mermaid), ""]
    rows = []
    for index, machine in enumerate(machines):
        sends = [
            f"{md_code(link.event or '?')} → {md_code(link.target_text)}"
            for link in links
            if link.source == index and link.kind == "send_event"
        ]
        starts = [
            md_code(link.target_text)
            for link in links
            if link.source == index and link.kind == "start_fsm"
        ]
        rows.append(
            [
                md_code(machine.name),
                "<br>".join(dict.fromkeys(sends)) or "—",
                "<br>".join(dict.fromkeys(starts)) or "—",
                codes(unsent.get(index, [])),
            ]
        )
    md += [*table(["Machine", "Sends", "Starts", "Waits for (nobody sends)"], rows), ""]
    return "\n".join(md)


def system_diagrams(machines: Sequence[Machine]) -> dict[str, str]:
    """``system.mmd``, ``system.dot`` and ``system.md`` for machines built together."""
    links = system_links(machines)
    unsent = _unsent_events(machines, links)
    picture = system_picture(machines, links, unsent)
    mermaid = mermaid_flowchart(picture)
    return {
        "system.dot": dot_system_diagram(picture),
        "system.md": _system_markdown(machines, links, unsent, mermaid),
        "system.mmd": mermaid,
    }
