"""YAML text -> plain data plus the position of every node.

PyYAML's ``SafeLoader`` does the parsing and the construction (so no arbitrary tags, exactly
as ``yaml.safe_load``); this module walks the composed node tree beside it to remember where
each value and each mapping key came from, which PyYAML's plain data forgets. It also finds
what the data cannot show: duplicate keys, and ``# === GROUP ===`` comments inside
``states:`` (comments never reach the node tree, so they are read from the text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from smc.compiler.diagnostics import Diagnostic

PathKey = tuple[str | int, ...]

#: A document with more distinct nodes than this is refused (alias bombs, runaway files).
MAX_NODES = 200_000

_GROUP_COMMENT = re.compile(r"^\s*#\s*===\s*(?P<name>.+?)\s*===\s*$")


@dataclass(frozen=True)
class Pos:
    line: int  # 1-based
    col: int  # 1-based


@dataclass
class LoadedDocument:
    """One YAML file: its data, and where every part of it was written."""

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


def _mark(node: yaml.Node) -> Pos:
    return Pos(node.start_mark.line + 1, node.start_mark.column + 1)


class _Walker:
    def __init__(self, doc: LoadedDocument) -> None:
        self.doc = doc
        self.seen: set[int] = set()
        self.problems: list[Diagnostic] = []

    def walk(self, node: yaml.Node, path: PathKey) -> None:
        self.doc.values.setdefault(path, _mark(node))
        if id(node) in self.seen:  # an alias: its children were recorded at the anchor
            return
        self.seen.add(id(node))
        if len(self.seen) > MAX_NODES:
            raise _TooLarge
        if isinstance(node, yaml.MappingNode):
            names: dict[str, Pos] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = key_node.value
                if key == "<<":  # merge key: positions inside stay at the anchor
                    continue
                if key in names:
                    first = names[key]
                    self.problems.append(
                        Diagnostic(
                            self.doc.path,
                            _mark(key_node).line,
                            _mark(key_node).col,
                            "SMC003",
                            f"key {key!r} appears twice; YAML would silently keep only this one",
                            f"the first {key!r} is at line {first.line}; merge the two",
                        )
                    )
                names[key] = _mark(key_node)
                self.doc.keys.setdefault((*path, key), _mark(key_node))
                self.walk(value_node, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.walk(item, (*path, index))


class _TooLarge(Exception):
    pass


def _yaml_error(path: str, error: yaml.YAMLError) -> Diagnostic:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    message = f"invalid YAML: {problem}"
    if context:
        message += f" ({context})"
    return Diagnostic(path, line, col, "SMC001", message, "fix the YAML syntax at this point")


def load_text(path: str, text: str) -> tuple[LoadedDocument | None, list[Diagnostic]]:
    """Parse one YAML document. Returns ``None`` and the diagnostics when it cannot be used."""
    doc = LoadedDocument(path=path, text=text, data=None)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, [
                Diagnostic(path, 1, 1, "SMC002", "the file holds no YAML document",
                           "a machine needs at least `initial_state` and `transitions`")
            ]
        walker = _Walker(doc)
        walker.walk(node, ())
        data = loader.construct_document(node)
    except _TooLarge:
        return None, [
            Diagnostic(path, 1, 1, "SMC006",
                       f"the document has more than {MAX_NODES:,} nodes (aliases included)",
                       "split the machine, or remove repeated aliases")
        ]
    except yaml.YAMLError as error:
        return None, [_yaml_error(path, error)]
    except RecursionError:
        return None, [
            Diagnostic(path, 1, 1, "SMC006", "the document is nested too deeply", "")
        ]
    finally:
        loader.dispose()
    doc.data = data
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "nothing"
        return None, [
            Diagnostic(path, 1, 1, "SMC002",
                       f"a machine file must be a mapping of keys, but this one holds {kind}",
                       "start with `initial_state: ...` and `transitions: [...]`")
        ]
    doc.comment_groups = _comment_groups(doc, node)
    return doc, walker.problems


def _comment_groups(
    doc: LoadedDocument, root: yaml.Node
) -> list[tuple[str, Pos, list[str]]]:
    """``# === NAME ===`` comments inside a ``states:`` list, with the states after each."""
    if not isinstance(root, yaml.MappingNode):
        return []
    states_node = None
    for key_node, value_node in root.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == "states":
            states_node = value_node
    if not isinstance(states_node, yaml.SequenceNode) or states_node.flow_style:
        return []
    items = [
        (item.start_mark.line, item.value)
        for item in states_node.value
        if isinstance(item, yaml.ScalarNode)
    ]
    if not items:
        return []
    first_line = items[0][0]
    last_line = items[-1][0]
    # Comments between the `states:` key and the first item belong to the list too.
    start = states_node.start_mark.line
    key_line = start
    for key_node, value_node in root.value:
        if value_node is states_node:
            key_line = key_node.start_mark.line
    lines = doc.text.splitlines()
    groups: list[tuple[str, Pos, list[str]]] = []
    current: tuple[str, Pos, list[str]] | None = None
    by_line = dict(items)
    for index in range(min(key_line, first_line), min(last_line + 1, len(lines))):
        match = _GROUP_COMMENT.match(lines[index])
        if match:
            title = match.group("name")
            col = lines[index].index("#") + 1
            current = (title, Pos(index + 1, col), [])
            groups.append(current)
        elif index in by_line and current is not None:
            current[2].append(by_line[index])
    return groups


def load_file(path: str) -> tuple[LoadedDocument | None, list[Diagnostic]]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError as error:
        return None, [Diagnostic(path, 1, 1, "SMC007", f"the file is not UTF-8 text: {error}", "")]
    except OSError as error:
        return None, [Diagnostic(path, 1, 1, "SMC007", f"cannot read the file: {error.strerror}", "")]
    return load_text(path, text)
