"""YAML text -> plain data plus the position of every node (being split into modules)."""

from smc.compiler.loader.builder import (
    MAX_DEPTH,
    MAX_NODES,
    LoadedDocument,
    PathKey,
    Pos,
    load_file,
    load_text,
)

__all__ = ["MAX_DEPTH", "MAX_NODES", "LoadedDocument", "PathKey", "Pos", "load_file", "load_text"]
