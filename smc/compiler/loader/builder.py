"""The one-pass YAML builder: the parser's events -> the data ``yaml.safe_load`` would give,
while recording where every value and key was written (in a :class:`LoadedDocument`), finding
duplicate keys (SMC003), and bounding depth and alias-expanded size (SMC006).

Positions, duplicate keys and alias sizes stay together here: each is decided on the same
event, with the same stack of open mappings and sequences.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from smc.compiler.diagnostics import Diagnostic
from smc.compiler.loader.document import LoadedDocument, PathKey, Pos, mark_pos

#: A document whose data, with every alias expanded, has more nodes than this is refused
#: (alias bombs, runaway files). Later stages walk the expanded data, so this bounds them.
MAX_NODES = 1_000_000
#: Machines are shallow (the deepest real path is about 8 levels); this bounds recursion in
#: every later stage, far below Python's recursion limit.
MAX_DEPTH = 64

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_SET_TAG = "tag:yaml.org,2002:set"
_PAIRS_TAGS = ("tag:yaml.org,2002:omap", "tag:yaml.org,2002:pairs")
_NO_KEY = object()


def event_source(text: str) -> Any:
    """The parser's event stream: libyaml's when PyYAML was built with it (several times
    faster), else PyYAML's pure-Python parser, which gives the same events and marks."""
    if yaml.__with_libyaml__:
        from yaml._yaml import CParser

        return CParser(text)
    return yaml.SafeLoader(text)  # pragma: no cover - PyYAML built without libyaml


class TooLarge(Exception):
    """The document is nested too deeply or expands to too many nodes (SMC006)."""

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


class DocumentBuilder:
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
                raise TooLarge(
                    mark_pos(mark),
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
            raise TooLarge(
                mark_pos(event.start_mark),
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
            key_pos, first_pos, first_text = mark_pos(mark), mark_pos(first[0]), first[1]
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
            raise TooLarge(
                mark_pos(frame.mark),
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
