"""The statechart syntax of a machine file: state items nested in state items.

A state's item may hold its own ``states:`` (a compound state; ``parallel: true`` makes each
child a region), ``initial:``, ``history: shallow|deep`` (a pseudo-state, with an optional
default ``to:``), ``final: true``, ``on_entry:``/``on_exit:`` actions and an ``on:`` mapping of
event to target (or to ``{to, when, guard, unless, type, description}``, or to a list of those
mappings: an if/else chain tried in order). The same keys work in both forms of
``states:`` (a list of items, or a mapping of name to options); the mapping form also takes
the xstate-like spelling of the corpus (``type: composite``, ``initial_state:``), with its
evident meaning.

Two steps, either side of the schema:

- :func:`prepare` (before it, on the loaded document): YAML 1.1 reads an unquoted ``on:`` key
  as the boolean True; inside state items the key is renamed ``"on"``, with its positions, so
  the schema and everything after it see the key as written. xstate keys that smc spells
  differently (``entry``, ``always``, ...) are reported with the smc spelling (SMC005).
- :func:`state_items` and :func:`tree_fields` (after it, on valid data): the tree, walked in
  document order, parents before their children, for :mod:`~smc.compiler.normalize`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from smc.compiler.diagnostics import Diagnostic
from smc.compiler.loader import LoadedDocument, PathKey
from smc.compiler.model import HistoryKind, Position, StateKind

#: xstate keys with an smc spelling: key -> what to write instead.
_XSTATE_KEYS: Mapping[str, str] = {
    "entry": "write the actions under `on_entry:`",
    "exit": "write the actions under `on_exit:`",
    "always": "write an eventless transition: a `transitions:` entry with no `event:`",
    "after": "write a `timeout(N)` event: `on: {timeout(5): next}`",
    "invoke": "start the other machine with a `start_fsm` action in `on_entry:`",
}

#: ``type:`` values of the mapping form that mean a compound state.
_COMPOUND_TYPES = ("compound", "composite")


def _state_options(data: Mapping[Any, Any]) -> Iterator[tuple[PathKey, dict[Any, Any]]]:
    """Every state item that is a mapping, at any depth, with its path (unvalidated data:
    anything that is not a list or mapping of items is passed over)."""
    stack: list[tuple[PathKey, Any]] = [(("states",), data.get("states"))]
    while stack:
        path, states = stack.pop()
        entries: list[tuple[PathKey, Any]]
        if isinstance(states, list):
            entries = [((*path, index), item) for index, item in enumerate(states)]
        elif isinstance(states, dict):
            entries = [((*path, key), value) for key, value in states.items()]
        else:
            continue
        for item_path, options in entries:
            if isinstance(options, dict):
                yield item_path, options
                stack.append(((*item_path, "states"), options.get("states")))


def prepare(doc: LoadedDocument) -> list[Diagnostic]:
    """Rename the boolean ``on`` keys of state items to ``"on"`` (with their positions) and
    report xstate keys smc spells differently (SMC005)."""
    renamed: set[PathKey] = set()
    problems: list[Diagnostic] = []
    for path, options in _state_options(doc.data):
        keys = list(options)
        if any(key is True for key in keys) and "on" not in options:
            items = list(options.items())
            options.clear()
            options.update(("on" if key is True else key, value) for key, value in items)
            renamed.add((*path, True))
        for key in keys:
            if isinstance(key, str) and key in _XSTATE_KEYS:
                pos = doc.pos((*path, key), key=True)
                problems.append(
                    Diagnostic(
                        doc.path,
                        pos.line,
                        pos.col,
                        "SMC005",
                        f"`{key}:` is xstate's spelling, which smc does not read",
                        _XSTATE_KEYS[key],
                    )
                )
    if renamed:
        for table in (doc.values, doc.keys):
            _rename_paths(table, renamed)
    return problems


def _rename_paths(table: dict[PathKey, Any], renamed: set[PathKey]) -> None:
    """Move every position under a renamed ``(..., True)`` prefix to ``(..., "on")``."""
    moved: dict[PathKey, Any] = {}
    for path in list(table):
        parts = list(path)
        changed = False
        for index, part in enumerate(parts):
            if part is True and tuple(path[: index + 1]) in renamed:
                parts[index] = "on"
                changed = True
        if changed:
            moved[tuple(parts)] = table.pop(path)
    table.update(moved)


def name_mappings(data: Mapping[Any, Any]) -> Iterator[tuple[PathKey, Any, str]]:
    """Mappings inside state items whose keys are names (nested ``states:`` of the mapping
    form, ``on:``), as (path, mapping, what the keys name), for the schema's check that no
    such key is a boolean or a number."""
    for path, options in _state_options(data):
        for key, what in (("states", "state"), ("on", "event")):
            if isinstance(options.get(key), dict):
                yield (*path, key), options[key], what


# ---- the tree, from valid data --------------------------------------------------------


@dataclass(frozen=True)
class StateItem:
    """One state as written: its name, where (``at_key``: the mapping form, whose name is a
    key), its options (empty for a bare name) and its place in the tree."""

    name: str
    path: PathKey
    at_key: bool
    options: Mapping[str, Any]
    parent: str | None
    children: tuple[str, ...]


def _entries(states: Any, path: PathKey) -> list[tuple[str, PathKey, bool, Mapping[str, Any]]]:
    if isinstance(states, list):
        return [
            (
                str(item["name"] if isinstance(item, dict) else item),
                (*path, index),
                False,
                item if isinstance(item, dict) else {},
            )
            for index, item in enumerate(states)
        ]
    if isinstance(states, dict):
        return [(str(name), (*path, name), True, options or {}) for name, options in states.items()]
    return []


def state_items(raw_states: Any) -> list[StateItem]:
    """Every state item of a valid ``states:``, in document order (a parent before its
    children), in either form."""
    found: list[StateItem] = []

    def walk(states: Any, path: PathKey, parent: str | None) -> None:
        for name, item_path, at_key, options in _entries(states, path):
            inner = options.get("states")
            children = tuple(child for child, *_ in _entries(inner, (*item_path, "states")))
            found.append(StateItem(name, item_path, at_key, options, parent, children))
            walk(inner, (*item_path, "states"), name)

    walk(raw_states, ("states",), None)
    return found


def item_kind(options: Mapping[str, Any]) -> StateKind:
    """What an item declares itself to be (``final_states:`` is applied by the caller)."""
    declared_type = options.get("type")
    if "history" in options or declared_type == "history":
        return "history"
    if options.get("parallel") or declared_type == "parallel":
        return "parallel"
    if "states" in options or declared_type in _COMPOUND_TYPES:
        return "compound"
    if options.get("final") or declared_type == "final":
        return "final"
    return "atomic"


@dataclass(frozen=True)
class TreeFields:
    """The statechart fields of one :class:`~smc.compiler.model.State`."""

    kind: StateKind
    parent: str | None
    children: tuple[str, ...]
    initial: str | None
    initial_pos: Position | None
    history: HistoryKind | None
    history_default: tuple[str, ...]
    history_default_pos: tuple[Position, ...]
    initials: tuple[str, ...] = ()
    initials_pos: tuple[Position, ...] = ()


def tree_fields(
    item: StateItem, kinds: Mapping[str, StateKind], pos: Callable[[PathKey], Position]
) -> TreeFields:
    """The tree fields of ``item``; ``kinds`` are every state's kind (for the default
    initial child, the first that is not a history pseudo-state); ``pos`` turns a path into
    a position."""
    options = item.options
    kind = item_kind(options)
    initial: str | None = None
    initial_pos: Position | None = None
    initials: tuple[str, ...] = ()
    initials_pos: tuple[Position, ...] = ()
    for key in ("initial", "initial_state"):
        written = options.get(key)
        if isinstance(written, list) and written:  # several descendants (a statechart)
            initials = tuple(str(name) for name in written)
            initials_pos = tuple(pos((*item.path, key, i)) for i in range(len(written)))
            initial, initial_pos = initials[0], pos((*item.path, key))
            break
        if key in options:
            initial, initial_pos = str(written), pos((*item.path, key))
            break
    if initial is None and kind == "compound":
        initial = next((c for c in item.children if kinds.get(c) != "history"), None)
    history: HistoryKind | None = None
    defaults: tuple[str, ...] = ()
    defaults_pos: tuple[Position, ...] = ()
    if kind == "history":
        history = "deep" if options.get("history") == "deep" else "shallow"
        written = options.get("to")
        if isinstance(written, str):
            defaults, defaults_pos = (written,), (pos((*item.path, "to")),)
        elif isinstance(written, list):
            defaults = tuple(str(target) for target in written)
            defaults_pos = tuple(pos((*item.path, "to", i)) for i in range(len(written)))
    return TreeFields(
        kind=kind,
        parent=item.parent,
        children=item.children,
        initial=initial,
        initial_pos=initial_pos,
        history=history,
        history_default=defaults,
        history_default_pos=defaults_pos,
        initials=initials if len(initials) > 1 else (),
        initials_pos=initials_pos if len(initials) > 1 else (),
    )


@dataclass(frozen=True)
class OnEntry:
    """One transition of a state's ``on:`` mapping: ``event: target``, ``event: {to, when,
    guard, unless, type, description}``, or one mapping of ``event: [{...}, {...}]``."""

    source: str
    event: str
    targets: tuple[str, ...]
    internal: bool
    description: str | None
    #: the path of the transition (the event key, or the list item), and of each target.
    path: PathKey
    target_paths: tuple[PathKey, ...]
    #: True when ``path`` is the event key (a key's position, not a value's).
    at_key: bool = True
    #: the conditions as written (None when absent); each value is at ``(*path, key)``.
    when: str | None = None
    guard: str | None = None
    unless: str | None = None


def on_entries(item: StateItem) -> list[OnEntry]:
    """The transitions written in ``item``'s ``on:`` mapping, in order."""
    on = item.options.get("on")
    if not isinstance(on, dict):
        return []
    found = []
    for event, spec in on.items():
        key_path: PathKey = (*item.path, "on", event)
        written: list[tuple[PathKey, Any, bool]]
        if isinstance(spec, list) and spec and all(isinstance(one, dict) for one in spec):
            written = [((*key_path, index), one, False) for index, one in enumerate(spec)]
        else:
            written = [(key_path, spec, True)]
        for path, one, at_key in written:
            options = one if isinstance(one, dict) else {"to": one}
            to_path: PathKey = (*path, "to") if isinstance(one, dict) else path
            to = options.get("to")
            if isinstance(to, list):
                targets = tuple(str(target) for target in to)
                target_paths = tuple((*to_path, i) for i in range(len(to)))
            else:
                targets, target_paths = (str(to),), (to_path,)
            description = options.get("description")
            found.append(
                OnEntry(
                    source=item.name,
                    event=str(event),
                    targets=targets,
                    internal=options.get("type") == "internal",
                    description=str(description) if description is not None else None,
                    path=path,
                    target_paths=target_paths,
                    at_key=at_key,
                    when=_text(options.get("when")),
                    guard=_text(options.get("guard")),
                    unless=_text(options.get("unless")),
                )
            )
    return found


def _text(value: Any) -> str | None:
    # The schema makes every condition a string; None when it is not written.
    return None if value is None else str(value)
