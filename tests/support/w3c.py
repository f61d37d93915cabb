"""The W3C SCXML conformance tests (python datamodel) run through smc: import the ``.scxml``
(``smc.compiler.loader.scxml``), check it, compile its class, drive it to the end.

The tests are read from ``$SMC_W3C_DIR``, by default ``../shared/conformance/w3c-scxml``
beside the repository (never copied into it). ``run_test`` is shared by
``tests/conformance/test_w3c_scxml.py`` and ``benchmarks/conformance_report.py``.

Driving: the machine starts in its initial configuration; then, until it reaches a top-level
final state or nothing is left to do, the ``Sent`` records it queued (``take_sent()``) are
delivered, those without delay to an external FIFO and delayed ones on a virtual clock
(deterministic, no sleeping), and the next external event is fired; an event no transition
takes is ignored, as SCXML does. The test passes iff the final configuration holds ``pass``.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smc import IllegalTransition
from smc.compiler.check import check_files
from smc.compiler.diagnostics import format_text

from .statecharts import compiled

ROOT = Path(__file__).resolve().parents[2]

#: Steps (events fired) at most: a test that never settles fails instead of hanging.
MAX_STEPS = 10_000


def w3c_dir() -> Path:
    return Path(os.environ.get("SMC_W3C_DIR") or ROOT.parent / "shared/conformance/w3c-scxml")


def listed_tests(name: str) -> list[tuple[str, str]]:
    """``CORE.txt`` or ``BEYOND-CORE.txt``: (test id, the rest of its line)."""
    path = w3c_dir() / name
    if not path.is_file():
        return []
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            file, _, rest = line.strip().partition(" ")
            found.append((file.removesuffix(".scxml"), rest.strip()))
    return found


@dataclass
class Outcome:
    test: str
    #: "pass", "fail" (ran, did not end in pass), "refused" (import/check diagnostics),
    #: "error" (built but raised)
    result: str
    detail: str
    configuration: tuple[str, ...] = ()


def _delay(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    match = re.fullmatch(r"\s*([\d.]+)\s*(ms|s)?\s*", str(value))
    if match is None:
        raise ValueError(f"cannot read the delay {value!r}")
    number = float(match.group(1))
    return number / 1000 if match.group(2) == "ms" else number


def _configuration(m: Any) -> frozenset[Any]:
    """A chart class's configuration; a flat machine's (no chart feature) is its state."""
    found = getattr(m, "configuration", None)
    return frozenset(found) if found is not None else frozenset({m.state})


def _is_final(m: Any) -> bool:
    final = getattr(m, "is_final", None)
    if final is not None:
        return bool(final)
    return m.state in type(m).FINAL_STATES


def run_test(test: str, out_dir: Path) -> Outcome:
    path = w3c_dir() / "mandatory" / f"{test}.scxml"
    result = check_files([str(path)])
    if result.errors or not result.machines:
        lines = result.sources.get(str(path))
        text = "\n".join(format_text(d, lines) for d in result.errors)
        return Outcome(test, "refused", text or "no machine")
    (machine,) = result.machines
    try:
        module = compiled(machine, out_dir, f"{test}.scxml")
        # dict.fromkeys: the module binds its class under two names (``_Machine``).
        (cls,) = dict.fromkeys(
            v
            for v in vars(module).values()
            if isinstance(v, type) and hasattr(v, "MACHINE_NAME") and hasattr(v, "fire")
        )
        m = cls()
    except Exception as error:  # shown in the report: a build or start failure
        return Outcome(test, "error", f"{type(error).__name__}: {error}")
    external: deque[str] = deque()
    timers: list[tuple[float, int, str]] = []
    clock, seq = 0.0, 0
    try:
        for _ in range(MAX_STEPS):
            take = getattr(m, "take_sent", None)
            for sent in take() if take is not None else ():
                delay = _delay(getattr(sent, "delay", 0) or 0)
                if delay <= 0:
                    external.append(str(sent.event))
                else:
                    seq += 1
                    heapq.heappush(timers, (clock + delay, seq, str(sent.event)))
            if _is_final(m):
                break
            if external:
                event = external.popleft()
            elif timers:
                clock, _, event = heapq.heappop(timers)
            else:
                break
            with contextlib.suppress(IllegalTransition):
                m.fire(event)  # an event no transition takes: SCXML discards it
    except Exception as error:
        return Outcome(test, "error", f"{type(error).__name__}: {error}")
    configuration = tuple(sorted(str(s) for s in _configuration(m)))
    if "pass" in configuration:
        return Outcome(test, "pass", "", configuration)
    return Outcome(test, "fail", f"ended in {list(configuration)}", configuration)
