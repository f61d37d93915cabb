"""Schema-valid data, in any of the three input styles, -> one ``model.Machine``.

The styles (docs/language.md):

- engine:   ``actions:`` keyed by state, parameters inline beside ``type``;
- design:   ``actions:`` on a transition, parameters under ``params:``. They are the actions
            run in the transition's ``from`` state to produce its event, so they join that
            state's action list in file order, and one with no ``success:`` of its own
            returns the transition's event on success. A pure action among them (``assign``,
            ``if``, ``send``, ``log`` with an expression: ``Action.pure``) is the
            transition's own (``Transition.actions``): it runs when the transition is taken;
- contract: ``states:`` as a mapping with ``allowed_transitions``; each allowed target T
            becomes a transition on the event ``to_T``.

Statecharts (:mod:`~smc.compiler.chartsyntax`): state items nest, at any depth, in either
form of ``states:``; transitions may also be written in a state's ``on:`` mapping, and take
their place among the ``transitions:`` entries in file order. A transition's conditions
(``when:``, ``guard:``, ``unless:``) are kept as written, with their positions; the
expressions are checked by :mod:`~smc.compiler.exprcheck`.

Only what the model cannot hold is reported here (duplicate states); everything else is left
to ``analysis``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from smc.catalog import BUILTIN_ACTIONS, COMMON_KEYS, canonical_params
from smc.compiler.chartsyntax import StateItem, item_kind, on_entries, state_items, tree_fields
from smc.compiler.diagnostics import Diagnostic
from smc.compiler.loader import LoadedDocument, PathKey
from smc.compiler.model import (
    IF,
    RAISE,
    SEND,
    WILDCARD,
    Action,
    ContextField,
    Event,
    Group,
    IfBranch,
    JobType,
    Machine,
    Position,
    State,
    StateKind,
    Style,
    Transition,
)
from smc.compiler.plan import plain_data


def contract_event(target: str) -> str:
    """The event name an execution-contract transition to ``target`` gets."""
    return f"to_{target}"


def action_types_in_dir(directory: str) -> list[str]:
    """Action types a directory of user actions provides: ``greet.py``/``greet_action.py``."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    types = []
    for name in names:
        if name.endswith(".py") and not name.startswith("_"):
            stem = name[:-3]
            types.append(stem[: -len("_action")] if stem.endswith("_action") else stem)
    return types


