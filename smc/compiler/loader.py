"""YAML text -> plain data plus the position of every node.

PyYAML's ``SafeLoader`` does the parsing and the construction (so no arbitrary tags, exactly
as ``yaml.safe_load``); this module walks the composed node tree beside it to remember where
each value and each mapping key came from, which PyYAML's plain data forgets. It also finds
what the data cannot show: duplicate keys, aliases that expand a small file into a huge
document, and ``# === GROUP ===`` comments inside ``states:`` (comments never reach the node
tree, so they are read from the text).
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from smc.compiler.diagnostics import Diagnostic

PathKey = tuple[Hashable, ...]

#: A document whose data, with every alias expanded, has more nodes than this is refused
#: (alias bombs, runaway files). Later stages walk the expanded data, so this bounds them.
MAX_NODES = 1_000_000
#: Machines are shallow (the deepest real path is about 8 levels); this bounds recursion in
#: every later stage, far below Python's recursion limit.
MAX_DEPTH = 64

_GROUP_COMMENT = re.compile(r"^\s*#\s*===\s*(?P<name>.+?)\s*===\s*$")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


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
    values: dict[PathKey, Pos] = field(default_factory=dict)
    keys: dict[PathKey, Pos] = field(default_factory=dict)
    #: Group comments found inside ``states:``: (group title, position, state names).
    comment_groups: list[tuple[str, Pos, list[str]]] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def pos(self, path: PathKey, *, key: bool = False) -> Pos:
        """The position of ``path`` (its key when ``key``), or of its nearest ancestor."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while True:
            found = table.get(probe)
            if found is not None:
                return found
            if key:  # fall back on the value's own position
                found = self.values.get(probe)
                if found is not None:
                    return found
            if not probe:
                return Pos(1, 1)
            probe = probe[:-1]


def _mark(mark: yaml.Mark) -> Pos:
    return Pos(mark.line + 1, mark.column + 1)


