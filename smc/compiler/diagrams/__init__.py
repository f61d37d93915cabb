"""Diagrams from the model (Mermaid, Markdown, Graphviz DOT); the code is in ``model``."""

from smc.compiler.diagrams.model import *  # noqa: F403
from smc.compiler.diagrams.model import _dot_label, _IdAllocator  # noqa: F401
