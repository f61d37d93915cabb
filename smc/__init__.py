"""smc, the state machine compiler.

This top-level package is the *runtime base* that generated modules import: it must stay
small and must never import the compiler (``smc.compiler``) or the worker runtime.
"""

from __future__ import annotations

from smc.machine import IllegalTransition, Listener, MissingPayload, ProcessorType, Sent

__all__ = [
    "IllegalTransition",
    "Listener",
    "MissingPayload",
    "ProcessorType",
    "Sent",
    "__version__",
]
__version__ = "0.1.0"
