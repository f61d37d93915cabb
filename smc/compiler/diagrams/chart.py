"""The picture of a statechart: the state tree as nested nodes.

A compound or parallel state is a node that contains its children (``Node.parent`` names the
node a child is drawn in); the regions of a parallel state are its children, drawn side by
side. Every compound gets its own start point leading to its initial child
(``Picture.initials``) and final states inside a compound an end point of their own. A
history pseudo-state is a node of kind ``history`` (``H``) or ``deep_history`` (``H*``) with an
unlabelled edge to its default target, if it has one. Eventless transitions are drawn without
a label; internal ones are labelled ``event (internal)``.

Groups are not drawn for a chart: its nesting already shows its structure, and a group's
own diagram would cut through it.
"""

from __future__ import annotations

from smc.compiler.diagrams.model import (
    Detail,
    MachineIds,
    Node,
    NodeKind,
    Picture,
    action_summary,
    add_any_node,
    event_label,
    machine_title,
)
from smc.compiler.model import Machine, State

#: Added to an internal transition's label.
INTERNAL_MARK = " (internal)"
#: What a history pseudo-state is labelled: UML's H and H*.
HISTORY_LABELS = {"shallow": "H", "deep": "H*"}
#: Put before the on-exit actions in a state's details (full detail).
EXIT_PREFIX = "exit: "


def _node_kind(state: State) -> NodeKind:
    if state.kind == "history":
        return "deep_history" if state.history == "deep" else "history"
    if state.kind in ("compound", "parallel"):
        return state.kind
    return "state"


def _details(state: State, detail: Detail) -> list[str]:
    if detail != "full" or state.kind == "history":
        return []
    lines = [action_summary(action) for action in state.actions]
    lines.extend(EXIT_PREFIX + action_summary(action) for action in state.on_exit)
    return lines


def chart_picture(machine: Machine, ids: MachineIds, detail: Detail) -> Picture:
    """Every state at its place in the tree, every transition (one edge per target)."""
    picture = Picture(machine_title(machine))
    for state in machine.states:
        label = HISTORY_LABELS.get(state.history or "", state.name)
        parent = ids.states[state.parent] if state.parent is not None else None
        picture.nodes[ids.states[state.name]] = Node(
            ids.states[state.name],
            label,
            kind=_node_kind(state),
            parent=parent,
            details=_details(state, detail),
        )
        if state.kind == "compound" and state.initial and machine.has_state(state.initial):
            picture.initials[ids.states[state.name]] = ids.states[state.initial]
        for target in state.history_default:
            if machine.has_state(target):
                picture.edge(ids.states[state.name], ids.states[target], None)
    for transition in machine.transitions:
        event = None if transition.synthesized else transition.event
        targets = transition.targets or (transition.target,)
        for target in targets:
            if not machine.has_state(target):
                continue
            if transition.wildcard:
                source = ids.any_state
            elif machine.has_state(transition.source):
                source = ids.states[transition.source]
            else:
                continue
            if transition.internal and event is not None:
                label = event_label(event) + INTERNAL_MARK
                picture.labelled_edge(source, ids.states[target], label)
            else:
                picture.edge(source, ids.states[target], event)
    if machine.has_state(machine.initial_state):
        picture.starts.append(ids.states[machine.initial_state])
    picture.ends.extend(ids.states[s] for s in machine.final_states)
    add_any_node(ids, picture)
    return picture
