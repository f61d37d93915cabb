"""Loading a generated machine class: ``package.module:Class`` or ``path/to/module.py[:Class]``.

Without ``:Class`` the module must define exactly one machine class (a class with
``INITIAL_STATE`` and ``STATE_ACTIONS``). A file is imported under a name derived from its
path, so two files with the same stem do not collide.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, TypeGuard

from smc.machine import GeneratedMachine


class LoadError(Exception):
    """The target does not name a loadable machine class; the message says why."""


def is_machine_class(value: Any) -> TypeGuard[type[GeneratedMachine]]:
    return (
        inspect.isclass(value)
        and hasattr(value, "INITIAL_STATE")
        and hasattr(value, "STATE_ACTIONS")
        and callable(getattr(value, "fire", None))
    )


def import_file(path: str | os.PathLike[str]) -> ModuleType:
    """Import the Python file ``path`` (once per absolute path)."""
    resolved = Path(path).resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    name = f"smc_machine_{re.sub(r'[^0-9A-Za-z_]', '_', resolved.stem)}_{digest}"
    existing = sys.modules.get(name)
    if existing is not None:
        return existing
    return exec_file(resolved, name, shown_as=path)


def exec_file(
    path: Path, module_name: str, *, shown_as: str | os.PathLike[str] | None = None
) -> ModuleType:
    """Run the Python file ``path`` as the module ``module_name`` (registered in
    ``sys.modules``, removed again if it raises). :class:`LoadError` says why it failed,
    naming the file as ``shown_as`` (default: ``path``). Machine files and user actions are
    both imported through here."""
    shown = path if shown_as is None else shown_as
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"{shown}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[module_name]
        raise LoadError(f"{shown}: import failed: {type(error).__name__}: {error}") from error
    return module


def machine_class_in(
    module: ModuleType, class_name: str | None, where: str
) -> type[GeneratedMachine]:
    """The machine class ``class_name`` of ``module``, or its only machine class."""
    if class_name:
        value = getattr(module, class_name, None)
        if value is None:
            raise LoadError(f"{where}: no class {class_name!r}")
        if not is_machine_class(value):
            raise LoadError(f"{where}: {class_name!r} is not a generated machine class")
        return value
    # dict.fromkeys: one class under two names (a type alias) is one class.
    found = list(
        dict.fromkeys(
            value
            for value in vars(module).values()
            if is_machine_class(value) and value.__module__ == module.__name__
        )
    )
    if len(found) != 1:
        names = ", ".join(sorted(cls.__name__ for cls in found)) or "none"
        raise LoadError(f"{where}: expected exactly one machine class, found {names}; use :Class")
    return found[0]


def load_machine_class(target: str) -> type[GeneratedMachine]:
    """Load ``MODULE:Class``, ``MODULE`` or ``FILE.py[:Class]``."""
    path_part, _, class_name = target.partition(":")
    if path_part.endswith(".py") or os.sep in path_part:
        if not Path(path_part).is_file():
            raise LoadError(f"{path_part}: no such file")
        return machine_class_in(import_file(path_part), class_name or None, path_part)
    try:
        module = importlib.import_module(path_part)
    except ImportError as error:
        raise LoadError(f"cannot import {path_part}: {error}") from error
    return machine_class_in(module, class_name or None, path_part)
