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
from functools import cached_property
from typing import Any, NamedTuple

import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

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
                return _pos(found)
            if key:  # fall back on the value's own position
                found = self.values.get(probe)
                if found is not None:
                    return _pos(found)
            if not probe:
                return Pos(1, 1)
            probe = probe[:-1]


def _event_source(text: str) -> Any:
    """The parser's event stream: libyaml's when PyYAML was built with it (several times
    faster), else PyYAML's pure-Python parser, which gives the same events and marks."""
    if yaml.__with_libyaml__:
        from yaml._yaml import CParser

        return CParser(text)
    return yaml.SafeLoader(text)  # pragma: no cover - PyYAML built without libyaml


_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_SET_TAG = "tag:yaml.org,2002:set"
_PAIRS_TAGS = ("tag:yaml.org,2002:omap", "tag:yaml.org,2002:pairs")
_NO_KEY = object()


class _TooLarge(Exception):
    def __init__(self, pos: Pos, message: str, hint: str) -> None:
        super().__init__(message)
        self.pos, self.message, self.hint = pos, message, hint


class _Frame:
    """A mapping or sequence being built."""

    __slots__ = (
        "anchor",
        "is_map",
        "items",
        "key",
        "key_is_merge",
        "key_mark",
        "mark",
        "merges",
        "names",
        "path",
        "size",
        "tag",
    )

    def __init__(
        self, is_map: bool, path: PathKey | None, mark: Any, anchor: str | None, tag: str
    ) -> None:
        self.is_map = is_map
        self.path = path  # None for a mapping key (keys have no path)
        self.mark = mark
        self.anchor = anchor
        self.tag = tag
        self.items: list[Any] = []
        self.size = 1
        self.key: Any = _NO_KEY
        self.key_mark: Any = None
        self.key_is_merge = False
        self.merges: list[Any] = []
        self.names: dict[Hashable, tuple[Any, str]] = {}


