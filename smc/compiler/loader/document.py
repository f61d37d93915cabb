"""A loaded YAML file: its data, and where every value and mapping key was written."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

PathKey = tuple[Hashable, ...]


class Pos(NamedTuple):
    """A 1-based line and column (a tuple: the loader makes one per node)."""

    line: int
    col: int


@dataclass
class LoadedDocument:
    """One YAML file: its data, and where every part of it was written.

    Paths are tuples of mapping keys (as constructed: ``on:`` is ``True``) and list indexes,
    the same paths jsonschema reports, so an error maps straight back to its position.
    """

    path: str
    text: str
    data: Any
    #: Where each value and each mapping key starts, as the parser's marks (0-based line and
    #: column); ``pos`` turns them into positions. Kept as marks because a large machine has
    #: a hundred thousand of them and most are never asked for.
    values: dict[PathKey, Any] = field(default_factory=dict)
    keys: dict[PathKey, Any] = field(default_factory=dict)
    #: Group comments found inside ``states:``: (group title, position, state names).
    comment_groups: list[tuple[str, Pos, list[str]]] = field(default_factory=list)

    @cached_property
    def lines(self) -> list[str]:
        """``text`` split into lines, on first use only."""
        return self.text.splitlines()

    def pos(self, path: PathKey, *, key: bool = False) -> Pos:
        """The position of ``path`` (its key when ``key``), or of its nearest ancestor."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while True:
            found = table.get(probe)
            if found is not None:
                return mark_pos(found)
            if key:  # fall back on the value's own position
                found = self.values.get(probe)
                if found is not None:
                    return mark_pos(found)
            if not probe:
                return Pos(1, 1)
            probe = probe[:-1]


def mark_pos(mark: Any) -> Pos:
    """The 1-based position of a parser mark (0-based line and column)."""
    return Pos(mark.line + 1, mark.column + 1)
