"""Compiler diagnostics and their three output formats (GNU text, JSON, GitHub annotations)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Literal

from smc.safe_text import escape_controls

Severity = Literal["error", "warning"]

#: Every diagnostic code with its one-line summary (also rendered in docs/diagnostics.md).
CODES: Mapping[str, tuple[Severity, str]] = {
    "SMC001": ("error", "the file is not valid YAML"),
    "SMC002": ("error", "the document is empty or not a mapping"),
    "SMC003": ("error", "a mapping key appears twice (YAML keeps only the last)"),
    "SMC004": ("error", "the document does not match the machine schema"),
    "SMC005": ("error", "a state uses an xstate key that smc spells differently (`entry`, ...)"),
    "SMC006": ("error", "the document is too large, too deeply nested, or its aliases loop"),
    "SMC007": ("error", "the file cannot be read"),
    "SMC010": ("error", "a state is named that the machine does not have"),
    "SMC011": ("error", "a state is declared twice"),
    "SMC012": ("error", "the same transition is written twice"),
    "SMC013": (
        "error",
        "a transition can never fire: an earlier one leaves the same state on the same event "
        "with no condition",
    ),
    "SMC014": ("warning", 'a transition is shadowed by an earlier `from: "*"` transition'),
    "SMC015": ("error", "a state declared final has outgoing transitions"),
    "SMC016": ("error", 'actions are attached to a `from: "*"` transition'),
    "SMC017": ("warning", "a state belongs to more than one group"),
    "SMC020": ("warning", "a state cannot be reached from the initial state"),
    "SMC021": ("warning", "a non-final state has no way out"),
    "SMC022": (
        "warning",
        "an action's event has no transition in its state and is lost (it is returned by the "
        "action itself, or by the state's last action)",
    ),
    "SMC023": ("warning", "an event is declared but never used"),
    "SMC024": ("warning", "an event looks like a timer but is not `timeout(N)`"),
    "SMC025": ("error", "an event is not listed under the `events:` the machine declares"),
    "SMC026": (
        "error",
        "a built-in claims a job and no transition takes its claim event: the job is stranded",
    ),
    "SMC027": (
        "warning",
        "a built-in's failure event has no transition and nothing else can move the machine on",
    ),
    "SMC030": ("error", "an action type is neither built in nor provided by a user action"),
    "SMC031": ("error", "a built-in action is missing a required parameter"),
    "SMC032": ("warning", "a built-in action has a parameter it does not read"),
    "SMC033": ("warning", "a placeholder uses a filter (`{x|f}`), which is not supported"),
    "SMC034": (
        "warning",
        "an action type is not built in and the checker was told of no user actions",
    ),
    "SMC035": ("error", "a built-in action's number of seconds is not a number it can take"),
    "SMC036": (
        "warning",
        "`check_database_queue` with `wait: 0` loops back on `no_jobs`: it spins",
    ),
    "SMC040": ("warning", "`send_event` targets a machine that is not among the checked files"),
    "SMC041": ("warning", "`send_event` sends an event the target machine has no transition for"),
    "SMC042": ("error", "two machines have the same name"),
    "SMC060": ("error", "a `bash` placeholder sits where the shell would run or evaluate it"),
    "SMC061": ("error", "a `bash` placeholder's place in the shell command cannot be known"),
    "SMC062": ("error", "a `bash` command writes `${a.b}`: neither a placeholder nor shell"),
    "SMC050": ("error", "a name cannot become a Python identifier"),
    "SMC051": ("error", "two names collide after conversion to Python identifiers"),
    "SMC070": (
        "error",
        "a compound or parallel state has no child states, or a state declared final has some",
    ),
    "SMC071": ("error", "a compound state's `initial` is not inside it"),
    "SMC072": (
        "error",
        "a history pseudo-state is misplaced: outside a compound state, with children or "
        "transitions of its own, or a default outside its compound or leading back to it",
    ),
    "SMC073": ("error", "a transition's targets cannot all be active at once"),
    "SMC074": ("error", "eventless transitions form a cycle, so the machine never settles"),
    "SMC075": ("warning", "a parallel state has fewer than two regions"),
    "SMC076": (
        "error",
        'a transition without targets that cannot be meant: no `to:` and no actions, or from "*"',
    ),
    "SMC077": ("error", "a statechart reaches too many situations to compile into a table"),
    "SMC078": ("error", "a statechart breaks a rule of statechart semantics (a final region)"),
    "SMC079": (
        "warning",
        "a machine with guards or assignments gets no path tests (`smc paths`, `--emit-tests`): "
        "paths do not follow data yet",
    ),
    "SMC080": (
        "error",
        "a data schema (context field, event payload, job data) is not a valid JSON Schema",
    ),
    "SMC081": ("error", "a context field's default does not match its schema"),
    "SMC082": ("error", "a context or payload field name cannot be a field of the generated class"),
    "SMC083": (
        "error",
        "an event's payload schema, or a job type's data schema, is not `type: object`",
    ),
    "SMC084": (
        "error",
        "a `send_event`'s payload does not match the schema the target machine gives the event",
    ),
    "SMC085": (
        "error",
        "a placeholder names a payload, job data, `current_job` or `event_data` field the "
        "machine's schemas show can never exist",
    ),
    "SMC086": (
        "warning",
        "a placeholder names nothing the machine declares or stores and looks like a "
        "misspelt context field",
    ),
    "SMC090": (
        "error",
        "an expression (`when:`, `expr:`) is not valid, or uses a construct the language "
        "does not allow",
    ),
    "SMC091": (
        "error",
        "an expression names an unknown context field, payload or job field, or state",
    ),
    "SMC092": (
        "error",
        "an expression's types do not fit: a mismatch, a `when:` that is not true or false, "
        "or a value its `assign` location cannot hold",
    ),
    "SMC093": ("error", "an `assign` action's `location` is not a context field"),
    "SMC094": (
        "error",
        "guards and assignments are compiled by `smc build` and run by `smc run`, not yet "
        "written by `smc export`",
    ),
    "SMC095": ("error", "a `send` action names an event the machine does not have"),
    "SMC096": (
        "error",
        "a `send` action's `delay` is not a duration, or its `payload` does not fit the "
        "event's payload schema",
    ),
    "SMC097": (
        "error",
        "an `if` block holds an action the generated class cannot run, or a `log` mixes "
        "`message` with `label`/`expr`",
    ),
    "SMC100": ("error", "an SCXML document is not well-formed XML, has a DOCTYPE or no <scxml>"),
    "SMC101": ("error", "an SCXML document uses a feature smc does not support (named)"),
    "SMC102": ("warning", "an SCXML attribute smc does not read is ignored"),
    "SMC103": (
        "warning",
        "an SCXML <data src> file cannot be read: the data is empty, error.execution at the start",
    ),
    "SMC120": ("error", "a workflow file does not match the workflow schema"),
    "SMC121": ("error", "a workflow's tasks need each other in a cycle"),
    "SMC122": ("error", "a task's `needs:` names a task the workflow does not have"),
    "SMC123": ("error", "a task's `needs:` names the same task twice"),
    "SMC124": (
        "error",
        "a task can never start: it needs, directly or through others, a task in a cycle",
    ),
    "SMC125": (
        "warning",
        "no checked machine claims a task's job type, so nothing among them would run it",
    ),
    "SMC126": (
        "error",
        "a task's `data` has a `workflow` key, which the scheduler sets on every job",
    ),
}


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem, at one place. Ordered by position so output is stable."""

    path: str
    line: int
    col: int
    code: str
    message: str
    hint: str = ""

    @property
    def severity(self) -> Severity:
        return CODES[self.code][0]

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return sorted(set(diagnostics))


