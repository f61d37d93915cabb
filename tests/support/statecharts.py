"""Random statecharts for property tests (no tests here): a Hypothesis strategy drawing charts
in the issue-13 dict shape (nesting up to depth 4, parallel regions, shallow and deep history,
finals, eventless, internal and multi-target transitions, raise actions, done events), and
the events to send them; ``smc_document`` writes such a chart as an smc machine file, and
``compiled``/``machine_class`` turn a checked machine into its imported generated class.

Names are ``s0, s1, ...`` for states, ``h0, ...`` for history and ``e0 ... e3`` for external
events, so every chart exports to SCXML as is. Opaque actions are strings naming their
place (``in:s3``); the tests identify actions by ``ActionRef`` anyway.

With ``guards=True`` (issue 14) some transitions get a ``cond``: a data guard ``c0 ... c3``
(an id whose value the test holds), ``("in", state)`` (SCXML's ``In()``) or ``("event",
name)`` (``_event.name ==``); some actions are ``{type: flip, cond: c1}``, which negates a data
guard's value when run, and ``if`` blocks (half of them raise); guarded eventless transitions
may go anywhere, so data decides whether they loop. ``guard_value`` evaluates those conds.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from hypothesis import strategies as st

from smc.compiler import codegen
from smc.compiler.model import Machine
from smc.compiler.statechart import Chart, chart_from_dict

EVENTS = ("e0", "e1", "e2", "e3")

#: The data guards of guarded charts: ids whose boolean value the test holds.
CONDS = ("c0", "c1", "c2", "c3")

#: States per chart at most: enough for every construct at depth 4, small enough that a
#: chart and its event sequence run in milliseconds in both interpreters.
MAX_STATES = 14


@st.composite
def chart_documents(draw: st.DrawFn, *, max_depth: int = 4, guards: bool = False) -> dict[str, Any]:
    """A chart in the dict shape ``chart_from_dict`` reads."""
    counter = itertools.count()
    budget = [MAX_STATES]
    kinds: dict[str, str] = {}
    parents: dict[str, str | None] = {}
    regions: dict[str, list[str]] = {}  # parallel -> its regions

    def actions(owner: str, what: str) -> list[Any]:
        # raises sparingly: every raise can start a cycle that never settles
        kinds = ["plain", "plain", "raise"] + (["flip", "flip", "if"] if guards else [])
        chosen = draw(st.lists(st.sampled_from(kinds), max_size=2))
        return [action(kind, owner, what) for kind in chosen]

    def action(kind: str, owner: str, what: str) -> Any:
        if kind == "raise":
            return {"type": "raise", "event": draw(st.sampled_from(EVENTS))}
        if kind == "flip":
            return {"type": "flip", "cond": draw(st.sampled_from(CONDS))}
        if kind == "if":
            # half of them raise (the semantics open those); the others are opaque actions
            first = action(draw(st.sampled_from(["raise", "flip"])), owner, what)
            branches: list[dict[str, Any]] = [
                {"cond": draw(st.sampled_from(CONDS)), "actions": [first]}
            ]
            if draw(st.booleans()):
                branches.append({"cond": draw(st.sampled_from(CONDS)), "actions": []})
            if draw(st.booleans()):
                branches.append({"actions": [f"else-{what}:{owner}", action("flip", owner, what)]})
            return {"type": "if", "branches": branches}
        return f"{what}:{owner}"

    def state(depth: int, parent: str | None, parent_kind: str) -> dict[str, Any]:
        name = f"s{next(counter)}"
        budget[0] -= 1
        parents[name] = parent
        options = ["atomic", "atomic"]
        if depth < max_depth and budget[0] >= 3:
            options += ["compound", "compound", "parallel"]
        if parent_kind == "compound" or (parent_kind == "root" and draw(st.integers(0, 3)) == 0):
            options.append("final")  # rarely top-level: the machine would stop there
        kind = draw(st.sampled_from(options))
        kinds[name] = kind
        item: dict[str, Any] = {"name": name}
        if kind == "final":
            item["final"] = True
        if draw(st.booleans()):
            item["on_entry"] = actions(name, "in")
        if draw(st.booleans()):
            item["on_exit"] = actions(name, "out")
        if kind in ("compound", "parallel"):
            # at least two regions: a parallel state with one is an error for smc's checker
            least = 2 if kind == "parallel" else 1
            count = draw(st.integers(least, 3))
            children = [
                state(depth + 1, name, kind) for i in range(count) if budget[0] > 0 or i < least
            ]
            if kind == "parallel":
                item["parallel"] = True
                regions[name] = [c["name"] for c in children]
            else:
                first = [c["name"] for c in children if not c.get("final")]
                explicit = draw(st.booleans())
                if first and explicit:
                    item["initial"] = draw(st.sampled_from(first))
            if draw(st.integers(0, 3)) == 0:
                history = f"h{next(counter)}"
                kinds[history] = "history"
                parents[history] = name
                entry: dict[str, Any] = {
                    "name": history,
                    "history": draw(st.sampled_from(["shallow", "deep"])),
                }
                if kind == "compound" and draw(st.booleans()):
                    entry["to"] = draw(st.sampled_from([c["name"] for c in children]))
                children.append(entry)
            item["states"] = children
        return item

    top = [state(1, None, "root") for _ in range(draw(st.integers(1, 3))) if budget[0] > 0]
    if all(kinds[item["name"]] == "final" for item in top):
        top.insert(0, state(1, None, "root-first"))  # a start that is not already the end
    names = sorted(kinds, key=lambda n: int(n[1:]))
    sources = [n for n in names if kinds[n] not in ("final", "history")]
    targets = list(names)
    done_events = [f"done.state.{n}" for n in names if kinds[n] in ("compound", "parallel")]

    transitions = []
    histories = [n for n in names if kinds[n] == "history"]
    for _ in range(draw(st.integers(1, 14))):
        source = draw(st.sampled_from(sources))
        roll = draw(st.integers(0, 19))
        if roll < 3:
            event = None
        elif roll < 5 and done_events:
            event = draw(st.sampled_from(done_events))
        else:
            event = draw(st.sampled_from(EVENTS))
        target: Any = draw(st.sampled_from(targets))
        if histories and draw(st.integers(0, 4)) == 0:
            target = draw(st.sampled_from(histories))
        internal = draw(st.integers(0, 4)) == 0
        inside = [n for n in _subtree(source, parents) if n != source]
        if internal and inside and draw(st.booleans()):
            target = draw(st.sampled_from(inside))  # where internal means something
        # An eventless transition goes forward, past its source's subtree in document
        # order, to a state (not a history): back, into its own subtree or nowhere, it would
        # be enabled again at once, and the macrostep would never settle.
        subtree_end = max(int(n[1:]) for n in _subtree(source, parents))
        forward = [n for n in names if int(n[1:]) > subtree_end and kinds[n] != "history"]
        several = sorted(p for p, r in regions.items() if len(r) > 1)
        cond: Any = None
        if guards and draw(st.integers(0, 2)) == 0:
            cond = draw(
                st.one_of(
                    st.sampled_from(CONDS),
                    st.tuples(st.just("in"), st.sampled_from(names)),
                    st.tuples(st.just("event"), st.sampled_from(EVENTS)),
                )
            )
        if event is None and cond is not None and draw(st.booleans()):
            pass  # guarded: data decides whether it loops, any target will do
        elif event is None:
            if forward:
                target = draw(st.sampled_from(forward))
            else:
                event = draw(st.sampled_from(EVENTS))
        elif several and draw(st.integers(0, 9)) == 0:
            # two targets in distinct regions of one parallel state
            parallel = draw(st.sampled_from(several))
            first, second = draw(st.permutations(regions[parallel]))[:2]
            target = [
                draw(st.sampled_from(_subtree(first, parents))),
                draw(st.sampled_from(_subtree(second, parents))),
            ]
            target = [t for t in target if kinds[t] != "history"] or [first]
        elif draw(st.integers(0, 14)) == 0:
            target = None  # targetless
        transition: dict[str, Any] = {"from": source, "event": event}
        if cond is not None:
            transition["cond"] = cond
        if target is not None:
            transition["to"] = target
        if internal:
            transition["type"] = "internal"
        if draw(st.booleans()):
            transition["actions"] = actions(source, "do")
        transitions.append(transition)
    return {"states": top, "transitions": transitions}


def _subtree(root: str, parents: dict[str, str | None]) -> list[str]:
    found = []
    for name in parents:
        walk: str | None = name
        while walk is not None and walk != root:
            walk = parents[walk]
        if walk == root:
            found.append(name)
    return sorted(found)


def charts(**options: Any) -> st.SearchStrategy[Chart]:
    return chart_documents(**options).map(chart_from_dict)


def guard_value(
    cond: Any, data: dict[str, bool], configuration: frozenset[str], event: str | None
) -> bool:
    """The value of a guarded chart's cond: a data guard's value, ``In()``, the event."""
    if isinstance(cond, str):
        return data[cond]
    kind, name = cond
    return name in configuration if kind == "in" else event == name


event_sequences = st.lists(st.sampled_from(EVENTS), min_size=4, max_size=16)


# ---- as a machine file, compiled -----------------------------------------------------


def smc_document(document: dict[str, Any]) -> dict[str, Any] | None:
    """A random chart document as an smc machine file: opaque actions become ``log``
    actions; transition actions and targetless transitions (not in the YAML language) and
    transitions SCXML would never take are left out."""

    def actions(items: list[Any]) -> list[Any]:
        return [
            item if isinstance(item, dict) else {"type": "log", "message": item} for item in items
        ]

    def state(item: dict[str, Any]) -> dict[str, Any]:
        out = dict(item)
        for key in ("on_entry", "on_exit"):
            if key in out:
                out[key] = actions(out[key])
        if "states" in out:
            out["states"] = [state(child) for child in out["states"]]
        return out

    transitions = []
    seen: set[tuple[str, str | None]] = set()
    for t in document["transitions"]:
        # smc refuses a second transition on one event from one state (SMC012, SMC013):
        # SCXML would never take it (document order, no guards), so it goes
        if t.get("to") is None or (t["from"], t.get("event")) in seen:
            continue
        seen.add((t["from"], t.get("event")))
        transitions.append({k: v for k, v in t.items() if k != "actions" and v is not None})
    if not transitions:
        return None
    states = [state(item) for item in document["states"]]
    return {
        "name": "random_chart",
        "initial_state": states[0]["name"],
        "states": states,
        "transitions": transitions,
    }


_modules = itertools.count()


def checked(text: str, source_path: str = "m.yaml") -> Machine:
    """The one machine of the machine-file ``text``, checked without errors."""
    from smc.compiler.check import check_texts

    result = check_texts([(source_path, text)])
    assert not result.errors, [str(d) for d in result.errors]
    (machine,) = result.machines
    return machine


def compiled(machine: Machine, directory: Path, source_path: str = "chart.yaml") -> ModuleType:
    """``machine``'s generated module (its header naming ``source_path``), written to
    ``directory`` and imported under a fresh name (in ``sys.modules``, so its classes
    pickle)."""
    name = f"smc_chart_{next(_modules)}"
    path = directory / f"{name}.py"
    path.write_text(codegen.generate_machine(machine, source_path), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def machine_class(module: ModuleType) -> Any:
    """The generated chart class in ``module`` (a chart class has ``DISPATCH``)."""
    (cls,) = [v for v in vars(module).values() if isinstance(v, type) and hasattr(v, "DISPATCH")]
    return cls
