"""Statecharts (issue 13): the semantic core, independent of the rest of the compiler.

- ``chart``      the chart as checked, immutable data, and a builder from nested dicts;
- ``semantics``  the reference interpreter: the W3C SCXML algorithm (Appendix D);
- ``tables``     the compile-time resolution of a chart into a dispatch table of situations,
                 with a decision program for each entry that evaluates guards;
- ``scxml``      the export of a chart as a standard SCXML document.

Nothing here imports another ``smc.compiler`` module: the model and the code generator are
wired to this package, not the other way round.
"""

from .chart import (
    Action,
    ActionRef,
    Chart,
    ChartDefinitionError,
    Cond,
    State,
    StatechartError,
    Transition,
    can_raise,
    chart_from_dict,
    conditional_branches,
    raised_event,
)
from .scxml import ScxmlExportError, to_scxml
from .semantics import (
    Checkpoint,
    Interpreter,
    Macrostep,
    MissingGuard,
    Situation,
    UnsettledMacrostep,
)
from .tables import (
    DispatchTable,
    Program,
    TooManyOutcomes,
    TooManySituations,
    build_table,
    run_program,
)

__all__ = [
    "Action",
    "ActionRef",
    "Chart",
    "ChartDefinitionError",
    "Checkpoint",
    "Cond",
    "DispatchTable",
    "Interpreter",
    "Macrostep",
    "MissingGuard",
    "Program",
    "ScxmlExportError",
    "Situation",
    "State",
    "StatechartError",
    "TooManyOutcomes",
    "TooManySituations",
    "Transition",
    "UnsettledMacrostep",
    "build_table",
    "can_raise",
    "chart_from_dict",
    "conditional_branches",
    "raised_event",
    "run_program",
    "to_scxml",
]
