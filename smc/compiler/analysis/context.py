"""What every check is given, and the helpers checks share to word a diagnostic.

:class:`Context` holds what is known across all the machines checked together; a diagnostic's
hint often offers the closest known name (:func:`did_you_mean`, :func:`closest`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata

from smc.compiler.diagnostics import Diagnostic
from smc.compiler.model import Machine, Position

#: The entry-point group the runtime's action registry looks user actions up in.
ENTRY_POINT_GROUP = "smc.actions"


@dataclass(frozen=True)
class Context:
    """What every check is given besides its machine: what is known across all the machines
    checked together, and where user actions may come from."""

    machines: dict[str, Machine]  # by machine name (the first, when names collide)
    extra_action_types: frozenset[str]
    #: machine name -> the events other machines send it with ``send_event``.
    sent_to: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: True when the checker knows every place user actions come from: action directories
    #: were given, or the caller is ``smc run``, whose directories are all there is.
    user_actions_known: bool = False

    @cached_property
    def entry_point_types(self) -> frozenset[str]:
        """Action types of the ``smc.actions`` entry-point group, which the runtime finds too.
        Looked up once, and only when an action type is neither built in nor declared (reading
        the installed distributions takes tens of milliseconds)."""
        return frozenset(entry.name for entry in metadata.entry_points(group=ENTRY_POINT_GROUP))


def diagnostic(pos: Position, code: str, message: str, hint: str = "") -> Diagnostic:
    """A diagnostic at ``pos`` (the line and column of the YAML it is about)."""
    return Diagnostic(pos.path, pos.line, pos.col, code, message, hint)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    options = sorted({str(candidate) for candidate in candidates})
    close = difflib.get_close_matches(str(name), options, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def closest(name: str, candidates: Sequence[str]) -> str | None:
    """The candidate ``name`` most looks like a misspelling of, if any is close enough."""
    close = difflib.get_close_matches(str(name), sorted(candidates), n=1, cutoff=0.6)
    return close[0] if close else None
