"""Turning YAML names into Python identifiers, deterministically.

A YAML name never becomes code as written: it goes through one of these functions, whose
output is checked with ``str.isidentifier()``, or it is emitted as a string literal with
``repr()``. The rules (documented in docs/language.md):

- NFKC-normalise (Python does the same to identifiers), split camelCase, turn every run of
  characters that cannot appear in an identifier into ``_``, trim ``_`` at both ends;
- states and events become ``UPPER_SNAKE`` enum members; events also become ``lower_snake``
  methods; machines become ``PascalCase`` classes and ``lower_snake`` modules;
- a leading digit gets the prefix ``n_`` (``N_`` for enum members, ``M`` for classes); a
  Python keyword or a name the generated class already uses gets a trailing ``_``; a name
  with nothing left is an error (SMC050).
"""

from __future__ import annotations

import keyword
import re
import unicodedata

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"\W+")

#: Attributes of generated classes that an event method must not replace.
RESERVED_METHODS = frozenset(
    {
        "fire",
        "can_fire",
        "allowed_events",
        "add_listener",
        "remove_listener",
        "state",
        "transition",
        "can_transition",
        "is_final",
        "machine_name",
        "State",
        "Event",
        "INITIAL_STATE",
        "FINAL_STATES",
        "TRANSITIONS",
        "STATE_ACTIONS",
        "GROUPS",
        "TIMEOUTS",
        "EVENT_CONTEXT_MAPS",
        # a statechart's class (templates/chart.py.jinja)
        "configuration",
        "in_state",
        "situation",
        "step_of",
        "snapshot",
        "restore",
        "PROGRAM_EVENTS",
    }
)

#: What only a statechart's class has beside them (templates/chart.py.jinja): an event of a
#: flat machine keeps its method name (``job()``), a chart's gets ``job_()``.
CHART_ONLY_METHODS = frozenset(
    {
        "fire_steps",
        "initial_steps",
        "take_sent",
        "on_log",
        # data attributes some charts have (a guard on the job's data, sessions): an event
        # method of the same name failed the import
        "job",
        "session_id",
    }
)


#: Every attribute a generated class defines (its methods, properties, class constants and
#: data attributes; templates/chart.py.jinja, templates/_data.jinja): a named condition
#: (``guard:``, ``unless:``), a method the user writes in a subclass, must not replace one.
GENERATED_MEMBERS = (
    RESERVED_METHODS
    | CHART_ONLY_METHODS
    | frozenset(
        {
            "MACHINE_NAME",
            "STYLE",
            "ACTION_SOURCES",
            "EXIT_ACTIONS",
            "EXIT_ACTION_SOURCES",
            "EVENT_METHODS",
            "CONFIGURATIONS",
            "STATE_VIEWS",
            "FINAL_SITUATIONS",
            "DISPATCH",
            "STEPS",
            "INITIAL_STEP",
            "CONTEXT_SCHEMA",
            "CONTEXT_TYPE",
            "EVENT_PAYLOAD_SCHEMAS",
            "JOB_DATA_SCHEMAS",
            "context",
            "payload",
        }
    )
)


def condition_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a named condition's method as written (None when it can): the
    user writes ``def <name>(self) ...`` in a subclass, so it is not converted."""
    if unicodedata.normalize("NFKC", name) != name or not name.isidentifier():
        return "is not a Python identifier"
    if keyword.iskeyword(name):
        return "is a Python keyword"
    if name.startswith("_"):
        return "starts with '_'"
    return None


def _words(name: str) -> list[str]:
    text = unicodedata.normalize("NFKC", name)
    text = _CAMEL_BOUNDARY.sub("_", text)
    return [part for part in _NON_WORD.sub("_", text).split("_") if part]


def _finish(ident: str, digit_prefix: str = "n_") -> str | None:
    if not ident:
        return None
    if ident[0].isdigit():
        ident = digit_prefix + ident
    if keyword.iskeyword(ident):
        ident += "_"
    return ident if ident.isidentifier() else None


def snake(name: str) -> str | None:
    """``"New Job"`` -> ``"new_job"``; ``None`` when nothing usable is left."""
    return _finish("_".join(word.lower() for word in _words(name)))


def member(name: str) -> str | None:
    """Enum member name: ``"timeout(5)"`` -> ``"TIMEOUT_5"``."""
    return _finish("_".join(word.upper() for word in _words(name)), "N_")


def method(name: str, *, chart: bool) -> str | None:
    """Event method name; avoids the generated class's own attributes (``chart``: a
    statechart's class, which has more)."""
    ident = snake(name)
    if ident is not None and (ident in RESERVED_METHODS or (chart and ident in CHART_ONLY_METHODS)):
        ident += "_"
    return ident


def pascal(name: str) -> str | None:
    """Class name: ``"simple_worker"`` -> ``"SimpleWorker"``."""
    words = _words(name)
    ident = "".join(word[:1].upper() + word[1:] for word in words)
    if ident and ident[0].isdigit():
        ident = "M" + ident
    return _finish(ident)


def module(name: str) -> str | None:
    """Module name: ``"patient-records"`` -> ``"patient_records"``."""
    return snake(name)