class _Builder:
    """Builds the data straight from the parser's events, as ``yaml.safe_load`` would, while
    recording where every value and key was written, finding duplicate keys, and bounding
    depth and expanded size.

    One pass and no node tree: PyYAML's composer and constructor build a ``Node`` per value
    and then walk it again, which costs about five times the parsing itself on a large
    machine. Scalars are resolved and constructed by PyYAML's own ``Resolver`` and
    ``SafeConstructor``, so every value (booleans, numbers, timestamps, tags refused) is
    exactly what ``safe_load`` gives.
    """

    def __init__(self, doc: LoadedDocument) -> None:
        self.doc = doc
        self.resolver = Resolver()
        self.constructor = SafeConstructor()
        #: anchor -> (value, expanded size); an anchor is added when its value is complete.
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.open_anchors: dict[str, Any] = {}
        self.problems: list[Diagnostic] = []
        self.lines: list[str] | None = None

    def build(self, events: Any) -> tuple[bool, Any]:
        """(False, None) for a stream with no document, else (True, data)."""
        events.get_event()  # StreamStart
        if events.check_event(yaml.StreamEndEvent):
            return False, None
        document = events.get_event()  # DocumentStart
        stack: list[_Frame] = []
        root: list[Any] = []
        values = self.doc.values
        #: plain scalar text -> its resolved tag (names repeat: from, to, event, states...)
        plain_tags: dict[str, str] = {}
        while True:
            event = events.get_event()
            kind = event.__class__
            if kind is yaml.ScalarEvent and event.anchor is None:  # the common case, inlined
                parent = stack[-1] if stack else None
                path = self._child_path(parent)
                if path is not None:
                    values[path] = event.start_mark
                if event.tag is None and event.implicit[0]:
                    tag = plain_tags.get(event.value)
                    if tag is None:
                        tag = plain_tags[event.value] = self._resolve(event.value)
                    value = event.value if tag == _STR_TAG else self._scalar(event)[0]
                elif event.tag is None:  # quoted: always a string
                    value, tag = event.value, _STR_TAG
                else:
                    value, tag = self._scalar(event)
                self._deliver(stack, root, value, 1, event.start_mark, tag)
                continue
            if kind is yaml.DocumentEndEvent:
                break
            if kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                frame = stack.pop()
                value = self._finish(frame)
                if frame.anchor is not None:
                    self.open_anchors.pop(frame.anchor, None)
                    self.anchors[frame.anchor] = (value, frame.size)
                self._deliver(stack, root, value, frame.size, frame.mark, frame.tag)
                continue
            parent = stack[-1] if stack else None
            path = self._child_path(parent)
            mark = event.start_mark
            if path is not None:
                values[path] = mark
            if kind is yaml.AliasEvent:
                value, size = self._alias(event)
                self._deliver(stack, root, value, size, mark, "")
                continue
            anchor = event.anchor
            if anchor is not None and (anchor in self.anchors or anchor in self.open_anchors):
                raise yaml.composer.ComposerError(
                    f"found duplicate anchor {anchor!r}; first occurrence",
                    self._anchor_mark(anchor),
                    "second occurrence",
                    mark,
                )
            if kind is yaml.ScalarEvent:
                value, tag = self._scalar(event)
                if anchor is not None:
                    self.anchors[anchor] = (value, 1)
                self._deliver(stack, root, value, 1, mark, tag)
                continue
            # A mapping or a sequence starts.
            is_map = kind is yaml.MappingStartEvent
            if parent is not None and parent.is_map and parent.key is _NO_KEY:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", parent.mark, "found unhashable key", mark
                )
            if len(stack) > MAX_DEPTH:
                raise _TooLarge(
                    _pos(mark),
                    f"the document is nested more than {MAX_DEPTH} levels deep",
                    "a machine needs only a few levels; flatten this value",
                )
            tag = event.tag
            if tag is None or tag == "!":
                tag = _MAP_TAG if is_map else _SEQ_TAG
            if anchor is not None:
                self.open_anchors[anchor] = mark
            stack.append(_Frame(is_map, path, mark, anchor, tag))
        following = events.get_event()
        if not isinstance(following, yaml.StreamEndEvent):
            raise yaml.composer.ComposerError(
                "expected a single document in the stream",
                document.start_mark,
                "but found another document",
                following.start_mark,
            )
        return True, root[0] if root else None

    def _anchor_mark(self, anchor: str) -> Any:
        return self.open_anchors.get(anchor)

    def _child_path(self, parent: _Frame | None) -> PathKey | None:
        if parent is None:
            return ()
        if parent.path is None:
            return None  # inside a mapping key
        if not parent.is_map:
            return (*parent.path, len(parent.items))
        if parent.key is _NO_KEY:
            return None  # this node is a key
        return None if parent.key_is_merge else (*parent.path, parent.key)

    def _resolve(self, value: str) -> str:
        tag: str = self.resolver.resolve(  # type: ignore[no-untyped-call]
            yaml.ScalarNode, value, (True, False)
        )
        return tag

    def _scalar(self, event: Any) -> tuple[Any, str]:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.resolver.resolve(  # type: ignore[no-untyped-call]
                yaml.ScalarNode, event.value, event.implicit
            )
        if tag == _STR_TAG:
            return event.value, tag
        if tag == _MERGE_TAG:
            return "<<", tag
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        construct = self.constructor.yaml_constructors.get(tag)
        if construct is None:
            construct = self.constructor.yaml_constructors[None]  # raises: unknown tag
        return construct(self.constructor, node), tag

    def _alias(self, event: Any) -> tuple[Any, int]:
        anchor = event.anchor
        if anchor in self.open_anchors:
            raise _TooLarge(
                _pos(event.start_mark),
                "an alias refers to a value that contains it (a recursive structure)",
                "a machine is a tree: copy the part you meant instead of aliasing it",
            )
        if anchor not in self.anchors:
            raise yaml.composer.ComposerError(
                None, None, f"found undefined alias {anchor!r}", event.start_mark
            )
        return self.anchors[anchor]

    def _deliver(
        self, stack: list[_Frame], root: list[Any], value: Any, size: int, mark: Any, tag: str
    ) -> None:
        if not stack:
            root.append(value)
            return
        parent = stack[-1]
        if not parent.is_map:
            parent.items.append(value)
            self._grow(parent, size)
            return
        if parent.key is _NO_KEY:  # this value is a key
            if not isinstance(value, Hashable):
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", parent.mark, "found unhashable key", mark
                )
            parent.key, parent.key_mark = value, mark
            parent.key_is_merge = tag == _MERGE_TAG
            if not parent.key_is_merge:
                self._key(parent, value, mark)
            return
        if parent.key_is_merge:
            parent.merges.append((value, parent.key_mark))
        else:
            parent.items.append((parent.key, value))
        self._grow(parent, size)
        parent.key = _NO_KEY

    def _text(self, mark: Any) -> str:
        """The key as written, for messages (``on`` rather than True)."""
        if self.lines is None:
            self.lines = self.doc.text.splitlines()
        line = self.lines[mark.line] if mark.line < len(self.lines) else ""
        written = line[mark.column :].split(":", 1)[0].strip()
        return written or "?"

    def _key(self, parent: _Frame, key: Any, mark: Any) -> None:
        written = key if key.__class__ is str else self._text(mark)
        first = parent.names.get(key)
        if first is not None:
            key_pos, first_pos, first_text = _pos(mark), _pos(first[0]), first[1]
            same = f"key {written!r} appears twice in this mapping"
            if first_text != written:  # `on` and `true`, `1` and `01`
                same = (
                    f"key {written!r} is the same key as {first_text!r} once "
                    "YAML reads them (on/off/yes/no are booleans, 1 equals true)"
                )
            self.problems.append(
                Diagnostic(
                    self.doc.path,
                    key_pos.line,
                    key_pos.col,
                    "SMC003",
                    f"{same}; YAML would silently keep only the last one",
                    f"the first is at line {first_pos.line}; merge the two",
                )
            )
        else:
            parent.names[key] = (mark, written)
        if parent.path is not None:
            self.doc.keys[(*parent.path, key)] = mark

    def _grow(self, frame: _Frame, size: int) -> None:
        frame.size += size
        if frame.size > MAX_NODES:
            raise _TooLarge(
                _pos(frame.mark),
                f"this value expands to more than {MAX_NODES:,} nodes once its aliases are "
                "expanded",
                "split the machine, or remove repeated aliases",
            )

    def _finish(self, frame: _Frame) -> Any:
        if not frame.is_map:
            if frame.tag == _SEQ_TAG:
                return frame.items
            if frame.tag in _PAIRS_TAGS:
                pairs = []
                for item in frame.items:
                    if not (isinstance(item, dict) and len(item) == 1):
                        raise yaml.constructor.ConstructorError(
                            f"while constructing {frame.tag}",
                            frame.mark,
                            "expected a single mapping item",
                            frame.mark,
                        )
                    pairs.append(next(iter(item.items())))
                return pairs
            raise self._unknown_tag(frame)
        items = frame.items
        if frame.merges:  # `<<: *base`: the mapping's own keys win, then the first merged
            merged: list[tuple[Any, Any]] = []
            for value, mark in frame.merges:
                sources = value if isinstance(value, list) else [value]
                if not all(isinstance(source, dict) for source in sources):
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        frame.mark,
                        "expected a mapping or list of mappings for merging",
                        mark,
                    )
                for source in reversed(sources):
                    merged.extend(source.items())
            items = merged + items
        if frame.tag == _MAP_TAG:
            return dict(items)
        if frame.tag == _SET_TAG:
            return {key for key, _ in items}
        raise self._unknown_tag(frame)

    @staticmethod
    def _unknown_tag(frame: _Frame) -> yaml.YAMLError:
        return yaml.constructor.ConstructorError(
            None,
            None,
            f"could not determine a constructor for the tag {frame.tag!r}",
            frame.mark,
        )


