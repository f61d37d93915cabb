"""A broken machine for every diagnostic code, asserting code, line and column.

Each case is a set of YAML files written to a temporary directory and checked together; the
expectation is the exact set of (file, line, col, code) the checker reports.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from smc.compiler.check import CheckResult, check_paths, refuse_not_yet_compiled
from smc.compiler.diagnostics import CODES, Diagnostic, format_github, format_text
from tests.support import PROJECT_ROOT

Found = set[tuple[str, int, int, str]]


@dataclass
class Case:
    id: str
    files: dict[str, str | bytes]
    expected: Found
    #: substrings the message or hint of the first expected diagnostic must contain.
    says: tuple[str, ...] = ()
    #: user action types provided by an action directory given to the checker.
    action_types: tuple[str, ...] = field(default=())
    #: checked for a caller that compiles (smc build, run, paths, export).
    compiling: bool = False
    #: ... and walks the machine's paths (smc paths, --emit-tests).
    walking: bool = False


def check(
    tmp_path: Path,
    files: dict[str, str | bytes],
    action_types: tuple[str, ...] = (),
    *,
    compiling: bool = False,
    walking: bool = False,
) -> CheckResult:
    """Write ``files`` and check them; ``action_types`` become the files of a user action
    directory given to the checker (as ``--actions-dir``); ``compiling``: as the commands
    that compile the machines do."""
    for name, text in files.items():
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
    dirs = []
    if action_types:
        actions = tmp_path.parent / f"{tmp_path.name}-actions"
        actions.mkdir()
        for action_type in action_types:
            (actions / f"{action_type}.py").write_text("")
        dirs.append(str(actions))
    # a directory is searched for machine files (*.yaml); SCXML documents are named
    scxml = [str(tmp_path / name) for name in files if name.endswith(".scxml")]
    result = check_paths(scxml or [str(tmp_path)], dirs)
    if compiling:
        refuse_not_yet_compiled(result, walking=walking)
    return result


def found(result: CheckResult) -> Found:
    return {(Path(d.path).name, d.line, d.col, d.code) for d in result.diagnostics}


OK_TAIL = "transitions:\n  - {from: a, to: b, event: go}\n"


def _parallel_regions(regions: int, states: int) -> str:
    """A parallel state of ``regions`` regions, each a cycle of ``states`` states on its
    own event: ``states ** regions`` situations."""
    items, transitions = [], []
    for r in range(regions):
        names = [f"r{r}s{i}" for i in range(states)]
        items.append(f"      - {{name: r{r}, states: [{', '.join(names)}]}}")
        transitions += [
            f"  - {{from: {names[i]}, to: {names[(i + 1) % states]}, event: e{r}}}"
            for i in range(states)
        ]
    return (
        "initial_state: p\nstates:\n  - name: p\n    parallel: true\n    states:\n"
        + "\n".join(items)
        + "\ntransitions:\n"
        + "\n".join(transitions)
        + "\n"
    )


TOO_MANY_SITUATIONS = _parallel_regions(4, 11)

CASES = [
    Case(
        "SMC001-unclosed-flow",
        {"m.yaml": "initial_state: a\ntransitions: [\n  {from: a, to: b, event: go}\n"},
        {("m.yaml", 3, 30, "SMC001")},  # the end of the file: the end of its last line
        ("invalid YAML",),
    ),
    Case(
        "SMC001-tab-indent",
        {"m.yaml": "initial_state: a\ntransitions:\n\t- {from: a, to: b, event: go}\n"},
        {("m.yaml", 3, 1, "SMC001")},
        ("indent with spaces",),
    ),
    Case(
        "SMC001-python-tag",
        {"m.yaml": "initial_state: !!python/object/apply:os.system [ls]\n" + OK_TAIL},
        {("m.yaml", 1, 16, "SMC001")},
        ("remove the tag",),
    ),
    Case(
        "SMC001-two-documents",
        {"m.yaml": "initial_state: a\n" + OK_TAIL + "---\ninitial_state: b\n"},
        {("m.yaml", 4, 1, "SMC001")},
        ("one machine per file",),
    ),
    Case("SMC002-empty", {"m.yaml": ""}, {("m.yaml", 1, 1, "SMC002")}, ("no YAML document",)),
    Case(
        "SMC002-comments-only",
        {"m.yaml": "# nothing here\n"},
        {("m.yaml", 1, 1, "SMC002")},
    ),
    Case(
        "SMC002-list",
        {"m.yaml": "\n- a\n- b\n"},
        {("m.yaml", 2, 1, "SMC002")},
        ("holds a list",),
    ),
    Case(
        "SMC002-scalar",
        {"m.yaml": "just text\n"},
        {("m.yaml", 1, 1, "SMC002")},
        ("a single str value",),
    ),
    Case(
        "SMC003-duplicate-key",
        {"m.yaml": "initial_state: a\n" + OK_TAIL + "initial_state: a\n"},
        {("m.yaml", 4, 1, "SMC003")},
        ("appears twice", "line 1"),
    ),
    Case(
        # (the unused event 'x', SMC023, is said once the duplicate is merged: see below)
        "SMC003-event-twice",
        {"m.yaml": "initial_state: a\n" + OK_TAIL + "events:\n  go:\n  'x':\n  go:\n"},
        {("m.yaml", 7, 3, "SMC003")},
        ("line 5",),
    ),
    Case(
        # Of a file with a duplicated key only the errors are said: YAML drops the first
        # `transitions:`, and its states "could not be reached" (SMC020) and its event was
        # "used by no transition" (SMC023), warnings that followed from the drop alone.
        "SMC003-no-follow-on-warnings",
        {
            "m.yaml": "initial_state: a\nstates: [a, b, c]\nevents: [go, stop]\n"
            "transitions:\n  - {from: a, to: b, event: go}\n"
            "transitions:\n  - {from: b, to: c, event: stop}\n"
        },
        {("m.yaml", 6, 1, "SMC003")},
        ("line 4",),
    ),
    Case(
        "SMC003-on-and-true",
        {"m.yaml": "initial_state: a\n" + OK_TAIL + "metadata:\n  on: 1\n  true: 2\n"},
        {("m.yaml", 6, 3, "SMC003")},
        ("the same key as 'on'",),
    ),
    Case(
        "SMC004-misspelled-key",
        {"m.yaml": "initial_state: a\ntranstions:\n  - {from: a, to: b, event: go}\n"},
        {("m.yaml", 1, 1, "SMC004"), ("m.yaml", 2, 1, "SMC004")},
        ("neither `transitions` nor `states`",),
    ),
    Case(
        "SMC004-boolean-name",
        {"m.yaml": "initial_state: a\ntransitions:\n  - {from: a, to: off, event: go}\n"},
        {("m.yaml", 3, 19, "SMC004")},
        ("transitions[0].to must be a string, not the boolean false", "quote the name"),
    ),
    Case(
        "SMC004-boolean-state-key",
        {"m.yaml": "initial_state: a\nstates:\n  a:\n    allowed_transitions: [b]\n  yes: {}\n"},
        {("m.yaml", 5, 3, "SMC004")},
        ("read as the boolean true",),
    ),
    Case(
        # Without `event:` a transition is eventless (a statechart's); without `to:` and
        # without actions it is a forgotten target, not a targetless transition.
        "SMC076-missing-to",
        {
            "m.yaml": "initial_state: a\ntransitions:\n  - from: a\n    event: go\n"
            "  - {from: a, to: b, event: stop}\n"
        },
        {("m.yaml", 3, 5, "SMC076")},
        ("a transition without `to:` and without actions does nothing", "write `to: []`"),
    ),
    Case(
        "SMC076-targetless-from-wildcard",
        {
            "m.yaml": "initial_state: a\ntransitions:\n  - {from: a, to: b, event: go}\n"
            '  - {from: "*", to: [], event: stop}\n'
        },
        {("m.yaml", 4, 12, "SMC076")},
        ('a targetless transition from `"*"`',),
    ),
    Case(
        "SMC004-misspelled-transition-key",
        {"m.yaml": "initial_state: a\ntransitions:\n  - {from: a, to: b, event: go, acton: x}\n"},
        {("m.yaml", 3, 33, "SMC004")},
        ("unknown key 'acton' in transitions[0]", "did you mean 'actions'?"),
    ),
    Case(
        "SMC004-bad-machine-name",
        {"m.yaml": "initial_state: a\nmetadata:\n  machine_name: 'my machine'\n" + OK_TAIL},
        {("m.yaml", 3, 17, "SMC004")},
        ("not a valid machine name",),
    ),
    Case(
        "SMC005-xstate-entry",
        {"m.yaml": "initial_state: A\nstates:\n  A:\n    entry: [{type: log}]\n"},
        {("m.yaml", 4, 5, "SMC005")},
        ("`entry:` is xstate's spelling", "on_entry"),
    ),
    Case(
        # The nested format is read (it was SMC005): a composite with no children is SMC070.
        "SMC070-composite-without-children",
        {"m.yaml": "initial_state: A\nstates:\n  A:\n    type: composite\n    states: {}\n"},
        {("m.yaml", 3, 3, "SMC070")},
        ("state 'A' is compound but has no child states",),
    ),
    Case(
        "SMC071-initial-not-a-child",
        {
            "m.yaml": "initial_state: p\nstates:\n  - {name: p, initial: c, states: [a, b]}\n"
            "  - c\ntransitions:\n  - {from: a, to: c, event: go}\n"
            "  - {from: c, to: b, event: back}\n"
        },
        {("m.yaml", 3, 24, "SMC071")},
        ("initial state 'c' of 'p' is not inside it", "children: a, b"),
    ),
    Case(
        "SMC072-history-at-top-level",
        {
            "m.yaml": "initial_state: a\nstates:\n  - a\n  - {name: h, history: deep}\n"
            "transitions:\n  - {from: a, to: h, event: back}\n"
        },
        {("m.yaml", 4, 5, "SMC072")},
        ("history pseudo-state 'h' is not inside a compound state",),
    ),
    Case(
        # `smc check` looped for good (the defaults) or ran out of stack (a default that is
        # the parent's initial state, the history itself): entering it never ends
        "SMC072-history-defaults-in-a-loop",
        {
            "m.yaml": "initial_state: p\nstates:\n  - name: p\n    states:\n"
            "      - {name: h1, history: shallow, to: h2}\n"
            "      - {name: h2, history: shallow, to: h1}\n      - x\n"
            "transitions: [{from: x, to: h1, event: go}]\n"
        },
        {("m.yaml", 5, 42, "SMC072"), ("m.yaml", 6, 42, "SMC072")},
        ("history pseudo-state 'h1' has no default to enter", "(h1 -> h2 -> h1)"),
    ),
    Case(
        "SMC072-history-default-is-itself",
        {
            "m.yaml": "initial_state: p\nstates:\n  - name: p\n    initial: h\n"
            "    states: [{name: h, history: shallow}, x]\n"
        },
        {("m.yaml", 4, 14, "SMC072"), ("m.yaml", 5, 43, "SMC020")},
        ("its default (the initial state of 'p') leads back to it (h -> h)",),
    ),
    Case(
        # the catch-all SMC078 said so, at `initial_state`
        "SMC070-only-a-history-child",
        {
            "m.yaml": "initial_state: b\nstates:\n  - b\n  - name: a\n"
            "    states: [{name: h, history: shallow}]\n"
            "transitions: [{from: b, to: a, event: go}]\n"
        },
        {("m.yaml", 4, 5, "SMC070")},
        ("state 'a' is compound but has no child states besides its history",),
    ),
    Case(
        "SMC073-targets-in-one-compound",
        {
            "m.yaml": "initial_state: a\nstates:\n  - a\n  - {name: p, states: [x, y]}\n"
            "transitions:\n  - {from: a, to: [x, y], event: go}\n"
        },
        {("m.yaml", 6, 23, "SMC073")},
        ("targets 'x' and 'y' cannot be active at once", "children of 'p', which is not parallel"),
    ),
    Case(
        "SMC074-eventless-cycle",
        {
            "m.yaml": "initial_state: a\ntransitions:\n  - {from: a, to: b}\n"
            "  - {from: b, to: a}\n  - {from: b, to: c, event: go}\n"
        },
        {("m.yaml", 3, 5, "SMC074")},
        ("eventless transitions loop for ever: a -> b -> a",),
    ),
    Case(
        "SMC074-loop-through-a-parallel-state",
        {
            # s1 -> s2 leaves the parallel state p and enters it again, s1 included
            "m.yaml": "initial_state: p\nstates:\n  - name: p\n    parallel: true\n"
            "    states: [s1, s2]\ntransitions:\n  - {from: s1, to: s2}\n"
        },
        {("m.yaml", 7, 5, "SMC074")},
        ("the machine never settles after the start: it keeps taking s1 -> s2",),
    ),
    Case(
        "SMC077-too-many-situations",
        # four regions of eleven states, each moved by its own event: 11**4 situations
        {"m.yaml": TOO_MANY_SITUATIONS},
        {("m.yaml", 1, 16, "SMC077")},
        ("reaches more than 10000 situations",),
    ),
    Case(
        "SMC078-final-region",
        {
            "m.yaml": "initial_state: p\nstates:\n  - name: p\n    parallel: true\n"
            "    states:\n      - {name: r1, states: [a, b]}\n      - {name: r2, final: true}\n"
            "transitions:\n  - {from: a, to: b, event: go}\n"
        },
        {("m.yaml", 7, 9, "SMC078")},
        ("final state 'r2' is a region of parallel state 'p'",),
    ),
    Case(
        "SMC075-one-region",
        {
            "m.yaml": "initial_state: p\nstates:\n  - name: p\n    parallel: true\n"
            "    states:\n      - {name: r, states: [a, b]}\n"
            "transitions:\n  - {from: a, to: b, event: go}\n"
        },
        {("m.yaml", 3, 5, "SMC075")},
        ("parallel state 'p' has one region, 'r'",),
    ),
    Case(
        "SMC006-alias-bomb",
        {
            "m.yaml": "initial_state: a\n"
            + OK_TAIL
            + "metadata:\n  l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 9)),
        },
        {("m.yaml", 10, 7, "SMC006")},
        ("more than 1,000,000 nodes",),
    ),
    Case(
        "SMC006-too-deep",
        {"m.yaml": "initial_state: a\n" + OK_TAIL + "metadata:\n  x: " + "[" * 70 + "]" * 70},
        {("m.yaml", 5, 69, "SMC006")},
        ("nested more than 64 levels",),
    ),
    Case(
        "SMC006-recursive-alias",
        {"m.yaml": "initial_state: a\n" + OK_TAIL + "metadata:\n  x: &x [a, *x]\n"},
        {("m.yaml", 5, 13, "SMC006")},
        ("contains it",),
    ),
    Case(
        "SMC007-not-utf8",
        {"m.yaml": b"initial_state: a\nname: caf\xe9\n" + OK_TAIL.encode()},
        {("m.yaml", 2, 10, "SMC007")},
        ("byte 0xe9",),
    ),
    Case(
        "SMC010-unknown-target",
        {
            "m.yaml": "initial_state: idle\ntransitions:\n  - {from: idle, to: runing, event: go}\n"
            "  - {from: running, to: idle, event: back}\nstates: [idle, running]\n"
        },
        # 'running' is not reported unreachable: the misspelt transition was meant to reach it
        {("m.yaml", 3, 22, "SMC010")},
        ("`to` state 'runing' is not a state", "did you mean 'running'?"),
    ),
    Case(
        # Its source is misspelt: it counts for 'waiting', the state the hint names, so the
        # claimed job's new_job is handled there (no SMC026 sending the author to add the
        # transition they have).
        "SMC010-misspelt-source-no-follow-on-diagnostics",
        {
            "m.yaml": "initial_state: waiting\nstates: [waiting, working]\n"
            "transitions:\n  - {from: waitng, to: working, event: new_job}\n"
            "  - {from: waiting, to: waiting, event: no_jobs}\n"
            "  - {from: working, to: waiting, event: job_completed}\n"
            "  - {from: working, to: waiting, event: error}\n"
            "actions:\n  waiting:\n    - type: check_database_queue\n"
            "  working:\n    - type: complete_job\n"
        },
        {("m.yaml", 4, 12, "SMC010")},
        ("`from` state 'waitng' is not a state", "did you mean 'waiting'?"),
    ),
    Case(
        # The transition exists, only its target is wrong: 'working' has a transition on
        # job_done (no SMC022), and 'finishing' is what it was meant to reach (no SMC020).
        "SMC010-no-follow-on-diagnostics",
        {
            "m.yaml": "initial_state: waiting\nstates: [waiting, working, finishing]\n"
            "transitions:\n  - {from: waiting, to: working, event: new_job}\n"
            "  - {from: waiting, to: waiting, event: no_jobs}\n"
            "  - {from: working, to: finishng, event: job_done}\n"
            "  - {from: working, to: waiting, event: error}\n"
            "  - {from: finishing, to: waiting, event: success}\n"
            "  - {from: finishing, to: waiting, event: error}\n"
            "actions:\n  waiting:\n    - type: check_database_queue\n"
            "  working:\n    - {type: bash, command: make, success: job_done}\n"
            "  finishing:\n    - type: complete_job\n"
        },
        {("m.yaml", 6, 25, "SMC010")},
        ("did you mean 'finishing'?",),
    ),
    Case(
        # A self-loop and a transition to a misspelt state: the state is not a trap (SMC021),
        # and the target of a transition from a misspelt state is not unreachable (SMC020).
        "SMC010-unknown-source-and-target",
        {
            "m.yaml": "initial_state: a\nstates: [a, b, c]\ntransitions:\n"
            "  - {from: a, to: a, event: again}\n  - {from: a, to: bb, event: go}\n"
            "  - {from: x, to: c, event: go}\n"
        },
        {("m.yaml", 5, 19, "SMC010"), ("m.yaml", 6, 12, "SMC010")},
    ),
    Case(
        "SMC010-unknown-initial",
        {"m.yaml": "initial_state: start\n" + OK_TAIL},
        {("m.yaml", 1, 16, "SMC010")},
    ),
    Case(
        "SMC010-unknown-allowed-transition",
        {"m.yaml": "initial_state: A\nstates:\n  A: {allowed_transitions: [B, C]}\n  B: {}\n"},
        {("m.yaml", 3, 32, "SMC010")},
        ("allowed transition 'C'",),
    ),
    Case(
        "SMC010-unknown-final-state",
        {"m.yaml": "initial_state: a\n" + OK_TAIL + "final_states: [c]\n"},
        {("m.yaml", 4, 16, "SMC010")},
        ("state in `final_states` 'c'",),
    ),
    Case(
        "SMC011-duplicate-state",
        {"m.yaml": "initial_state: a\nstates:\n  - a\n  - b\n  - a\n" + OK_TAIL},
        {("m.yaml", 5, 5, "SMC011")},
        ("declared twice", "line 3"),
    ),
    Case(
        "SMC012-duplicate-transition",
        {"m.yaml": "initial_state: a\n" + OK_TAIL + "  - {from: a, to: b, event: go}\n"},
        {("m.yaml", 4, 5, "SMC012")},
        ("written twice",),
    ),
    Case(
        "SMC012-through-an-alias",
        {
            "m.yaml": "initial_state: a\ntransitions:\n  - &t {from: a, to: b, event: go}\n"
            "  - *t\n"
        },
        {("m.yaml", 4, 5, "SMC012")},
    ),
    Case(
        "SMC013-conflicting-transitions",
        {
            "m.yaml": "initial_state: a\n" + OK_TAIL + "  - {from: a, to: c, event: go}\n"
            "  - {from: c, to: b, event: x}\n"
        },
        {("m.yaml", 4, 29, "SMC013"), ("m.yaml", 4, 19, "SMC020")},
        ("already goes to 'b'", "no condition", "document order"),
    ),
    Case(
        "SMC013-after-the-else",
        {
            "m.yaml": "initial_state: a\ncontext: {n: {type: integer, default: 0}}\n"
            "transitions:\n  - {from: a, to: b, event: go}\n"
            "  - {from: a, to: c, event: go, when: 'n > 1'}\n  - {from: c, to: b, event: x}\n"
        },
        {("m.yaml", 5, 29, "SMC013")},
        ("with no condition (line 4)",),
    ),
    Case(
        "SMC012-same-condition-twice",
        {
            "m.yaml": "initial_state: a\ncontext: {n: {type: integer, default: 0}}\n"
            "transitions:\n  - {from: a, to: b, event: go, when: n > 1}\n"
            "  - {from: a, to: b, event: go, when: n > 1}\n"
        },
        {("m.yaml", 5, 5, "SMC012")},
        ("same conditions (when: n > 1)",),
    ),
    Case(
        "SMC014-shadowed-by-wildcard",
        {
            "m.yaml": "initial_state: a\ntransitions:\n  - {from: a, to: b, event: go}\n"
            "  - {from: '*', to: a, event: reset}\n  - {from: b, to: b, event: reset}\n"
        },
        {("m.yaml", 5, 5, "SMC014")},
        ("line 4",),
    ),
    Case(
        "SMC015-final-with-way-out",
        {
            "m.yaml": "initial_state: a\nstates:\n  - a\n  - {name: b, final: true}\n"
            + OK_TAIL
            + "  - {from: b, to: a, event: back}\n"
        },
        {("m.yaml", 7, 12, "SMC015")},
    ),
    Case(
        "SMC016-actions-on-wildcard",
        {
            "m.yaml": "initial_state: a\n" + OK_TAIL + "  - from: '*'\n    to: b\n    event: stop\n"
            "    actions:\n      - type: log\n"
        },
        {("m.yaml", 8, 15, "SMC016")},
    ),
    Case(
        "SMC017-two-groups",
        {"m.yaml": "initial_state: a\n" + OK_TAIL + "groups:\n  one: [a]\n  two: [a, b]\n"},
        {("m.yaml", 6, 3, "SMC017")},
    ),
    Case(
        "SMC020-unreachable",
        {
            "m.yaml": "initial_state: a\nstates: [a, b, lost]\n"
            + OK_TAIL
            + "  - {from: lost, to: b, event: go}\n"
        },
        {("m.yaml", 2, 16, "SMC020")},
    ),
    Case(
        "SMC021-no-way-out",
        {"m.yaml": "initial_state: a\n" + OK_TAIL + "  - {from: b, to: b, event: again}\n"},
        {("m.yaml", 3, 19, "SMC021")},
    ),
    Case(
        "SMC022-fixed-event",
        {"m.yaml": "initial_state: a\n" + OK_TAIL + "actions:\n  a:\n    - type: sleep\n"},
        {("m.yaml", 6, 13, "SMC022")},
        ("returns 'wake_up' by itself",),
    ),
    Case(
        "SMC022-last-action",
        {
            "m.yaml": "initial_state: a\n"
            + OK_TAIL
            + "actions:\n  a:\n    - type: log\n    - type: bash\n      command: 'true'\n"
            "      success: gone\n"
        },
        {("m.yaml", 9, 16, "SMC022")},
        ("last action", "did you mean 'go'?"),
    ),
    Case(
        "SMC023-unused-event",
        {"m.yaml": "initial_state: a\n" + OK_TAIL + "events: [go, spare]\n"},
        {("m.yaml", 4, 14, "SMC023")},
    ),
    Case(
        "SMC024-timer-lookalike",
        {"m.yaml": "initial_state: a\ntransitions:\n  - {from: a, to: b, event: 'timeout(5s)'}\n"},
        {("m.yaml", 3, 29, "SMC024")},
        ("timeout(5)",),
    ),
    Case(
        "SMC025-undeclared-event",
        {
            "m.yaml": "initial_state: a\n" + OK_TAIL + "  - {from: b, to: a, event: bakc}\n"
            "  - {from: b, to: b, event: timeout(1)}\nevents: [go, back]\n"
        },
        # 'back' is not reported unused as well: the misspelling was meant to use it
        {("m.yaml", 4, 29, "SMC025")},
        ("'bakc' is not listed", "did you mean 'back'?"),
    ),
    Case(
        # Issue 11: the typo passed `smc check` and `smc run` then held the job for ever.
        "SMC025-event-typo-strands-a-claimed-job",
        {
            "m.yaml": "initial_state: waiting\nevents: [new_job, no_jobs, done, error]\n"
            "transitions:\n  - {from: waiting, to: working, event: new_jbo}\n"
            "  - {from: waiting, to: waiting, event: no_jobs}\n"
            "  - {from: working, to: waiting, event: done}\n"
            "  - {from: working, to: waiting, event: error}\n"
            "actions:\n  waiting:\n    - type: check_database_queue\n"
            "  working:\n    - {type: bash, command: 'true', success: done}\n"
        },
        {("m.yaml", 4, 41, "SMC025"), ("m.yaml", 10, 13, "SMC026")},
        ("'new_jbo' is not listed", "did you mean 'new_job'?"),
    ),
    Case(
        "SMC025-action-event",
        {
            "m.yaml": "initial_state: a\nevents: [go]\n" + OK_TAIL + "actions:\n  a:\n"
            "    - {type: pop_from_list, success: goo, empty: go}\n"
        },
        {("m.yaml", 7, 38, "SMC025")},
        ("'goo' is not listed", "did you mean 'go'?"),
    ),
    Case(
        "SMC026-claim-job-on-the-last-action",
        {
            "m.yaml": "initial_state: a\n" + OK_TAIL + "  - {from: a, to: b, event: taken}\n"
            "  - {from: a, to: b, event: error}\n"
            "actions:\n  a:\n    - type: claim_job\n      job_id: '{job}'\n"
            "      already_claimed: taken\n      success: got\n"
        },
        {("m.yaml", 11, 16, "SMC026")},
        ("claims a job", "no transition leaves 'a' on 'got'", "did you mean 'go'?"),
    ),
    Case(
        "SMC026-check-database-queue-new-job",
        {
            "m.yaml": "initial_state: waiting\ntransitions:\n"
            "  - {from: waiting, to: waiting, event: no_jobs}\n"
            "  - {from: waiting, to: done, event: stop}\n"
            "actions:\n  waiting:\n    - type: log\n    - type: check_database_queue\n"
            "    - type: log\n"
        },
        {("m.yaml", 8, 13, "SMC026")},
        ("'new_job'",),
    ),
    Case(
        "SMC030-unknown-action",
        {"m.yaml": "initial_state: a\n" + OK_TAIL + "actions:\n  a:\n    - type: bsah\n"},
        {("m.yaml", 6, 13, "SMC030")},
        ("did you mean 'bash'?",),
    ),
    Case(
        "SMC027-complete-job-lease-lost",
        {
            "m.yaml": "initial_state: waiting\ntransitions:\n"
            "  - {from: waiting, to: finishing, event: new_job}\n"
            "  - {from: waiting, to: waiting, event: no_jobs}\n"
            "  - {from: finishing, to: waiting, event: success}\n"
            "  - {from: '*', to: stopped, event: stop}\n"
            "actions:\n  waiting:\n    - type: check_database_queue\n"
            "  finishing:\n    - type: complete_job\n    - type: log\n"
        },
        {("m.yaml", 11, 13, "SMC027")},
        ("returns 'error' when it fails", "no transition leaves 'finishing' on 'error'"),
    ),
    Case(
        "SMC027-bash-error-mapping",
        {
            "m.yaml": "initial_state: a\n" + OK_TAIL + "  - {from: a, to: b, event: failed}\n"
            "actions:\n  a:\n    - type: bash\n      command: 'false'\n      success: go\n"
            "      error: failed\n      error_mappings: {2: usage}\n"
        },
        {("m.yaml", 11, 23, "SMC027")},
        ("returns 'usage' when it fails",),
    ),
    Case(
        "SMC030-unknown-with-user-actions-given",
        {"m.yaml": "initial_state: a\n" + OK_TAIL + "actions:\n  a:\n    - type: calculate\n"},
        {("m.yaml", 6, 13, "SMC030")},
        ("unknown action type 'calculate'", "--actions-dir"),
        action_types=("greet",),
    ),
    Case(
        "SMC030-unknown-with-action-types-declared",
        {
            "m.yaml": "initial_state: a\naction_types: [greet]\n" + OK_TAIL + "actions:\n  a:\n"
            "    - type: calculate\n"
        },
        {("m.yaml", 7, 13, "SMC030")},
    ),
    Case(
        "SMC034-user-action-unknown-to-the-checker",
        {"m.yaml": "initial_state: a\n" + OK_TAIL + "actions:\n  a:\n    - type: greet\n"},
        {("m.yaml", 6, 13, "SMC034")},
        ("'greet'", "smc run refuses it", "--actions-dir"),
    ),
    Case(
        "SMC031-missing-parameter",
        {
            "m.yaml": "initial_state: a\n" + OK_TAIL + "actions:\n  a:\n    - type: bash\n"
            "      comand: ls\n      success: go\n      error: go\n"
        },
        {("m.yaml", 6, 13, "SMC031"), ("m.yaml", 7, 7, "SMC032")},
        ("needs the parameter 'command'", "'comand' looks like a misspelling"),
    ),
    Case(
        "SMC032-unknown-parameter",
        {
            "m.yaml": "initial_state: a\n" + OK_TAIL + "actions:\n  a:\n    - type: log\n"
            "      mesage: hi\n"
        },
        {("m.yaml", 7, 7, "SMC032")},
        ("did you mean 'message'?",),
    ),
    Case(
        "SMC033-filter",
        {
            "m.yaml": "initial_state: a\n" + OK_TAIL + "actions:\n  a:\n    - type: log\n"
            "      message: 'n={items|length}'\n"
        },
        {("m.yaml", 7, 16, "SMC033")},
    ),
    Case(
        "SMC040-unknown-target-machine",
        {
            "m.yaml": "initial_state: a\n" + OK_TAIL + "actions:\n  a:\n    - type: send_event\n"
            "      target: nobody\n      success: go\n"
        },
        {("m.yaml", 7, 15, "SMC040")},
    ),
    Case(
        "SMC041-target-ignores-event",
        {
            "m.yaml": "initial_state: a\n" + OK_TAIL + "actions:\n  a:\n    - type: send_event\n"
            "      target_machine: other\n      event_type: pnig\n      success: go\n",
            "other.yaml": "initial_state: a\ntransitions:\n  - {from: a, to: b, event: ping}\n",
        },
        {("m.yaml", 8, 19, "SMC041")},
        ("did you mean 'ping'?",),
    ),
    Case(
        "SMC042-same-machine-name",
        {
            "a.yaml": "initial_state: a\nmetadata:\n  machine_name: twin\n" + OK_TAIL,
            "b.yaml": "initial_state: a\nmetadata: {machine_name: twin}\n" + OK_TAIL,
        },
        {("b.yaml", 2, 26, "SMC042")},
        ("a.yaml",),
    ),
    Case(
        # passed the check; `smc build` then crashed (exit 3): "File name too long"
        "SMC050-machine-name-too-long-for-a-file",
        {
            "m.yaml": "initial_state: a\nmetadata: {machine_name: " + "m" * 240 + "}\n"
            "transitions: [{from: a, to: b, event: go}]\n"
        },
        {("m.yaml", 1, 16, "SMC050")},
        ("becomes a file name of 240 bytes; the limit is 200",),
    ),
    Case(
        "SMC050-not-an-identifier",
        {"m.yaml": "initial_state: a\ntransitions:\n  - {from: a, to: '???', event: go}\n"},
        {("m.yaml", 3, 19, "SMC050")},
    ),
    Case(
        "SMC051-collision",
        {
            "m.yaml": "initial_state: a\ntransitions:\n  - {from: a, to: b, event: new-job}\n"
            "  - {from: b, to: a, event: new_job}\n"
        },
        {("m.yaml", 4, 29, "SMC051")},
        ("'NEW_JOB'",),
    ),
    Case(
        # the hook replaced the chart's own on_log(label, value): fire('log') raised TypeError
        "SMC051-hook-is-a-class-method",
        {
            "m.yaml": "initial_state: p\nstates: [{name: p, states: [a, b]}]\n"
            "transitions: [{from: a, to: b, event: log}]\n"
        },
        {("m.yaml", 3, 39, "SMC051")},
        ("the hook of event 'log' becomes 'on_log', a method the generated class has",),
    ),
    Case(
        # passed the check; mypy and pyright then refused the redefinition
        "SMC051-guard-named-take-sent",
        {
            "m.yaml": "initial_state: a\nstates: [a, b]\n"
            "transitions: [{from: a, to: b, event: go, guard: take_sent}]\n"
        },
        {("m.yaml", 3, 50, "SMC051")},
        ("'take_sent' is an attribute the generated class has itself",),
    ),
    Case(
        "SMC051-module-collision",
        {
            "a.yaml": "initial_state: a\nmetadata: {machine_name: my-machine}\n" + OK_TAIL,
            "b.yaml": "initial_state: a\nmetadata: {machine_name: my_machine}\n" + OK_TAIL,
        },
        {("b.yaml", 2, 26, "SMC051")},
        ("module 'my_machine'",),
    ),
    Case(
        "SMC060-arithmetic-placeholder",
        {
            "m.yaml": "initial_state: a\n" + OK_TAIL + "actions:\n  a:\n    - type: bash\n"
            "      command: 'echo $(( {count} + 1 ))'\n"
        },
        {("m.yaml", 7, 26, "SMC060")},
        ("{count}", "arithmetic"),
    ),
    Case(
        "SMC061-placeholder-after-backslash",
        {
            "m.yaml": "initial_state: a\n" + OK_TAIL + "actions:\n  a:\n    - type: bash\n"
            "      command: 'echo \\{name}'\n"
        },
        {("m.yaml", 7, 23, "SMC061")},
        ("{name}", "backslash"),
    ),
    Case(
        "SMC062-dotted-dollar-brace",
        {
            "m.yaml": "initial_state: a\n" + OK_TAIL + "actions:\n  a:\n    - type: bash\n"
            "      command: 'echo ${payload.x}'\n"
        },
        {("m.yaml", 7, 23, "SMC062")},
        ("${payload.x}",),
    ),
    Case(
        "SMC080-misspelt-type",
        {"m.yaml": "initial_state: a\n" + OK_TAIL + "context:\n  n: {type: integr, default: 0}\n"},
        {("m.yaml", 5, 13, "SMC080")},
        ("context field 'n'",),
    ),
    Case(
        "SMC080-payload-property-schema",
        {
            "m.yaml": "initial_state: a\n" + OK_TAIL + "events:\n  go:\n    payload:\n"
            "      type: object\n      properties:\n        path: {type: strin}\n"
        },
        {("m.yaml", 9, 22, "SMC080")},
        ("event 'go'",),
    ),
    Case(
        "SMC080-remote-ref",
        {
            "m.yaml": "initial_state: a\n" + OK_TAIL + "jobs:\n  task:\n"
            "    data: {$ref: 'https://example.com/job.json'}\n"
        },
        {("m.yaml", 6, 18, "SMC080")},
        ("job type 'task'", "#/$defs/"),
    ),
    Case(
        "SMC080-ref-in-context",
        {"m.yaml": "initial_state: a\n" + OK_TAIL + "context:\n  n: {$ref: '#/$defs/x'}\n"},
        {("m.yaml", 5, 7, "SMC080")},
        ("`$ref`",),
    ),
    Case(
        "SMC081-default-below-minimum",
        {
            "m.yaml": "initial_state: a\n" + OK_TAIL + "context:\n"
            "  tries: {type: integer, minimum: 1, default: 0}\n"
        },
        {("m.yaml", 5, 47, "SMC081")},
        ("context field 'tries'",),
    ),
    Case(
        "SMC081-list-item",
        {
            "m.yaml": "initial_state: a\n" + OK_TAIL + "context:\n"
            "  names:\n    type: array\n    items: {type: string}\n    default: [a, 2]\n"
        },
        {("m.yaml", 8, 18, "SMC081")},
    ),
    Case(
        "SMC082-context-field-named-like-an-expression-name",
        {
            "m.yaml": "initial_state: a\ncontext:\n  payload: {type: integer, default: 0}\n"
            "transitions:\n  - {from: a, to: b, event: go}\n"
        },
        {("m.yaml", 3, 3, "SMC082")},
        ("context field 'payload' could never be read",),
    ),
    Case(
        "SMC082-keyword",
        {
            "m.yaml": "initial_state: a\n" + OK_TAIL + "context:\n"
            "  class: {type: string, default: x}\n"
        },
        {("m.yaml", 5, 3, "SMC082")},
        ("'class'", "keyword"),
    ),
    Case(
        "SMC082-payload-field-with-a-space",
        {
            "m.yaml": "initial_state: a\n" + OK_TAIL + "events:\n  go:\n    payload:\n"
            "      type: object\n      properties: {'file name': {type: string}}\n"
        },
        {("m.yaml", 8, 20, "SMC082")},
        ("'file name'",),
    ),
    Case(
        "SMC082-reserved",
        {"m.yaml": "initial_state: a\n" + OK_TAIL + "context:\n  to_dict: {type: string}\n"},
        {("m.yaml", 5, 3, "SMC082")},
        ("to_dict",),
    ),
    Case(
        # the generated module then failed to import: the class body's list default is
        # ``dataclasses.field(...)``, and a field had just named ``dataclasses`` an int
        "SMC082-reserved-module-names",
        {
            "m.yaml": "initial_state: a\n" + OK_TAIL + "context:\n"
            "  dataclasses: {type: integer, default: 2}\n"
            "  Mapping: {type: integer, default: 2}\n"
            "  Context: {type: integer, default: 2}\n"
            "  tags: {type: array, default: []}\n"
        },
        {("m.yaml", 5, 3, "SMC082"), ("m.yaml", 6, 3, "SMC082"), ("m.yaml", 7, 3, "SMC082")},
        ("context field 'dataclasses' is a name the generated class uses itself",),
    ),
    Case(
        # A value the schema refuses alone is set aside and the rest checked: a newcomer fixed
        # `history: medium` to be shown the misspelt `initial` and `to` only then. The state
        # it was on is a plain state for the rest, so only errors are said (it would
        # "cannot be reached", SMC020).
        "SMC004-a-refused-value-hides-nothing-else",
        {
            "m.yaml": "initial_state: active\nstates:\n  - name: active\n    initial: idel\n"
            "    states: [idle, busy, {name: hist, history: medium}]\n"
            "transitions:\n  - {from: idle, to: busy, event: go}\n"
            "  - {from: busy, to: idlee, event: back}\n"
        },
        {
            ("m.yaml", 5, 48, "SMC004"),
            ("m.yaml", 4, 14, "SMC071"),
            ("m.yaml", 8, 22, "SMC010"),
        },
        ("'medium', which is not one of: shallow, deep",),
    ),
    Case(
        # passed the check, then failed every run of the action ("duration must be a number")
        "SMC035-not-a-number",
        {
            "m.yaml": "initial_state: a\ntransitions:\n  - {from: a, to: b, event: wake_up}\n"
            "actions:\n  a:\n    - {type: sleep, duration: soon}\n"
        },
        {("m.yaml", 6, 31, "SMC035")},
        ("'sleep' duration is 'soon', not a number", "0 or more"),
    ),
    Case(
        # a poll every 0 s: 100,000 history rows in 3 s from an idle worker
        "SMC035-zero-poll-interval",
        {
            "m.yaml": "initial_state: a\ntransitions:\n"
            "  - {from: a, to: b, event: new_job}\n  - {from: a, to: a, event: no_jobs}\n"
            "actions:\n  a:\n"
            "    - {type: check_database_queue, wait: '{delay}', poll_interval: 0}\n"
        },
        {("m.yaml", 7, 68, "SMC035")},
        ("poll_interval is 0: it must be more than 0",),
    ),
    Case(
        # an idle worker of this machine wrote 80,000 history rows in 3 s
        "SMC036-queue-poll-that-spins",
        {
            "m.yaml": "initial_state: a\ntransitions:\n"
            "  - {from: a, to: b, event: new_job}\n  - {from: a, to: a, event: no_jobs}\n"
            "actions:\n  a:\n    - {type: check_database_queue, wait: 0}\n"
        },
        {("m.yaml", 7, 42, "SMC036")},
        ("has wait 0 and its no_jobs comes back to 'a'", "leave `wait` out"),
    ),
    Case(
        # passed the check, and `smc jobs add` then refused every job of it (not an object)
        "SMC083-job-data-not-an-object",
        {
            "m.yaml": "initial_state: a\n"
            + OK_TAIL
            + "jobs:\n  batch:\n    data: {type: array, items: {type: integer}}\n"
        },
        {("m.yaml", 6, 18, "SMC083")},
        ("the data schema of job type 'batch' must be `type: object`",),
    ),
    Case(
        "SMC083-string-payload",
        {"m.yaml": "initial_state: a\n" + OK_TAIL + "events:\n  go: {payload: {type: string}}\n"},
        {("m.yaml", 5, 24, "SMC083")},
        ("event 'go'", "type: object"),
    ),
    Case(
        "SMC051-payload-classes",
        {
            "m.yaml": "initial_state: a\ntransitions:\n  - {from: a, to: b, event: x_1}\n"
            "  - {from: b, to: a, event: x1}\nevents:\n"
            "  x_1: {payload: {type: object}}\n  x1: {payload: {type: object}}\n"
        },
        {("m.yaml", 7, 8, "SMC051")},
        ("'X1Payload'",),
    ),
    Case(
        "SMC084-payload-field-type",
        {
            "sender.yaml": "initial_state: a\ntransitions:\n"
            "  - {from: a, to: b, event: event_sent}\n"
            "actions:\n  a:\n    - type: send_event\n      target_machine: receiver\n"
            "      event_type: go\n      payload: {n: many, note: '{text}'}\n",
            "receiver.yaml": "initial_state: a\nmetadata: {machine_name: receiver}\n"
            "transitions:\n  - {from: a, to: b, event: go}\nevents:\n  go:\n    payload:\n"
            "      type: object\n      properties: {n: {type: integer}, note: {type: integer}}\n"
            "      required: [n]\n",
        },
        {("sender.yaml", 9, 16, "SMC084")},
        ("payload.n", "'receiver'"),
    ),
    Case(
        "SMC084-missing-required-field",
        {
            "sender.yaml": "initial_state: a\ntransitions:\n"
            "  - {from: a, to: b, event: event_sent}\n"
            "actions:\n  a:\n    - {type: send_event, target_machine: receiver, event_type: go}\n",
            "receiver.yaml": "initial_state: a\nmetadata: {machine_name: receiver}\n"
            "transitions:\n  - {from: a, to: b, event: go}\nevents:\n"
            "  go: {payload: {type: object, required: [n]}}\n",
        },
        {("sender.yaml", 6, 14, "SMC084")},
    ),
    # ---- placeholders against the declared data (SMC085-SMC086) ----
    Case(
        "SMC085-payload-field",
        {
            "m.yaml": "initial_state: a\nevents:\n  go:\n    payload:\n      type: object\n"
            "      properties: {file: {type: string}}\n      additionalProperties: false\n"
            "transitions:\n  - {from: a, to: b, event: go}\n"
            "actions:\n  b:\n    - {type: log, message: 'got {payload.fiel}'}\n"
        },
        {("m.yaml", 12, 42, "SMC085")},
        ("{payload.fiel}", "did you mean 'file'?"),
    ),
    Case(
        "SMC086-context-field",
        {
            "m.yaml": "initial_state: a\ncontext: {limit: {type: integer, default: 3}}\n"
            "transitions:\n  - {from: a, to: b, event: go}\n"
            "actions:\n  a:\n    - {type: log, message: 'at most {limt}'}\n"
        },
        {("m.yaml", 7, 38, "SMC086")},
        ("{limt}", "'limit'"),
    ),
    # ---- expressions: when:, assign (SMC090-SMC094) ----
    Case(
        "SMC090-not-an-expression",
        {
            "m.yaml": "initial_state: a\ncontext: {n: {type: integer, default: 0}}\n"
            "transitions:\n  - {from: a, to: b, event: go, when: 'n <'}\n"
        },
        {("m.yaml", 4, 43, "SMC090")},
        ("not a valid expression",),
    ),
    Case(
        "SMC090-a-call-in-a-double-quoted-block",
        {
            "m.yaml": "initial_state: a\ncontext: {n: {type: integer, default: 0}}\n"
            "transitions:\n  - from: a\n    to: b\n    event: go\n"
            '    when: "n > 0 and\n      \\"x\\" == open(\'f\').name"\n'
        },
        {("m.yaml", 8, 16, "SMC090")},
        ("function calls",),
    ),
    Case(
        "SMC090-assignment-in-a-literal-block",
        {
            "m.yaml": "initial_state: a\ncontext: {n: {type: integer, default: 0}}\n"
            "transitions:\n  - {from: a, to: b, event: go}\n"
            "actions:\n  a:\n    - type: assign\n      location: n\n      expr: |\n"
            "        n + 1\n        n = 2\n"
        },
        {("m.yaml", 11, 9, "SMC090")},
        ("assignment is not allowed",),
    ),
    Case(
        "SMC091-unknown-context-field",
        {
            "m.yaml": "initial_state: a\ncontext:\n  attempts: {type: integer, default: 0}\n"
            "transitions:\n  - {from: a, to: b, event: go, when: attempts < max_attempts}\n"
        },
        {("m.yaml", 5, 50, "SMC091")},
        ("'max_attempts'", "did you mean 'attempts'?"),
    ),
    Case(
        "SMC091-payload-field-in-an-on-list",
        {
            "m.yaml": "initial_state: a\nstates:\n  - name: a\n    on:\n      failed:\n"
            "        - {to: b, when: \"payload.eror != ''\"}\n        - {to: c}\n  - b\n  - c\n"
            "events:\n  failed:\n    payload:\n      type: object\n"
            "      properties: {error: {type: string}}\n      required: [error]\n"
        },
        {("m.yaml", 6, 34, "SMC091")},
        ("event 'failed' has no field 'eror'", "did you mean 'error'?"),
    ),
    Case(
        "SMC091-no-payload-in-a-state-action",
        {
            "m.yaml": "initial_state: a\ncontext: {e: {type: string, default: ''}}\n"
            "transitions:\n  - {from: a, to: b, event: go}\n"
            "actions:\n  b:\n    - {type: assign, location: e, expr: payload.error}\n"
        },
        {("m.yaml", 7, 41, "SMC091")},
        ("a state's actions", "the transition"),
    ),
    Case(
        "SMC092-when-is-not-a-condition",
        {
            "m.yaml": "initial_state: a\ncontext: {n: {type: integer, default: 0}}\n"
            "transitions:\n  - {from: a, to: b, event: go, when: 'n + 1'}\n"
        },
        {("m.yaml", 4, 40, "SMC092")},
        ("true or false", "an integer"),
    ),
    Case(
        "SMC092-value-does-not-fit",
        {
            "m.yaml": "initial_state: a\ncontext: {n: {type: integer, default: 0}}\n"
            "transitions:\n  - from: a\n    to: b\n    event: go\n    actions:\n"
            "      - {type: assign, location: n, expr: 'n / 2'}\n"
        },
        {("m.yaml", 8, 44, "SMC092")},
        ("a number", "an integer", "`//`"),
    ),
    Case(
        "SMC093-unknown-location",
        {
            "m.yaml": "initial_state: a\ncontext: {attempts: {type: integer, default: 0}}\n"
            "transitions:\n  - from: a\n    to: b\n    event: go\n    actions:\n"
            "      - {type: assign, location: attempt, expr: '1'}\n"
        },
        {("m.yaml", 8, 34, "SMC093")},
        ("'attempt'", "did you mean 'attempts'?"),
    ),
    Case(
        "SMC093-part-of-a-field",
        {
            "m.yaml": "initial_state: a\ncontext: {config: {type: object, default: {}}}\n"
            "transitions:\n  - {from: a, to: b, event: go}\n"
            "actions:\n  a:\n    - {type: assign, location: config.retries, expr: '1'}\n"
        },
        {("m.yaml", 7, 32, "SMC093")},
        ("whole field",),
    ),
    Case(
        "SMC094-guards-are-not-compiled-yet",
        {
            "m.yaml": "initial_state: a\ncontext: {n: {type: integer, default: 0}}\n"
            "transitions:\n  - {from: a, to: b, event: go, when: n > 0}\n"
            "  - {from: a, to: c, event: go}\n"
        },
        {("m.yaml", 4, 5, "SMC094")},
        ("not yet written by `smc export`",),
        compiling=True,
    ),
    Case(
        "SMC079-guarded-machine-gets-no-paths",
        {
            "m.yaml": "initial_state: a\ncontext: {n: {type: integer, default: 0}}\n"
            "transitions:\n  - {from: a, to: b, event: go, when: n > 0}\n"
            "  - {from: a, to: c, event: go}\n"
        },
        {("m.yaml", 4, 5, "SMC079")},
        ("no paths are written",),
        compiling=True,
        walking=True,
    ),
    Case(
        "SMC095-send-unknown-event",
        {
            "m.yaml": "initial_state: a\nevents: [go, tick]\n"
            "transitions:\n  - {from: a, to: b, event: go}\n  - {from: b, to: a, event: tick}\n"
            "actions:\n  b:\n    - {type: send, event: tik}\n"
        },
        {("m.yaml", 8, 27, "SMC095")},
        ("'tik'", "did you mean 'tick'?"),
    ),
    Case(
        "SMC096-send-payload-field",
        {
            "m.yaml": "initial_state: a\ncontext: {n: {type: integer, default: 0}}\n"
            "events:\n  go: null\n"
            "  tick: {payload: {type: object, properties: {count: {type: integer}}}}\n"
            "transitions:\n  - {from: a, to: b, event: go}\n  - {from: b, to: a, event: tick}\n"
            "actions:\n  b:\n    - {type: send, event: tick, delay: 2s, payload: {cuont: n}}\n"
        },
        {("m.yaml", 11, 54, "SMC096")},
        ("no field 'cuont'", "did you mean 'count'?"),
    ),
    Case(
        "SMC096-send-delay",
        {
            "m.yaml": "initial_state: a\n"
            "transitions:\n  - {from: a, to: b, event: go}\n  - {from: b, to: a, event: tick}\n"
            "actions:\n  b:\n    - {type: send, event: tick, delay: soon}\n"
        },
        {("m.yaml", 7, 40, "SMC096")},
        ("'soon'", "500ms"),
    ),
    Case(
        "SMC097-runtime-action-in-if",
        {
            "m.yaml": "initial_state: a\ncontext: {n: {type: integer, default: 0}}\n"
            "transitions:\n  - {from: a, to: b, event: go}\n"
            "actions:\n  b:\n    - type: if\n      when: n > 0\n      then:\n"
            "        - {type: bash, command: ls}\n"
        },
        {("m.yaml", 10, 18, "SMC097")},
        ("'bash'", "assign, raise, log"),
    ),
    Case(
        "SMC097-log-message-and-expr",
        {
            "m.yaml": "initial_state: a\ncontext: {n: {type: integer, default: 0}}\n"
            "transitions:\n  - {from: a, to: b, event: go}\n"
            "actions:\n  b:\n    - {type: log, message: hi, expr: n}\n"
        },
        {("m.yaml", 7, 19, "SMC097")},
        ("`message`",),
    ),
    Case(
        "SMC050-guard-name",
        {
            "m.yaml": "initial_state: a\ntransitions:\n"
            "  - {from: a, to: b, event: go, guard: has-room}\n"
        },
        {("m.yaml", 3, 40, "SMC050")},
        ("`guard:` 'has-room'",),
    ),
    Case(
        "SMC051-unless-name-is-an-event-method",
        {
            "m.yaml": "initial_state: a\ntransitions:\n"
            "  - {from: a, to: b, event: go, unless: stop}\n"
            "  - {from: b, to: a, event: stop}\n"
        },
        {("m.yaml", 3, 41, "SMC051")},
        ("the method of event 'stop'",),
    ),
    Case(
        "SMC051-event-named-like-the-context",
        {
            "m.yaml": "initial_state: a\ntransitions:\n  - {from: a, to: b, event: context}\n"
            "context:\n  n: {type: integer, default: 0}\n"
        },
        {("m.yaml", 3, 29, "SMC051")},
        ("'context'", "attribute"),
    ),
    Case(
        "SMC100-malformed-scxml",
        {"m.scxml": '<scxml xmlns="http://www.w3.org/2005/07/scxml">\n  <state id="a">\n'},
        {("m.scxml", 3, 1, "SMC100")},
        ("invalid XML",),
    ),
    Case(
        "SMC101-scxml-invoke",
        {
            "m.scxml": '<scxml xmlns="http://www.w3.org/2005/07/scxml">\n'
            '  <state id="a"><invoke src="c.scxml"/></state>\n</scxml>\n'
        },
        {("m.scxml", 2, 17, "SMC101")},
        ("<invoke>",),
    ),
    Case(
        "SMC102-scxml-unknown-attribute",
        {
            "m.scxml": '<scxml xmlns="http://www.w3.org/2005/07/scxml">\n'
            '  <state id="a" intial="b"><transition target="b" event="e"/></state>\n'
            '  <final id="b"/>\n</scxml>\n'
        },
        {("m.scxml", 2, 24, "SMC102")},
        ("ignored",),
    ),
    Case(
        "SMC103-scxml-data-src-missing",
        {
            "m.scxml": '<scxml xmlns="http://www.w3.org/2005/07/scxml">\n'
            '  <datamodel><data id="v" src="file:absent.json"/></datamodel>\n'
            '  <state id="a"><transition target="b" event="e"/></state>\n'
            '  <final id="b"/>\n</scxml>\n'
        },
        {("m.scxml", 2, 31, "SMC103")},
        ("cannot be read", "error.execution"),
    ),
    Case(
        "SMC120-workflow-schema",
        {"w.yaml": "workflow: release\ntasks:\n  build: {job_type: build, timeout: 5y}\n"},
        {("w.yaml", 3, 37, "SMC120")},
        ("not a duration", "10m"),
    ),
    Case(
        # A zero backoff passed the schema and crashed the model ("internal error").
        "SMC120-workflow-zero-duration",
        {"w.yaml": "workflow: w\ntasks:\n  a: {job_type: j, retry: {backoff: 0s}}\n"},
        {("w.yaml", 3, 37, "SMC120")},
        ("'0s'", "more than 0"),
    ),
    Case(
        "SMC121-workflow-cycle",
        {
            "w.yaml": "workflow: release\ntasks:\n"
            "  build: {job_type: b, needs: [publish]}\n"
            "  test: {job_type: t, needs: [build]}\n"
            "  publish: {job_type: p, needs: [test]}\n"
        },
        {("w.yaml", 3, 32, "SMC121")},
        (
            "build -> publish -> test -> build",
            "build needs publish (3:32), publish needs test (5:34), test needs build (4:31)",
        ),
    ),
    Case(
        "SMC122-workflow-unknown-need",
        {"w.yaml": "workflow: w\ntasks:\n  a: {job_type: x}\n  b: {job_type: x, needs: [c]}\n"},
        {("w.yaml", 4, 28, "SMC122")},
        ("'c'",),
    ),
    Case(
        "SMC123-workflow-need-twice",
        {"w.yaml": "workflow: w\ntasks:\n  a: {job_type: x}\n  b: {job_type: x, needs: [a, a]}\n"},
        {("w.yaml", 4, 31, "SMC123")},
        ("twice",),
    ),
    Case(
        "SMC124-workflow-behind-cycle",
        {
            "w.yaml": "workflow: w\ntasks:\n"
            "  a: {job_type: x, needs: [a]}\n"
            "  b: {job_type: x, needs: [a]}\n"
        },
        {("w.yaml", 3, 28, "SMC121"), ("w.yaml", 4, 3, "SMC124")},
        ("never start",),
    ),
    Case(
        "SMC126-workflow-data-key",
        {"w.yaml": "workflow: w\ntasks:\n  a: {job_type: x, data: {workflow: 1}}\n"},
        {("w.yaml", 3, 27, "SMC126")},
        ("data.workflow",),
    ),
    Case(
        "SMC125-workflow-unclaimed-job-type",
        {
            "w.yaml": "workflow: w\ntasks:\n  a: {job_type: build}\n  b: {job_type: tset}\n",
            "m.yaml": "initial_state: w\nstates: [w, done]\nevents: [new_job, no_jobs]\n"
            "transitions:\n  - {from: w, to: done, event: new_job}\n"
            "  - {from: w, to: w, event: no_jobs}\n"
            "actions:\n  w:\n    - {type: check_database_queue, job_type: build}\n",
        },
        {("w.yaml", 4, 17, "SMC125")},
        ("'tset'",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_broken_machine(tmp_path: Path, case: Case) -> None:
    result = check(
        tmp_path, case.files, case.action_types, compiling=case.compiling, walking=case.walking
    )
    assert found(result) == case.expected
    first = min(d for d in result.diagnostics if d.code == case.id.split("-")[0])
    for text in case.says:
        assert text in f"{first.message} | {first.hint}"


def test_every_code_is_produced_by_a_case() -> None:
    produced = {code for case in CASES for *_, code in case.expected}
    assert produced == set(CODES)


def test_every_case_is_named_after_a_code_it_produces() -> None:
    for case in CASES:
        assert case.id.split("-")[0] in {code for *_, code in case.expected}


# ---- what must not be reported ----------------------------------------------------------

CLEAN = {
    "continue-idiom": "initial_state: a\n" + OK_TAIL + "actions:\n  a:\n"
    "    - type: pop_from_list\n      success: has_item\n      empty: go\n    - type: log\n",
    "specific-before-wildcard": "initial_state: a\ntransitions:\n"
    "  - {from: a, to: a, event: stop}\n  - {from: a, to: b, event: go}\n"
    "  - {from: '*', to: b, event: stop}\n",
    "decimal-timeout": "initial_state: a\ntransitions:\n"
    "  - {from: a, to: b, event: timeout(0.5)}\n",
    "quoted-booleans": "initial_state: 'on'\ntransitions:\n"
    "  - {from: 'on', to: 'off', event: 'yes'}\n",
    "polling-self-loop": "initial_state: waiting\ntransitions:\n"
    "  - {from: waiting, to: waiting, event: no_jobs}\n"
    "  - {from: waiting, to: done, event: new_job}\n"
    "actions:\n  waiting:\n    - type: check_database_queue\n",
    "merge-key": "initial_state: a\nmetadata:\n  base: &base {x: 1}\n  more:\n    <<: *base\n"
    "    y: 2\n" + OK_TAIL,
    "user-action-declared": "initial_state: a\naction_types: [greet]\n"
    + OK_TAIL
    + "actions:\n  a:\n    - type: greet\n      success: go\n",
    "final-state-actions": "initial_state: a\n"
    + OK_TAIL
    + "actions:\n  b:\n    - type: bash\n      command: 'true'\n      success: anything\n",
    "utf8-bom": "\ufeffinitial_state: a\n" + OK_TAIL,
    # claim_job's event continues the list: start_fsm, after it, moves the machine on.
    "claim-then-spawn": "initial_state: a\n"
    + OK_TAIL
    + "  - {from: a, to: b, event: failed}\nactions:\n  a:\n"
    "    - {type: claim_job, job_id: '{job}', success: claimed, already_claimed: go,"
    " error: failed}\n"
    "    - {type: start_fsm, yaml_path: w.yaml, success: go, error: failed}\n",
    # A failure with no transition, where something else can move the machine on.
    "failure-with-a-timer": "initial_state: a\n"
    + OK_TAIL
    + "  - {from: a, to: b, event: timeout(30)}\nactions:\n  a:\n"
    "    - {type: complete_job, success: go}\n",
    "failure-with-an-outside-event": "initial_state: a\n"
    + OK_TAIL
    + "  - {from: a, to: b, event: resume}\nactions:\n  a:\n"
    "    - {type: complete_job, success: go}\n",
    "failure-then-a-user-action": "initial_state: a\naction_types: [tidy]\n"
    + OK_TAIL
    + "actions:\n  a:\n    - {type: bash, command: 'true', success: go}\n    - type: tidy\n",
    "failure-of-an-action-that-only-raises": "initial_state: a\n"
    + OK_TAIL
    + "actions:\n  a:\n    - {type: send_event, target_machine: m, event_type: go, success: go}\n",
    "guarded-chain": "initial_state: a\ncontext:\n  n: {type: integer, default: 0}\n"
    "transitions:\n  - {from: a, to: b, event: go, when: n > 1}\n"
    "  - {from: a, to: c, event: go, guard: has_room}\n  - {from: a, to: b, event: go}\n"
    "  - {from: '*', to: a, event: reset, unless: busy}\n  - {from: b, to: a, event: reset}\n",
    "assign-on-a-transition": "initial_state: a\ncontext:\n  n: {type: integer, default: 0}\n"
    "  last: {type: [string, 'null'], default: null}\nevents:\n  failed:\n    payload:\n"
    "      type: object\n      properties: {error: {type: string}}\n      required: [error]\n"
    "transitions:\n  - from: a\n    to: b\n    event: failed\n    actions:\n"
    "      - {type: assign, location: n, expr: n + 1}\n"
    "      - {type: assign, location: last, expr: payload.error}\n"
    "  - {from: '*', to: a, event: failed, actions: [{type: assign, location: n, expr: '0'}]}\n",
}


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_clean_machine(tmp_path: Path, name: str) -> None:
    result = check(tmp_path, {"m.yaml": CLEAN[name]})
    assert result.diagnostics == []
    assert len(result.machines) == 1


def test_hints_point_at_the_misspelt_transition(tmp_path: Path) -> None:
    """A built-in's own event cannot be misspelt: the hint names the transition instead; and
    an event the same action returns (new_job beside no_jobs) is no misspelling."""
    text = (
        "initial_state: waiting\ntransitions:\n"
        "  - {from: waiting, to: working, event: new_jbo}\n"
        "  - {from: working, to: waiting, event: job_done}\n"
        "  - {from: working, to: waiting, event: error}\n"
        "actions:\n  waiting:\n    - type: check_database_queue\n"
        "  working:\n    - type: bash\n      command: 'true'\n"
    )
    result = check(tmp_path, {"m.yaml": text})
    by_code = {d.code: d for d in result.diagnostics}
    assert set(by_code) == {"SMC022", "SMC026"}
    assert by_code["SMC026"].hint.endswith(
        "the transition on 'new_jbo' at line 3 looks like a misspelling of 'new_job'"
    )
    (tmp_path / "fixed").mkdir()
    fixed = check(tmp_path / "fixed", {"m.yaml": text.replace("new_jbo", "new_job")})
    (no_jobs,) = fixed.diagnostics
    assert no_jobs.code == "SMC022" and "no_jobs" in no_jobs.message
    assert "new_job" not in no_jobs.hint


def test_a_failure_event_another_machine_sends_is_a_way_out(tmp_path: Path) -> None:
    """finishing waits for `retry` from the supervisor: complete_job's error does not hang it."""
    worker = (
        "initial_state: a\nmetadata: {machine_name: worker}\ntransitions:\n"
        "  - {from: a, to: b, event: go}\n  - {from: '*', to: a, event: retry}\n"
        "actions:\n  a:\n    - {type: complete_job, success: go}\n"
    )
    supervisor = (
        "initial_state: s\ntransitions:\n  - {from: s, to: t, event: go}\n"
        "actions:\n  s:\n    - {type: send_event, target_machine: worker, event_type: retry,"
        " success: go}\n"
    )
    assert found(check(tmp_path, {"worker.yaml": worker})) == {("worker.yaml", 8, 14, "SMC027")}
    result = check(tmp_path, {"worker.yaml": worker, "supervisor.yaml": supervisor})
    assert result.diagnostics == []


