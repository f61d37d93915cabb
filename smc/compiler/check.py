"""The checking pipeline: files -> load -> schema -> model (its data declarations and its
expressions checked where written, ``data`` and ``exprcheck``) -> analysis.

``smc check`` prints what this returns; ``smc build`` and ``smc diagram`` stop on its errors
and otherwise consume its models. A statechart that passes every other check is also built
into its dispatch table here (``analysis.chart.check_chart_table``), so what only running it
shows (a macrostep that never settles, too many situations) is a diagnostic too.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from smc.catalog import YAML_SUFFIXES
from smc.compiler import (
    analysis,
    chartsyntax,
    commands,
    data,
    exprcheck,
    placeholders,
    schema,
    workflows,
)
from smc.compiler.diagnostics import Diagnostic, sort_diagnostics
from smc.compiler.loader import LoadedDocument, load_file, load_text
from smc.compiler.loader.scxml import is_scxml, load_scxml_file
from smc.compiler.model import Machine
from smc.compiler.normalize import action_types_in_dir, build_machine
from smc.workflow.model import Workflow


class InputError(Exception):
    """A path given on the command line does not exist or holds no machine files, or an
    actions directory does not exist."""


def _content_expressions(machine: Machine, lines: Sequence[str]) -> list[Diagnostic]:
    """SMC090-SMC097 in the compound states' ``initial_actions`` and the history states'
    ``default_actions``: the expression checker reads a state's on-entry and on-exit lists, so
    it checks them as the on-entry actions of a view of the machine holding only them (they
    run in the same scope: a state's, with no event payload), those the machine runs as it
    starts as the start (``exprcheck.start_actions`` of the machine, not of the view: a
    compound state entered at its initial child by default, not one an initial state is
    written below, nor one entered only by an event)."""
    states = tuple(
        dataclasses.replace(
            state,
            actions=(*state.initial_actions, *state.default_actions),
            on_exit=(),
            initial_actions=(),
            default_actions=(),
        )
        for state in machine.states
    )
    if not any(state.actions for state in states):
        return []
    view = dataclasses.replace(machine, states=states, transitions=())
    return exprcheck.check_expressions(view, lines, exprcheck.start_actions(machine))


def collect_files(paths: Sequence[str]) -> list[str]:
    """Files as given, and ``*.yaml``/``*.yml`` found recursively in directories, sorted."""
    found: list[str] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found.extend(
                    os.path.join(root, f) for f in sorted(files) if f.endswith(YAML_SUFFIXES)
                )
        elif path.is_file():
            found.append(str(path))
        else:
            raise InputError(f"{given}: no such file or directory")
    if not found:
        raise InputError("no machine files (*.yaml, *.yml) in " + ", ".join(paths))
    return list(dict.fromkeys(os.path.normpath(f) for f in found))


def require_action_dirs(action_dirs: Iterable[str]) -> None:
    """Every ``--actions-dir`` given must be a directory: a mistyped one would otherwise
    only show up as its action types being unknown."""
    for directory in action_dirs:
        if not os.path.isdir(directory):
            raise InputError(f"--actions-dir {directory}: no such directory")


@dataclass
class CheckResult:
    machines: list[Machine] = field(default_factory=list)
    #: The workflow files among the checked files (docs/workflows.md): never machines.
    workflows: list[Workflow] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, list[str]] = field(default_factory=dict)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]

    def failed(self, *, strict: bool = False) -> bool:
        return bool(self.errors) or (strict and bool(self.warnings))


def check_files(
    files: Sequence[str],
    action_dirs: Iterable[str] = (),
    *,
    runtime: bool = False,
) -> CheckResult:
    """Check machine files together (the files are read as UTF-8). ``action_dirs`` are
    directories of user actions; ``runtime=True`` says they are all the places user actions
    come from (as for ``smc run``), even when there are none: an action type they, the
    built-ins and the ``smc.actions`` entry points do not provide is then an error (SMC030)."""
    loaded = []
    for path in files:
        doc, problems = load_scxml_file(path) if is_scxml(path) else load_file(path)
        if doc is not None:
            lines = doc.lines
        else:
            try:
                lines = Path(path).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                lines = []
        loaded.append((path, doc, problems, lines))
    return _check_loaded(loaded, action_dirs, runtime)


def check_texts(
    sources: Sequence[tuple[str, str]],
    action_dirs: Iterable[str] = (),
    *,
    runtime: bool = False,
) -> CheckResult:
    """Check machines given as (path, YAML text) pairs, as if they were files: for editors,
    tests and tools that hold the text already."""
    loaded = []
    for path, text in sources:
        doc, problems = load_text(path, text)
        loaded.append((path, doc, problems, text.splitlines()))
    return _check_loaded(loaded, action_dirs, runtime)


def _check_loaded(
    loaded: Sequence[tuple[str, LoadedDocument | None, list[Diagnostic], list[str]]],
    action_dirs: Iterable[str],
    runtime: bool,
) -> CheckResult:
    """load -> schema -> model for each document, then the analysis across all of them."""
    result = CheckResult()
    diagnostics: list[Diagnostic] = []
    workflow_docs: list[tuple[Workflow, LoadedDocument]] = []
    set_aside: set[str] = set()  # files checked with values the schema refused set aside
    checked_only: list[Machine] = []  # their machines
    quiet: set[str] = set()  # files whose warnings are not said (see the end)
    for path, doc, problems, lines in loaded:
        diagnostics.extend(problems)
        if any(problem.code == "SMC003" for problem in problems):
            # A duplicated key: what YAML dropped leaves warnings that follow from it alone
            # (the first `transitions:` gone, its states "cannot be reached").
            quiet.add(path)
        result.sources[path] = lines
        if doc is None:
            continue
        if workflows.is_workflow(doc.data):
            workflow, problems = workflows.check_workflow(doc)
            diagnostics.extend(problems)
            if workflow is not None:
                workflow_docs.append((workflow, doc))
                result.workflows.append(workflow)
            continue
        unsupported = chartsyntax.prepare(doc)
        if unsupported:
            diagnostics.extend(unsupported)
            continue
        invalid = schema.validate(doc)
        if invalid:
            diagnostics.extend(invalid)
            # Values refused alone (an enum's misspelling) are set aside and the rest is
            # checked: a newcomer fixed one value to be shown five more problems.
            repaired = schema.without_refused_values(doc)
            if repaired is None:
                continue
            doc = dataclasses.replace(doc, data=repaired)
            set_aside.add(doc.path)
        machine, problems = build_machine(doc)
        diagnostics.extend(problems)
        diagnostics.extend(commands.check_commands(machine, lines))
        diagnostics.extend(data.check_data(doc, machine))
        diagnostics.extend(exprcheck.check_expressions(machine, lines))
        diagnostics.extend(_content_expressions(machine, lines))
        diagnostics.extend(placeholders.check_placeholders(machine, lines))
        # A machine checked without refused values is analysed, never handed on (compiled)
        (checked_only if doc.path in set_aside else result.machines).append(machine)
    dirs = list(action_dirs)
    extra_types = [t for d in dirs for t in action_types_in_dir(d)]
    diagnostics.extend(
        analysis.analyse(
            [*result.machines, *checked_only],
            extra_types,
            user_actions_known=runtime or bool(dirs),
        )
    )
    for workflow, doc in workflow_docs:
        diagnostics.extend(workflows.check_job_types(doc.path, workflow, doc, result.machines))
    failing = {d.path for d in diagnostics if d.is_error}
    for machine in result.machines:
        if machine.is_chart and machine.path not in failing:
            diagnostics.extend(analysis.chart.check_chart_table(machine))
    # Of a file checked without its refused values, or with a key YAML dropped, only the
    # errors are said: a warning there may follow from what was set aside or dropped (a
    # `history: medium` state, taken as a plain state, "cannot be reached"), and the file
    # fails anyway.
    quiet |= set_aside
    diagnostics = [d for d in diagnostics if d.is_error or d.path not in quiet]
    result.diagnostics = sort_diagnostics(diagnostics)
    return result


# ---- temporary: guards and assignments are checked, not yet compiled ---------------------


#: What ``smc export`` does not write yet: chart feature -> words.
_NOT_YET_RUN = {
    "guards": "a guarded transition",
    "assignments": "an `assign` action",
    "if blocks": "an `if` action",
    "sends": "a `send` action",
    "log expressions": "a `log` of an expression",
    "raised ids": "a `raise` with `id_location`",
    "computed data": "a context field computed from an `expr:`",
}

#: The chart features whose events lead where the data says: paths do not follow them.
DATA_FEATURES = frozenset({"guards", "assignments", "if blocks"})


def follows_data(machine: Machine) -> bool:
    """Whether ``machine`` has guards, assignments or ``if`` blocks: where its events lead
    depends on its data, which paths do not follow yet (SMC079)."""
    return any(feature in DATA_FEATURES for feature, _ in machine.chart_features)


def not_yet_compiled_data(
    machine: Machine, *, building: bool = False, walking: bool = False
) -> list[Diagnostic]:
    """SMC094 for a machine with guards (``when:``, ``guard:``, ``unless:``) or ``assign``
    actions, for ``smc export``: the checker checks them, and the generated class and the
    runtime run them, but the export does not write them yet, and guards must not be
    silently dropped.

    ``building`` (``smc build``, ``smc run``): the generated class compiles guards and
    assignments (``chartplan``): nothing is refused. ``walking`` (``smc paths``,
    ``--emit-tests``): the machine's paths are left out, a warning (SMC079) says so."""
    if building:
        return []
    if walking:
        for feature, where in machine.chart_features:
            if feature in DATA_FEATURES:
                return [
                    Diagnostic(
                        where.path,
                        where.line,
                        where.col,
                        "SMC079",
                        f"machine {machine.name!r} has guards or assignments: no paths are "
                        "written for it (paths do not follow data yet)",
                        "its MachineTest random walk (`smc build --emit-tests`) follows the "
                        "class's guards, and `smc run` runs them",
                    )
                ]
        return []
    found = []
    for feature, what in _NOT_YET_RUN.items():
        pos = dict(machine.chart_features).get(feature)
        if pos is not None:
            found.append(
                Diagnostic(
                    pos.path,
                    pos.line,
                    pos.col,
                    "SMC094",
                    f"machine {machine.name!r} has {what}: guards and the class's actions "
                    "are not yet written by `smc export` (`smc build` and `smc run` run them)",
                    "`smc build` compiles the machine into its class and `smc run` runs it; "
                    "the SCXML export does not write conditions yet",
                )
            )
    return found


def refuse_not_yet_compiled(
    result: CheckResult, *, building: bool = False, walking: bool = False
) -> None:
    """Add :func:`not_yet_compiled_data`'s diagnostics of every checked machine to
    ``result`` (for a caller about to compile them; ``building``: ``smc build``)."""
    extra = [
        d
        for machine in result.machines
        for d in not_yet_compiled_data(machine, building=building, walking=walking)
    ]
    if extra:
        result.diagnostics = sort_diagnostics([*result.diagnostics, *extra])


def check_paths(
    paths: Sequence[str],
    action_dirs: Iterable[str] = (),
    *,
    runtime: bool = False,
) -> CheckResult:
    return check_files(collect_files(paths), action_dirs, runtime=runtime)