def format_text(diagnostic: Diagnostic, source_lines: list[str] | None) -> str:
    """``path:line:col: error[SMC010]: message`` plus the source line, a caret and the hint."""
    d = diagnostic
    out = [f"{escape_controls(d.path)}:{d.line}:{d.col}: {d.severity}[{d.code}]: {d.message}"]
    if source_lines and 1 <= d.line <= len(source_lines):
        # The line is the user's file, quoted: its controls and bidi overrides are written
        # escaped, as the message's are, and the caret moves by what that adds before it.
        text = source_lines[d.line - 1].rstrip("\n").expandtabs(1)
        before = escape_controls(text[: max(d.col, 1) - 1])
        out.append(f"  {d.line:>4} | {escape_controls(text)}")
        out.append("       | " + " " * len(before) + "^")
    if d.hint:
        out.append(f"  hint: {d.hint}")
    return "\n".join(out)


def format_json(diagnostics: list[Diagnostic]) -> str:
    """A JSON list, one object per diagnostic with the keys code, col, hint, line, message,
    path and severity (sorted, so the output is byte-stable)."""
    items = [{**asdict(d), "severity": d.severity} for d in diagnostics]
    return json.dumps(items, indent=2, ensure_ascii=False, sort_keys=True)


def _github_escape(value: str, *, prop: bool = False) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        value = value.replace(":", "%3A").replace(",", "%2C")
    return value


def format_github(diagnostic: Diagnostic) -> str:
    """A GitHub Actions workflow command (``::error file=…,line=…,col=…::message``)."""
    d = diagnostic
    message = d.message + (f" (hint: {d.hint})" if d.hint else "")
    return (
        f"::{d.severity} file={_github_escape(d.path, prop=True)},line={d.line},col={d.col},"
        f"title={d.code}::{_github_escape(message)}"
    )