def _pos(mark: Any) -> Pos:
    return Pos(mark.line + 1, mark.column + 1)


def _yaml_error(path: str, text: str, error: yaml.YAMLError) -> Diagnostic:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    lines = text.splitlines()
    if line > len(lines):  # the end of a file without a final newline: point at its end
        line, col = max(len(lines), 1), len(lines[-1]) + 1 if lines else 1
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
    builder = _Builder(doc)
    events = _event_source(text)
    try:
        found, data = builder.build(events)
    except _TooLarge as error:
        return None, [
            Diagnostic(path, error.pos.line, error.pos.col, "SMC006", error.message, error.hint)
        ]
    except yaml.YAMLError as error:
        return None, [_yaml_error(path, text, error)]
    finally:
        events.dispose()
    if not found:
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
    doc.data = data
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a single {type(data).__name__} value"
        where = doc.pos(())
        return None, [
            Diagnostic(
                path,
                where.line,
                where.col,
                "SMC002",
                f"a machine file must be a mapping of keys, but this one holds {kind}",
                "start with `initial_state: ...` and `transitions: [...]`",
            )
        ]
    doc.comment_groups = _comment_groups(doc)
    return doc, builder.problems


def _comment_groups(doc: LoadedDocument) -> list[tuple[str, Pos, list[str]]]:
    """``# === NAME ===`` comments inside a ``states:`` list, with the states after each.

    One pass over the lines from the ``states:`` key to its last item, so linear in the file.
    """
    states = doc.data.get("states")
    key = doc.keys.get(("states",))
    if key is None or not isinstance(states, list):
        return []
    by_line: dict[int, str] = {}
    for index, item in enumerate(states):
        name = item.get("name") if isinstance(item, dict) else item
        where = doc.values.get(("states", index))
        if isinstance(name, str) and where is not None:
            by_line.setdefault(where.line, name)
    if not by_line:
        return []
    lines = doc.text.splitlines()
    groups: list[tuple[str, Pos, list[str]]] = []
    current: tuple[str, Pos, list[str]] | None = None
    for index in range(key.line, min(max(by_line) + 1, len(lines))):
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