class _PositionComposer(Composer):
    """A composer that also remembers where each alias was written: PyYAML returns the
    anchored node for an alias, so without this a problem inside ``*ref`` would point at the
    anchor instead of the place that used it."""

    def __init__(self) -> None:
        super().__init__()
        #: (id(parent node), index or ("value", id(key node))) -> where the alias is.
        self.alias_marks: dict[tuple[int, Hashable], yaml.Mark] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        # check_event and peek_event come from the parser this composer is combined with.
        if (
            parent is not None
            and index is not None
            and self.check_event(yaml.AliasEvent)  # type: ignore[attr-defined]
        ):
            slot: Hashable = index if isinstance(index, int) else ("value", id(index))
            event = self.peek_event()  # type: ignore[attr-defined]
            self.alias_marks[(id(parent), slot)] = event.start_mark
        node: yaml.Node = super().compose_node(parent, index)  # type: ignore[assignment]
        return node


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _PositionLoader(_PositionComposer, CParser, SafeConstructor, Resolver):
        """libyaml scans and parses (about 6x faster than PyYAML's pure-Python parser, which
        dominates the cost of checking a large machine); composing stays in Python so the
        alias positions can be recorded."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _PositionComposer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

else:  # pragma: no cover - PyYAML built without libyaml

    class _PositionLoader(  # type: ignore[no-redef]
        Reader, Scanner, Parser, _PositionComposer, SafeConstructor, Resolver
    ):
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            _PositionComposer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)


class _TooLarge(Exception):
    def __init__(self, pos: Pos, message: str, hint: str) -> None:
        super().__init__(message)
        self.pos, self.message, self.hint = pos, message, hint


class _Walker:
    """Records positions, finds duplicate keys, and bounds depth and expanded size."""

    def __init__(self, doc: LoadedDocument, loader: _PositionLoader) -> None:
        self.doc = doc
        self.loader = loader
        #: id(node) -> its size with aliases expanded; absent while the node is being walked.
        self.sizes: dict[int, int] = {}
        self.in_progress: set[int] = set()
        self.problems: list[Diagnostic] = []

    def key_of(self, key_node: yaml.Node) -> Hashable:
        """The key as the data will hold it (``on`` -> True, ``1`` -> 1)."""
        if key_node.tag == _STR_TAG:  # the common case, without the constructor's overhead
            return str(key_node.value)
        if isinstance(key_node, yaml.ScalarNode):
            try:
                value = self.loader.construct_object(key_node)
            except yaml.YAMLError:
                return str(key_node.value)
            if isinstance(value, Hashable):
                return value
        return str(getattr(key_node, "value", ""))

    def walk(self, node: yaml.Node, path: PathKey, mark: yaml.Mark, depth: int) -> int:
        """Walk ``node`` (written at ``mark``); returns its expanded size."""
        self.doc.values.setdefault(path, _mark(mark))
        node_id = id(node)
        if node_id in self.sizes:  # an alias of a node already walked
            return self.sizes[node_id]
        if node_id in self.in_progress:
            raise _TooLarge(
                _mark(mark),
                "an alias refers to a value that contains it (a recursive structure)",
                "a machine is a tree: copy the part you meant instead of aliasing it",
            )
        if depth > MAX_DEPTH:
            raise _TooLarge(
                _mark(mark),
                f"the document is nested more than {MAX_DEPTH} levels deep",
                "a machine needs only a few levels; flatten this value",
            )
        self.in_progress.add(node_id)
        size = 1
        if isinstance(node, yaml.MappingNode):
            names: dict[Hashable, Pos] = {}
            first_text: dict[Hashable, str] = {}
            merges = []
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:  # `<<: *base`: walked after the own keys
                    merges.append((key_node, value_node))
                    continue
                key = self.key_of(key_node)
                key_pos = _mark(key_node.start_mark)
                first = names.get(key)
                if first is not None:
                    same = f"key {key_node.value!r} appears twice in this mapping"
                    if first_text[key] != key_node.value:  # `on` and `true`, `1` and `01`
                        same = (
                            f"key {key_node.value!r} is the same key as {first_text[key]!r} once "
                            "YAML reads them (on/off/yes/no are booleans, 1 equals true)"
                        )
                    self.problems.append(
                        Diagnostic(
                            self.doc.path,
                            key_pos.line,
                            key_pos.col,
                            "SMC003",
                            f"{same}; YAML would silently keep only the last one",
                            f"the first is at line {first.line}; merge the two",
                        )
                    )
                else:
                    names[key] = key_pos
                    first_text[key] = str(key_node.value)
                self.doc.keys.setdefault((*path, key), key_pos)
                child_mark = self._child_mark(node, key_node, value_node)
                size += self.walk(value_node, (*path, key), child_mark, depth + 1)
            # Merged keys the mapping does not override keep their anchor's positions.
            for key_node, value_node in merges:
                child_mark = self._child_mark(node, key_node, value_node)
                size += self.walk(value_node, path, child_mark, depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                size += self.walk(
                    item, (*path, index), self._child_mark(node, index, item), depth + 1
                )
        self.in_progress.discard(node_id)
        if size > MAX_NODES:
            raise _TooLarge(
                _mark(mark),
                f"this value expands to more than {MAX_NODES:,} nodes once its aliases are "
                "expanded",
                "split the machine, or remove repeated aliases",
            )
        self.sizes[node_id] = size
        return size

    def _child_mark(self, parent: yaml.Node, index: Any, child: yaml.Node) -> yaml.Mark:
        if not self.loader.alias_marks:
            return child.start_mark
        slot: Hashable = index if isinstance(index, int) else ("value", id(index))
        return self.loader.alias_marks.get((id(parent), slot), child.start_mark)


def _yaml_error(path: str, text: str, error: yaml.YAMLError) -> Diagnostic:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = str(getattr(error, "problem", None) or str(error).splitlines()[0])
    context = getattr(error, "context", None)
    message = f"invalid YAML: {problem}"
    if context:
        message += f" ({context})"
    at = mark.index if mark is not None else -1
    hint = "fix the YAML syntax at this point"
    if "'\\t'" in problem or (0 <= at < len(text) and text[at] == "\t"):
        hint = "YAML does not allow tabs for indentation: indent with spaces"
    elif "constructor for the tag" in problem:
        hint = "smc reads plain YAML only (as yaml.safe_load): remove the tag"
    elif "another document" in problem:
        hint = "one machine per file: move the second document (after `---`) to its own file"
    elif "unhashable key" in problem:
        hint = "a mapping key must be a plain name, not a list or a mapping"
    return Diagnostic(path, line, col, "SMC001", message, hint)


def load_text(path: str, text: str) -> tuple[LoadedDocument | None, list[Diagnostic]]:
    """Parse one YAML document. Returns ``None`` and the diagnostics when it cannot be used."""
    doc = LoadedDocument(path=path, text=text, data=None)
    loader = _PositionLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, [
                Diagnostic(
                    path,
                    1,
                    1,
                    "SMC002",
                    "the file holds no YAML document",
                    "a machine needs at least `initial_state` and `transitions`",
                )
            ]
        walker = _Walker(doc, loader)
        walker.walk(node, (), node.start_mark, 0)
        data = loader.construct_document(node)
    except _TooLarge as error:
        return None, [
            Diagnostic(path, error.pos.line, error.pos.col, "SMC006", error.message, error.hint)
        ]
    except yaml.YAMLError as error:
        return None, [_yaml_error(path, text, error)]
    except RecursionError:  # PyYAML's own recursion, before the depth check can run
        return None, [
            Diagnostic(
                path,
                1,
                1,
                "SMC006",
                "the document is nested too deeply to read",
                "a machine needs only a few levels; flatten it",
            )
        ]
    finally:
        loader.dispose()
    doc.data = data
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a single {type(data).__name__} value"
        return None, [
            Diagnostic(
                path,
                doc.pos(()).line,
                doc.pos(()).col,
                "SMC002",
                f"a machine file must be a mapping of keys, but this one holds {kind}",
                "start with `initial_state: ...` and `transitions: [...]`",
            )
        ]
    doc.comment_groups = _comment_groups(doc, node)
    return doc, walker.problems


def _comment_groups(doc: LoadedDocument, root: yaml.Node) -> list[tuple[str, Pos, list[str]]]:
    """``# === NAME ===`` comments inside a ``states:`` list, with the states after each.

    One pass over the lines from the ``states:`` key to its last item, so linear in the file.
    """
    if not isinstance(root, yaml.MappingNode):
        return []
    states_key = states_node = None
    for key_node, value_node in root.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == "states":
            states_key, states_node = key_node, value_node
    if states_key is None or not isinstance(states_node, yaml.SequenceNode):
        return []
    if states_node.flow_style:
        return []
    by_line: dict[int, str] = {}
    for item in states_node.value:
        if isinstance(item, yaml.ScalarNode):
            by_line[item.start_mark.line] = str(item.value)
        elif isinstance(item, yaml.MappingNode):  # `- name: x` with options
            for key_node, value_node in item.value:
                if key_node.value == "name" and isinstance(value_node, yaml.ScalarNode):
                    by_line[item.start_mark.line] = str(value_node.value)
    if not by_line:
        return []
    lines = doc.text.splitlines()
    groups: list[tuple[str, Pos, list[str]]] = []
    current: tuple[str, Pos, list[str]] | None = None
    for index in range(states_key.start_mark.line, min(max(by_line) + 1, len(lines))):
        match = _GROUP_COMMENT.match(lines[index])
        if match:
            current = (match.group("name"), Pos(index + 1, lines[index].index("#") + 1), [])
            groups.append(current)
        elif index in by_line and current is not None:
            current[2].append(by_line[index])
    return groups


def load_file(path: str) -> tuple[LoadedDocument | None, list[Diagnostic]]:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        return None, [
            Diagnostic(path, 1, 1, "SMC007", f"cannot read the file: {error.strerror}", "")
        ]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        col = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        return None, [
            Diagnostic(
                path,
                line,
                col,
                "SMC007",
                f"the file is not UTF-8 text: byte 0x{raw[error.start]:02x} cannot be decoded",
                "save the file as UTF-8",
            )
        ]
    return load_text(path, text)
