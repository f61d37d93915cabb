"""Finding the class for each action type: user actions, entry points, built-ins.

Lookup order for a type ``t`` (the first found wins, so a user action overrides a built-in):

1. each ``--actions-dir`` directory (default ``./actions`` when it exists): a file ``t.py`` or
   ``t_action.py`` defining a class ``TAction`` (``t`` in PascalCase) or else the only class
   defined there with an ``execute`` method;
2. the ``smc.actions`` entry-point group: an entry point named ``t``;
3. the built-ins (``smc.catalog.BUILTIN_ACTIONS``).

:meth:`ActionRegistry.prepare_actions` resolves every action of a machine class (on entry, and
a statechart's on exit) before anything runs, so an unknown type fails at start-up with the
file, line and column of the action. A statechart's ``raise`` is not a runtime action: the
compiler resolved it into the class, so it is skipped.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

from smc.catalog import BUILTIN_ACTIONS, COMMON_KEYS, REMOVED_ACTIONS
from smc.machine import GeneratedMachine, is_chart
from smc.runtime.actions.builtin import BUILTIN_CLASSES
from smc.runtime.context import has_placeholder
from smc.runtime.loading import LoadError, exec_file

ENTRY_POINT_GROUP = "smc.actions"


class ActionLoadError(Exception):
    """An action type cannot be found or loaded; the message says where and why."""


@dataclass(frozen=True)
class PreparedAction:
    """One action of a state, resolved at start-up."""

    type: str
    cls: Any  # the action class
    #: the action's data from the machine class (type, description, parameters).
    config: Mapping[str, Any]
    source: str  # "path:line:col"
    #: parameter names the engine interpolates before each run (the rest are copied as is).
    interpolated: frozenset[str]
    #: the event that means "this action failed" (fails the current job).
    error_event: str | None


#: Action types a statechart's compiler resolves into the class (``raise``: its event is taken
#: within the same step, through the dispatch table; ``assign``, ``if``, ``send``: the class
#: runs them when the step is taken); never run, never looked up.
COMPILED_ACTIONS = frozenset({"raise", "assign", "if", "send"})


def run_by_class(action_type: str, data: Mapping[str, Any]) -> bool:
    """Whether a statechart's class runs the action itself (docs/language.md, "Actions in
    the class"): a compiled type, or a ``log`` with ``label``/``expr`` (``on_log``); a
    ``log`` with ``message`` is the runtime's."""
    if action_type in COMPILED_ACTIONS:
        return True
    return action_type == "log" and ("label" in data or "expr" in data)


class MachineActions(NamedTuple):
    """A machine's prepared actions, by state name."""

    entry: dict[str, tuple[PreparedAction, ...]]
    #: A statechart's on-exit actions (empty for a flat machine).
    exit: dict[str, tuple[PreparedAction, ...]]