def test_problems_inside_an_alias_point_at_the_alias(tmp_path: Path) -> None:
    text = (
        "initial_state: a\ntransitions:\n  - {from: a, to: b, event: go}\n"
        "actions:\n  a:\n    - &greet {type: log, mesage: hi}\n  b:\n    - *greet\n"
    )
    result = check(tmp_path, {"m.yaml": text})
    assert found(result) == {("m.yaml", 6, 26, "SMC032"), ("m.yaml", 8, 7, "SMC032")}


def test_all_problems_in_one_run_sorted_by_position(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text("initial_state: x\n" + OK_TAIL)
    (tmp_path / "a.yaml").write_text(
        "initial_state: a\nstates: [a, b]\n"
        + OK_TAIL
        + "  - {from: q, to: b, event: go3}\n  - {from: a, to: zz, event: go2}\n"
    )
    result = check_paths([str(tmp_path / "b.yaml"), str(tmp_path / "a.yaml")])
    assert [(Path(d.path).name, d.line, d.col, d.code) for d in result.diagnostics] == [
        ("a.yaml", 5, 12, "SMC010"),
        ("a.yaml", 6, 19, "SMC010"),
        ("b.yaml", 1, 16, "SMC010"),
    ]


# ---- output formats ---------------------------------------------------------------------


def test_text_format_shows_the_line_a_caret_and_the_hint() -> None:
    diagnostic = Diagnostic(
        "m.yaml", 2, 5, "SMC010", "`to` state 'x' is unknown", "did you mean 'y'?"
    )
    text = format_text(diagnostic, ["initial_state: a", "to: x"])
    assert text.splitlines() == [
        "m.yaml:2:5: error[SMC010]: `to` state 'x' is unknown",
        "     2 | to: x",
        "       |     ^",
        "  hint: did you mean 'y'?",
    ]


def test_text_format_quotes_a_line_s_controls_escaped_with_the_caret_still_under_the_column(
    tmp_path: Path,
) -> None:
    """The quoted source line is the user's file: a raw ESC, C1 CSI or bidi override in it
    reached the terminal (``smc import`` of an SCXML file quotes the line with the error)."""
    source = tmp_path / "esc\x1b[2J.scxml"
    source.write_text(
        '<scxml xmlns="http://www.w3.org/2005/07/scxml" version="1.0" initial="a">'
        '<state id="a"><transition event="\u202e\x9b2J" target="zz\x1b[31m"/></state></scxml>',
        encoding="utf-8",
    )
    run = subprocess.run(
        [sys.executable, "-m", "smc", "import", str(source)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    out = run.stdout + run.stderr
    assert not any(ch in out for ch in "\x1b\x9b\u202e"), out
    header, quoted, caret = out.splitlines()[:3]
    assert header.startswith(f"{tmp_path}/esc\\x1b[2J.scxml:1:")
    column = int(header.split(":")[2])
    assert "\\u202e\\x9b2J" in quoted and "zz\\x1b[31m" in quoted
    # the caret sits under the character the column names, as the line is shown
    shown = quoted.split(" | ", 1)[1]
    at = len(caret.split(" | ", 1)[1]) - 1
    assert shown[at:].startswith("\\x1b[31m"), (column, shown[at:])


def test_github_format_escapes_what_the_runner_would_misread() -> None:
    diagnostic = Diagnostic("a,b:c.yaml", 3, 7, "SMC022", "50% done\nnext", "")
    assert (
        format_github(diagnostic)
        == "::warning file=a%2Cb%3Ac.yaml,line=3,col=7,title=SMC022::50%25 done%0Anext"
    )


# ---- docs/diagnostics.md ----------------------------------------------------------------


def test_docs_list_exactly_the_codes() -> None:
    text = (PROJECT_ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (SMC\d{3})\b", text, flags=re.MULTILINE)
    assert headings == sorted(CODES)
    for code, (severity, summary) in CODES.items():
        section = text.split(f"## {code}", 1)[1].split("\n## ", 1)[0]
        assert summary in section, code
        assert severity in section, code
        assert "```yaml" in section, f"{code} has no example"
        assert "**Fix:**" in section, f"{code} has no fix"
