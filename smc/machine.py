"""The small base that every generated machine module imports.

Generated classes are self-contained (their transition table is data in the module); this
module only holds what they share: the exception and the listener type. Keep it import-light:
it is loaded by every generated module and by the worker runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: ``fn(source, event, target)``, called after each transition.
Listener = Callable[[Any, Any, Any], None]


class IllegalTransition(ValueError):
    """An event was fired that the machine does not accept in its current state."""

    def __init__(self, machine: str, state: str, event: str) -> None:
        self.machine = machine
        self.state = str(state)
        self.event = str(event)
        super().__init__(f"{machine}: event {self.event!r} is not allowed in state {self.state!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.machine, self.state, self.event))
