"""The worker runtime: runs compiled machines against the job queue and event store.

Never imports ``smc.compiler``: a deployed worker needs only the generated modules and this
package. The main names are loaded lazily (``smc.runtime.store`` stays light for the CLI):

- :class:`Engine`, :class:`StartupError` (``smc.runtime.engine``);
- :func:`load_machine_class` (``smc.runtime.loading``);
- :class:`BaseAction`, :class:`ActionRegistry` (``smc.runtime.actions``).

See ``docs/runtime.md`` and ``docs/actions.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Engine": "smc.runtime.engine",
    "StartupError": "smc.runtime.engine",
    "load_machine_class": "smc.runtime.loading",
    "BaseAction": "smc.runtime.actions",
    "ActionRegistry": "smc.runtime.actions",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'smc.runtime' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
