"""Named guards for ``smc run``: a machine's ``guard:``/``unless:`` conditions are methods
of the generated class that its user writes (the base declares them abstract). A user who
runs the YAML file itself writes each one as a function in an actions directory, found as a
user action is (docs/runtime.md, "Named guards"):

    actions/has_capacity.py:    def has_capacity(machine) -> bool: ...

``with_named_guards`` makes the subclass that has them. A class given as ``module:Class``
that already writes them is used as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from smc.machine import GeneratedMachine
from smc.runtime.loading import LoadError, import_file


class GuardLoadError(Exception):
    """A named guard is not written, or its file does not define it; the message says
    where it was looked for."""


def missing_guards(machine_cls: type[GeneratedMachine]) -> tuple[str, ...]:
    """The named guards ``machine_cls`` does not write (its abstract methods), sorted."""
    return tuple(sorted(getattr(machine_cls, "__abstractmethods__", ())))


def with_named_guards(
    machine_cls: type[GeneratedMachine], actions_dirs: Iterable[str | Path]
) -> type[GeneratedMachine]:
    """``machine_cls``, or a subclass with the named guards it lacks, each the function of
    the same name in ``<dir>/<name>.py`` of the first actions directory that has the
    file."""
    missing = missing_guards(machine_cls)
    if not missing:
        return machine_cls
    directories = [Path(d) for d in actions_dirs]
    methods: dict[str, Any] = {}
    for name in missing:
        methods[name] = _find_guard(name, directories)
    subclass = type(machine_cls.__name__, (machine_cls,), methods)
    subclass.__module__ = machine_cls.__module__
    subclass.__qualname__ = machine_cls.__qualname__
    return subclass


def _find_guard(name: str, directories: list[Path]) -> Any:
    for directory in directories:
        path = directory / f"{name}.py"
        if not path.is_file():
            continue
        try:
            module = import_file(path)
        except LoadError as error:
            raise GuardLoadError(str(error)) from None
        function = getattr(module, name, None)
        if not callable(function):
            raise GuardLoadError(f"{path}: defines no function {name!r} (the named guard)")
        return function
    where = ", ".join(str(d) for d in directories) or "no actions directory"
    raise GuardLoadError(
        f"named guard {name!r} is not written: define `def {name}(machine) -> bool` in "
        f"{name}.py in an actions directory (looked in: {where}), or run a subclass that "
        "writes it (module.py:Class)"
    )


__all__ = ["GuardLoadError", "missing_guards", "with_named_guards"]
