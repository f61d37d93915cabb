"""YAML text -> plain data plus the position of every node.

PyYAML's parser and ``SafeLoader``'s scalar constructors do the reading (so no arbitrary tags,
exactly as ``yaml.safe_load``); :mod:`~smc.compiler.loader.builder` builds the data from the
parser's events in one pass and remembers where each value and each mapping key came from,
which PyYAML's plain data forgets, into a :class:`~smc.compiler.loader.document.LoadedDocument`.
It also finds what the data cannot show: duplicate keys and aliases that expand a small file
into a huge document. This module is the entry point (:func:`load_file`, :func:`load_text`):
it words YAML errors as diagnostics and finds the ``# === GROUP ===`` comments inside
``states:`` (comments never reach the parser's events, so they are read from the text).
"""

from __future__ import annotations

import re

import yaml

from smc.compiler.diagnostics import Diagnostic
from smc.compiler.loader.builder import (
    MAX_DEPTH,
    MAX_NODES,
    DocumentBuilder,
    TooLarge,
    event_source,
)
from smc.compiler.loader.document import LoadedDocument, PathKey, Pos

_GROUP_COMMENT = re.compile(r"^\s*#\s*===\s*(?P<name>.+?)\s*===\s*$")


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
    builder = DocumentBuilder(doc)
    events = event_source(text)
    try:
        found, data = builder.build(events)
    except TooLarge as error:
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


__all__ = ["MAX_DEPTH", "MAX_NODES", "LoadedDocument", "PathKey", "Pos", "load_file", "load_text"]