def pascal_case(action_type: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", action_type))


def _builtin_classes() -> dict[str, type[Any]]:
    return dict(BUILTIN_CLASSES)


class ActionRegistry:
    """Resolves action types to classes (see the module docstring)."""

    def __init__(
        self, actions_dirs: Iterable[str | Path] = (), *, entry_points: bool = True
    ) -> None:
        self.actions_dirs = tuple(Path(d) for d in actions_dirs)
        for directory in self.actions_dirs:
            if not directory.is_dir():
                raise ActionLoadError(f"actions directory {directory} does not exist")
        self._builtins = _builtin_classes()
        self._entry_points: dict[str, metadata.EntryPoint] = {}
        if entry_points:
            for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
                self._entry_points.setdefault(entry.name, entry)
        self._cache: dict[str, type[Any] | None] = {}

    def find(self, action_type: str) -> type[Any] | None:
        """The class for ``action_type``, or None when nothing provides it."""
        if action_type not in self._cache:
            self._cache[action_type] = self._find(action_type)
        return self._cache[action_type]

    def _find(self, action_type: str) -> type[Any] | None:
        for directory in self.actions_dirs:
            for name in (f"{action_type}.py", f"{action_type}_action.py"):
                path = directory / name
                if path.is_file():
                    return self._class_from_file(path, action_type)
        entry = self._entry_points.get(action_type)
        if entry is not None:
            try:
                loaded = entry.load()
            except Exception as error:
                raise ActionLoadError(
                    f"cannot load action {action_type!r} from entry point {entry.value}: "
                    f"{type(error).__name__}: {error}"
                ) from error
            if not (inspect.isclass(loaded) and callable(getattr(loaded, "execute", None))):
                raise ActionLoadError(
                    f"entry point {entry.value} for action {action_type!r} is not a class with "
                    "an execute method"
                )
            return loaded
        return self._builtins.get(action_type)

    def _class_from_file(self, path: Path, action_type: str) -> type[Any]:
        safe_stem = re.sub(r"\W", "_", path.stem)
        module = _import_file(path, f"smc_user_actions.{safe_stem}")
        wanted = f"{pascal_case(action_type)}Action"
        candidate = getattr(module, wanted, None)
        if inspect.isclass(candidate) and callable(getattr(candidate, "execute", None)):
            return candidate
        defined = [
            value
            for value in vars(module).values()
            if inspect.isclass(value)
            and value.__module__ == module.__name__
            and callable(getattr(value, "execute", None))
        ]
        if len(defined) == 1:
            return defined[0]
        found = ", ".join(sorted(cls.__name__ for cls in defined)) or "none"
        raise ActionLoadError(
            f"{path}: expected a class {wanted} (or exactly one class with an execute method) "
            f"for action {action_type!r}; found: {found}"
        )

    def prepare(self, machine_cls: type[GeneratedMachine]) -> dict[str, tuple[PreparedAction, ...]]:
        """Resolve every action of ``machine_cls``; the on-entry ones, by state. Raises
        :class:`ActionLoadError` as :meth:`prepare_actions` does."""
        return self.prepare_actions(machine_cls).entry

    def prepare_actions(self, machine_cls: type[GeneratedMachine]) -> MachineActions:
        """Resolve every action of ``machine_cls``, on entry and (a statechart's) on exit;
        raise :class:`ActionLoadError` listing each unknown type as
        ``path:line:col: unknown action type 't' in state 's'``.

        A statechart's ``raise`` items are left out: the compiler resolved them into the
        class's dispatch table, so there is nothing to run for them."""
        problems: list[str] = []
        chart = is_chart(machine_cls)
        entry = self._prepare_table(
            machine_cls,
            machine_cls.STATE_ACTIONS,
            getattr(machine_cls, "ACTION_SOURCES", {}),
            chart,
            "",
            problems,
        )
        exit_ = self._prepare_table(
            machine_cls,
            getattr(machine_cls, "EXIT_ACTIONS", {}),
            getattr(machine_cls, "EXIT_ACTION_SOURCES", {}),
            chart,
            " (on_exit)",
            problems,
        )
        if problems:
            raise ActionLoadError("\n".join(problems))
        return MachineActions(entry, exit_)

    def _prepare_table(
        self,
        machine_cls: type[GeneratedMachine],
        actions_by_state: Mapping[Any, Any],
        sources_by_state: Mapping[Any, Any],
        chart: bool,
        where: str,
        problems: list[str],
    ) -> dict[str, tuple[PreparedAction, ...]]:
        prepared: dict[str, tuple[PreparedAction, ...]] = {}
        for state, actions in actions_by_state.items():
            sources = tuple(sources_by_state.get(state, ()))
            items: list[PreparedAction] = []
            for index, data in enumerate(actions):
                source = sources[index] if index < len(sources) else f"<{machine_cls.__name__}>"
                action_type = str(data.get("type", ""))
                if chart and run_by_class(action_type, data):
                    continue
                try:
                    cls = self.find(action_type)
                except ActionLoadError as error:
                    problems.append(f"{source}: {error}")
                    continue
                if cls is None:
                    message = (
                        f"{source}: unknown action type {action_type!r} in state "
                        f"{str(state)!r}{where}"
                    )
                    hint = REMOVED_ACTIONS.get(action_type)
                    if hint:
                        message += f" ({hint})"
                    problems.append(message)
                    continue
                items.append(_prepare(action_type, cls, data, source))
            prepared[str(state)] = tuple(items)
        return prepared


def _prepare(
    action_type: str, cls: type[Any], data: Mapping[str, Any], source: str
) -> PreparedAction:
    config = dict(data)
    nested = config.pop("params", None)
    if isinstance(nested, Mapping):  # a hand-written class may still carry params: nested
        for key, value in nested.items():
            config.setdefault(key, value)
    raw: frozenset[str] = getattr(cls, "RAW_PARAMS", frozenset())
    interpolated = frozenset(
        key
        for key, value in config.items()
        if key not in COMMON_KEYS and key not in raw and has_placeholder(value)
    )
    error_event: str | None
    spec = BUILTIN_ACTIONS.get(action_type)
    if "error" in config:
        error_event = None if config["error"] in (None, "") else str(config["error"])
    elif spec is not None:
        error_event = spec.events.get("error")
    else:
        error_event = "error"  # a user action reports failure as "error" unless told otherwise
    return PreparedAction(
        type=action_type,
        cls=cls,
        config=config,
        source=source,
        interpolated=interpolated,
        error_event=error_event,
    )


def _import_file(path: Path, module_name: str) -> ModuleType:
    """Import a Python file as ``module_name`` (its directory is put on ``sys.path`` so it can
    import its neighbours)."""
    directory = str(path.parent.resolve())
    if directory not in sys.path:
        sys.path.insert(0, directory)
    try:
        return exec_file(path, module_name)
    except LoadError as error:
        raise ActionLoadError(str(error)) from error.__cause__


def default_actions_dirs(given: Iterable[str]) -> tuple[str, ...]:
    """``given``, or ``./actions`` when none is given and it exists."""
    dirs = tuple(given)
    if dirs:
        return dirs
    return ("actions",) if Path("actions").is_dir() else ()
