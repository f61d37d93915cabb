"""Property-testing generated machines with Hypothesis (``pip install smc-compiler[testing]``).

- ``MachineTest``: a ``RuleBasedStateMachine`` built from a generated machine class, checking
  the instance against the class's own transition table on random event sequences;
- ``run_path``: replay one deterministic event path (what ``smc paths`` and
  ``smc build --emit-tests`` generate) and check the state after every step;
- ``smc.testing.runtime``: drive a machine with its actions against a real temporary SQLite
  store (imported separately: it loads the worker runtime).

Runs in users' test suites with only smc and the generated package installed: nothing here
imports ``smc.compiler``.
"""

from __future__ import annotations

from smc.testing.machine_test import FakeAction, MachineTest
from smc.testing.model import event_methods, transition_model
from smc.testing.paths import path_cases, run_path, transitions_taken

__all__ = [
    "FakeAction",
    "MachineTest",
    "event_methods",
    "path_cases",
    "run_path",
    "transition_model",
    "transitions_taken",
]
