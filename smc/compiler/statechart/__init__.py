"""Statecharts (issue 13): the semantic core, independent of the rest of the compiler.

- ``chart``      the chart as checked, immutable data, and a builder from nested dicts;
- ``semantics``  the reference interpreter: the W3C SCXML algorithm (Appendix D);
- ``tables``     the compile-time resolution of a chart into a dispatch table of situations;
- ``scxml``      the export of a chart as a standard SCXML document.

Nothing here imports another ``smc.compiler`` module: the model and the code generator are
wired to this package, not the other way round.
"""

from .chart import (
    Action,
    ActionRef,
    Chart,
    ChartDefinitionError,
    State,
    StatechartError,
    Transition,
    chart_from_dict,
    raised_event,
)
from .scxml import ScxmlExportError, to_scxml
from .semantics import Interpreter, Macrostep, Situation, UnsettledMacrostep
from .tables import DispatchTable, TooManySituations, build_table

__all__ = [
    "Action",
    "ActionRef",
    "Chart",
    "ChartDefinitionError",
    "DispatchTable",
    "Interpreter",
    "Macrostep",
    "ScxmlExportError",
    "Situation",
    "State",
    "StatechartError",
    "TooManySituations",
    "Transition",
    "UnsettledMacrostep",
    "build_table",
    "chart_from_dict",
    "raised_event",
    "to_scxml",
]