class _Builder:
    def __init__(self, doc: LoadedDocument) -> None:
        self.doc = doc
        self.data: dict[str, Any] = doc.data
        self.diagnostics: list[Diagnostic] = []
        self.refs: list[tuple[str, Position, str]] = []

    def pos(self, path: PathKey, *, key: bool = False) -> Position:
        p = self.doc.pos(path, key=key)
        return Position(self.doc.path, p.line, p.col)

    def action(self, raw: Mapping[str, Any], path: PathKey, origin: str) -> Action:
        params: dict[str, Any] = {k: v for k, v in raw.items() if k not in COMMON_KEYS}
        value_pos = {str(k): self.pos((*path, k)) for k in params}
        key_pos = {str(k): self.pos((*path, k), key=True) for k in params}
        nested = raw.get("params")
        if isinstance(nested, Mapping):
            params.update(nested)
            value_pos.update({str(k): self.pos((*path, "params", k)) for k in nested})
            key_pos.update({str(k): self.pos((*path, "params", k), key=True) for k in nested})
        action_type = str(raw["type"])
        description = raw.get("description")
        params = canonical_params(action_type, params)
        spec = BUILTIN_ACTIONS.get(action_type)
        for alias, canonical in (spec.aliases.items() if spec else ()):
            if alias in value_pos:
                value_pos.setdefault(canonical, value_pos[alias])
                key_pos.setdefault(canonical, key_pos[alias])
        branches: tuple[IfBranch, ...] = ()
        if action_type == IF:
            inline = {k for k in raw if k not in COMMON_KEYS}
            branches = self._branches(
                params,
                lambda key: (*path, key) if key in inline else (*path, "params", key),
                origin,
            )
        payload_pos: dict[str, tuple[Position, Position]] = {}
        payload = params.get("payload")
        if action_type == SEND and isinstance(payload, Mapping):
            where = (*path, "payload") if "payload" in raw else (*path, "params", "payload")
            payload_pos = {
                str(key): (self.pos((*where, key), key=True), self.pos((*where, key)))
                for key in payload
            }
        return Action(
            type=action_type,
            params=params,
            pos=self.pos((*path, "type")),
            description=str(description) if description is not None else None,
            origin="transition" if origin == "transition" else "state",
            param_pos=value_pos,
            param_key_pos=key_pos,
            branches=branches,
            payload_pos=payload_pos,
        )

    def _branches(
        self, params: Mapping[str, Any], at: Callable[[str], PathKey], origin: str
    ) -> tuple[IfBranch, ...]:
        """An ``if`` block's branches (``when``/``then``, each ``elif``, ``else``); what the
        schema let through that is not a list of action mappings is left out (the checker
        reports a missing ``when``/``then``, SMC031)."""

        def actions(value: Any, path: PathKey) -> tuple[Action, ...]:
            if not isinstance(value, list):
                return ()
            return tuple(
                self.action(item, (*path, index), origin)
                for index, item in enumerate(value)
                if isinstance(item, Mapping) and "type" in item
            )

        found: list[IfBranch] = []
        when = params.get("when")
        if "when" in params or "then" in params:
            found.append(
                IfBranch(
                    when=None if when is None else str(when),
                    when_pos=self.pos(at("when")) if "when" in params else None,
                    actions=actions(params.get("then"), at("then")),
                    pos=self.pos(at("when" if "when" in params else "then"), key=True),
                )
            )
        elifs = params.get("elif")
        for index, item in enumerate(elifs if isinstance(elifs, list) else ()):
            if not isinstance(item, Mapping):
                continue
            path = (*at("elif"), index)
            found.append(
                IfBranch(
                    when=None if item.get("when") is None else str(item["when"]),
                    when_pos=self.pos((*path, "when")) if "when" in item else None,
                    actions=actions(item.get("then"), (*path, "then")),
                    pos=self.pos(path),
                )
            )
        if "else" in params:
            found.append(
                IfBranch(
                    when=None,
                    when_pos=None,
                    actions=actions(params.get("else"), at("else")),
                    pos=self.pos(at("else"), key=True),
                )
            )
        return tuple(found)

    def build(self) -> Machine:
        data = self.data
        metadata = data.get("metadata") or {}
        name = metadata.get("machine_name") or Path(self.doc.path).stem
        raw_states = data.get("states")

        # ---- states as declared -------------------------------------------------------
        declared: dict[str, dict[str, Any]] = {}
        contract_targets: list[tuple[str, str, PathKey]] = []
        items = state_items(raw_states)
        for item in items:
            if not self._declare(declared, item.name, item.path, item.options, key=item.at_key):
                continue
            declared[item.name]["item"] = item
            for index, target in enumerate(item.options.get("allowed_transitions") or []):
                contract_targets.append(
                    (item.name, str(target), (*item.path, "allowed_transitions", index))
                )

        # ---- transitions --------------------------------------------------------------
        transitions: list[Transition] = []
        transition_actions: list[tuple[str, Action, str | None]] = []
        for index, raw in enumerate(data.get("transitions") or []):
            path: PathKey = ("transitions", index)
            written = raw.get("to")
            # no targets (``to: []``, or no ``to:`` on a transition with actions): targetless
            # (docs/language.md, Statecharts); the model's ``target`` is then its source
            targetless = written is None or written == []
            if targetless and not self._check_targetless(raw, path):
                continue  # refused (SMC076): nothing else to say about it
            if targetless:
                targets = [str(raw["from"])]
                targets_pos = [self.pos((*path, "from"))]
            elif isinstance(written, list):
                targets = [str(t) for t in written]
                targets_pos = [self.pos((*path, "to", i)) for i in range(len(written))]
            else:
                targets = [str(written)]
                targets_pos = [self.pos((*path, "to"))]
            event = None if raw.get("event") is None else str(raw["event"])
            own: list[Action] = []
            for a_index, raw_action in enumerate(raw.get("actions") or []):
                action = self.action(raw_action, (*path, "actions", a_index), "transition")
                if action.pure or action.type == RAISE:
                    # run when the transition is taken: by the class (pure actions), or
                    # resolved by the chart core (``raise``)
                    own.append(action)
                else:
                    transition_actions.append((str(raw["from"]), action, event))
            transition = Transition(
                source=str(raw["from"]),
                target=targets[0],
                event=event,
                pos=self.pos(path),
                index=index,
                source_pos=self.pos((*path, "from")),
                target_pos=targets_pos[0],
                event_pos=self.pos((*path, "event")),
                description=raw.get("description"),
                targets=tuple(targets),
                targets_pos=tuple(targets_pos),
                internal=raw.get("type") == "internal",
                actions=tuple(own),
                targetless=targetless,
                **self._conditions(raw, path),
            )
            transitions.append(transition)
        transitions = self._with_on_transitions(transitions, items)
        offset = len(transitions)
        for n, (source, target, path) in enumerate(contract_targets):
            pos = self.pos(path)
            transitions.append(
                Transition(
                    source,
                    target,
                    contract_event(target),
                    pos,
                    offset + n,
                    source_pos=self.pos(path[:-2], key=True),
                    target_pos=pos,
                    event_pos=pos,
                    synthesized=True,
                )
            )

        # ---- states inferred when there is no `states:` -------------------------------
        if raw_states is None:
            for transition in transitions:
                for state_name, pos in (
                    (transition.source, transition.source_pos),
                    *transition.all_targets,
                ):
                    if state_name != WILDCARD and state_name not in declared:
                        declared[state_name] = {"pos": pos, "declared": False}

        # ---- actions ------------------------------------------------------------------
        actions: dict[str, list[Action]] = {state: [] for state in declared}
        on_exit: dict[str, list[Action]] = {}
        placed: dict[str, StateItem] = {
            name: placed_item
            for name, options in declared.items()
            if (placed_item := options.get("item"))
        }
        for state_name, item in placed.items():
            for key, found in (("on_entry", actions), ("on_exit", on_exit)):
                for index, raw_action in enumerate(item.options.get(key) or []):
                    found.setdefault(state_name, []).append(
                        self.action(raw_action, (*item.path, key, index), "state")
                    )
        for state_name, raw_list in (data.get("actions") or {}).items():
            state_name = str(state_name)
            self.refs.append((state_name, self.pos(("actions", state_name), key=True), "actions"))
            for index, raw_action in enumerate(raw_list or []):
                actions.setdefault(state_name, []).append(
                    self.action(raw_action, ("actions", state_name, index), "state")
                )
        for source, action, event in transition_actions:
            if source == WILDCARD:
                self.diagnostics.append(
                    Diagnostic(
                        self.doc.path,
                        action.pos.line,
                        action.pos.col,
                        "SMC016",
                        f'a `from: "*"` transition carries a {action.type!r} action, '
                        "but actions run in one state",
                        "move the action to the `actions:` of the state that should " "run it",
                    )
                )
                continue
            spec = BUILTIN_ACTIONS.get(action.type)
            takes_success = spec is None or "success" in spec.events
            if takes_success and "success" not in action.params and event is not None:
                action = dataclasses.replace(action, params={**action.params, "success": event})
            actions.setdefault(source, []).append(action)

        # ---- final states -------------------------------------------------------------
        finals: set[str] = set()
        for index, state_name in enumerate(data.get("final_states") or []):
            finals.add(str(state_name))
            self.refs.append((str(state_name), self.pos(("final_states", index)), "final_states"))

        kinds = {name: item_kind(item.options) for name, item in placed.items()}
        states = tuple(
            self._state(state_name, options, finals, placed, kinds, actions, on_exit)
            for state_name, options in declared.items()
        )

        written_initial = data["initial_state"]
        initial_states = (
            tuple(str(name) for name in written_initial)
            if isinstance(written_initial, list)
            else (str(written_initial),)
        )
        return Machine(
            name=str(name),
            path=self.doc.path,
            style=self._style(raw_states, transition_actions),
            initial_state=initial_states[0],
            initial_pos=self.pos(("initial_state",)),
            initial_states=initial_states if len(initial_states) > 1 else (),
            initial_states_pos=(
                tuple(self.pos(("initial_state", i)) for i in range(len(initial_states)))
                if len(initial_states) > 1
                else ()
            ),
            states=states,
            events=self._events(transitions, states),
            transitions=tuple(transitions),
            groups=self._groups(),
            title=data.get("name") or metadata.get("name"),
            description=data.get("description"),
            metadata=dict(metadata),
            template=data.get("template"),
            user_action_types=self._user_action_types(),
            state_refs=tuple(self.refs),
            name_pos=(
                self.pos(("metadata", "machine_name")) if metadata.get("machine_name") else None
            ),
            context=self._context(),
            jobs=self._jobs(),
            source_data=data,
        )

    def _state(
        self,
        state_name: str,
        options: Mapping[str, Any],
        finals: set[str],
        placed: Mapping[str, StateItem],
        kinds: Mapping[str, StateKind],
        actions: Mapping[str, list[Action]],
        on_exit: Mapping[str, list[Action]],
    ) -> State:
        declared_final = bool(options.get("final")) or state_name in finals
        state = State(
            name=state_name,
            pos=options["pos"],
            description=options.get("description"),
            declared_final=declared_final,
            declared=options.get("declared", True),
            actions=tuple(actions.get(state_name, ())),
            on_exit=tuple(on_exit.get(state_name, ())),
        )
        item = placed.get(state_name)
        if item is None:
            return dataclasses.replace(state, kind="final") if declared_final else state
        tree = tree_fields(item, kinds, self.pos)
        return dataclasses.replace(
            state,
            kind="final" if tree.kind == "atomic" and declared_final else tree.kind,
            parent=tree.parent,
            # A child whose name another state took first (SMC011) is not this one's.
            children=tuple(
                c for c in tree.children if c in placed and placed[c].parent == state_name
            ),
            initial=tree.initial,
            initial_pos=tree.initial_pos,
            initials=tree.initials,
            initials_pos=tree.initials_pos,
            initial_actions=self._item_actions(item, "initial_actions"),
            default_actions=self._item_actions(item, "default_actions"),
            history=tree.history,
            history_default=tree.history_default,
            history_default_pos=tree.history_default_pos,
        )

    def _item_actions(self, item: StateItem, key: str) -> tuple[Action, ...]:
        """The actions a state item lists under ``key``."""
        return tuple(
            self.action(raw_action, (*item.path, key, index), "state")
            for index, raw_action in enumerate(item.options.get(key) or [])
        )

    def _check_targetless(self, raw: Mapping[str, Any], path: PathKey) -> bool:
        """Whether a targetless transition can be meant; SMC076 when not: no ``to:`` and no
        ``actions:`` (a forgotten target; ``to: []`` says it), or ``from: "*"``."""
        if raw.get("from") == WILDCARD:
            pos = self.pos((*path, "from"))
            message = 'a targetless transition from `"*"`'
            hint = "write it from the states (or the compound state) that should handle the event"
        elif "to" not in raw and not raw.get("actions"):
            pos = self.pos(path)
            message = "a transition without `to:` and without actions does nothing"
            hint = (
                "name its target in `to:`; to take the event and stay, with nothing to run, "
                "write `to: []`"
            )
        else:
            return True
        self.diagnostics.append(
            Diagnostic(self.doc.path, pos.line, pos.col, "SMC076", message, hint)
        )
        return False

    def _conditions(self, raw: Mapping[str, Any], path: PathKey) -> dict[str, Any]:
        """The ``when:``, ``guard:`` and ``unless:`` of a transition written at ``path``, with
        their positions, as keyword arguments of ``Transition``."""
        found: dict[str, Any] = {}
        for key in ("when", "guard", "unless"):
            value = raw.get(key)
            if value is not None:
                found[key] = str(value)
                found[f"{key}_pos"] = self.pos((*path, key))
        return found

    def _with_on_transitions(
        self, transitions: list[Transition], items: list[StateItem]
    ) -> list[Transition]:
        """``transitions`` and those of the states' ``on:`` mappings, in file order."""
        written = [
            Transition(
                source=entry.source,
                target=entry.targets[0],
                event=entry.event,
                pos=self.pos(entry.path, key=entry.at_key),
                index=0,
                source_pos=self.pos(item.path, key=item.at_key),
                target_pos=self.pos(entry.target_paths[0]),
                event_pos=self.pos(entry.path[: len(item.path) + 2], key=True),
                description=entry.description,
                targets=entry.targets,
                targets_pos=tuple(self.pos(path) for path in entry.target_paths),
                internal=entry.internal,
                **self._conditions(
                    {"when": entry.when, "guard": entry.guard, "unless": entry.unless},
                    entry.path,
                ),
            )
            for item in items
            for entry in on_entries(item)
        ]
        if not written:
            return transitions
        ordered = sorted([*transitions, *written], key=lambda t: (t.pos.line, t.pos.col))
        return [dataclasses.replace(t, index=index) for index, t in enumerate(ordered)]

    def _declare(
        self,
        declared: dict[str, dict[str, Any]],
        state_name: str,
        path: PathKey,
        options: Mapping[str, Any],
        *,
        key: bool = False,
    ) -> bool:
        """Declare a state; False (and SMC011) when the name is taken already."""
        pos = self.pos(path, key=key)
        if state_name in declared:
            first = declared[state_name]["pos"]
            self.diagnostics.append(
                Diagnostic(
                    self.doc.path,
                    pos.line,
                    pos.col,
                    "SMC011",
                    f"state {state_name!r} is declared twice",
                    f"first declared at line {first.line}; remove one",
                )
            )
            return False
        declared[state_name] = {
            "pos": pos,
            "description": options.get("description"),
            "final": options.get("final", False) or options.get("type") == "final",
        }
        return True

    def _events(
        self, transitions: list[Transition], states: tuple[State, ...]
    ) -> tuple[Event, ...]:
        events: dict[str, Event] = {}
        raw = self.data.get("events")
        if isinstance(raw, list):
            for index, event_name in enumerate(raw):
                if str(event_name) not in events:
                    events[str(event_name)] = Event(
                        str(event_name), self.pos(("events", index)), declared=True
                    )
        elif isinstance(raw, dict):
            for event_name, options in raw.items():
                options = options or {}
                context_map = tuple(
                    (str(k), str(v)) for k, v in (options.get("context_map") or {}).items()
                )
                payload = options.get("payload")
                events[str(event_name)] = Event(
                    str(event_name),
                    self.pos(("events", event_name), key=True),
                    declared=True,
                    context_map=context_map,
                    description=options.get("description"),
                    payload_schema=None if payload is None else plain_data(payload),
                    payload_pos=(
                        None
                        if payload is None
                        else self.pos(("events", event_name, "payload"), key=True)
                    ),
                )
        for transition in transitions:
            if transition.event is not None and transition.event not in events:
                events[transition.event] = Event(transition.event, transition.event_pos)
        return tuple(events.values())

    def _context(self) -> tuple[ContextField, ...]:
        """``context:``: each field's schema as written, reduced to plain data (what the
        generated module holds and the checker validates)."""
        fields = []
        for field_name, raw in (self.data.get("context") or {}).items():
            schema = plain_data(raw)
            description = schema.get("description")
            fields.append(
                ContextField(
                    name=str(field_name),
                    schema=schema,
                    pos=self.pos(("context", field_name), key=True),
                    default=schema.get("default"),
                    has_default="default" in schema,
                    description=description if isinstance(description, str) else None,
                    expr=schema["expr"] if isinstance(schema.get("expr"), str) else None,
                    expr_pos=(
                        self.pos(("context", field_name, "expr")) if "expr" in schema else None
                    ),
                )
            )
        return tuple(fields)

    def _jobs(self) -> tuple[JobType, ...]:
        """``jobs:``: each job type with the schema of its data."""
        return tuple(
            JobType(
                name=str(job_type),
                pos=self.pos(("jobs", job_type), key=True),
                data_schema=(
                    None if (options or {}).get("data") is None else plain_data(options["data"])
                ),
                description=(options or {}).get("description"),
            )
            for job_type, options in (self.data.get("jobs") or {}).items()
        )

    def _groups(self) -> tuple[Group, ...]:
        explicit = self.data.get("groups")
        groups: list[Group] = []
        if isinstance(explicit, dict):
            for group_name, members in explicit.items():
                for index, state_name in enumerate(members or []):
                    self.refs.append(
                        (str(state_name), self.pos(("groups", group_name, index)), "groups")
                    )
                groups.append(
                    Group(
                        str(group_name),
                        re.sub(r"\W", "", str(group_name)) or "group",
                        tuple(str(s) for s in members or ()),
                        self.pos(("groups", group_name), key=True),
                    )
                )
            return tuple(groups)
        for title, pos, members in self.doc.comment_groups:
            if not members:
                continue
            group_name = re.sub(r"\s+STATES$", "", title).strip() or title
            group_id = re.sub(r"\W", "", group_name.replace("STATES", "")) or "group"
            groups.append(
                Group(
                    group_name, group_id, tuple(members), Position(self.doc.path, pos.line, pos.col)
                )
            )
        return tuple(groups)

    def _user_action_types(self) -> tuple[str, ...]:
        types = [str(t) for t in self.data.get("action_types") or []]
        root = self.data.get("actions_root")
        if isinstance(root, str):
            types += action_types_in_dir(str(Path(self.doc.path).parent / root))
        return tuple(dict.fromkeys(types))

    def _style(self, raw_states: Any, transition_actions: list[Any]) -> Style:
        if isinstance(raw_states, dict) and any(
            isinstance(options, dict) and "allowed_transitions" in options
            for options in raw_states.values()
        ):
            return "contract"
        return "design" if transition_actions else "engine"


def build_machine(doc: LoadedDocument) -> tuple[Machine, list[Diagnostic]]:
    """Build the model of one schema-valid document."""
    builder = _Builder(doc)
    machine = builder.build()
    return machine, builder.diagnostics
