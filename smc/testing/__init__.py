"""Property-testing generated machines with Hypothesis (``pip install smc-compiler[testing]``).

- ``MachineTest``: a ``RuleBasedStateMachine`` built from a generated machine class, checking
  the instance against the class's own transition table (a statechart's: its dispatch table
  of situations and their configurations) on random event sequences;
- ``run_path``: replay one deterministic event path (what ``smc paths`` and
  ``smc build --emit-tests`` generate) and check the state after every step;
- ``smc.testing.runtime``: drive a machine with its actions against a real temporary SQLite
  store (imported separately: it loads the worker runtime).

Runs in users' test suites with only smc and the generated package installed: nothing here
imports ``smc.compiler``.
"""

from __future__ import annotations

from smc.testing.machine_test import FakeAction, MachineTest
from smc.testing.model import event_methods, situation_model, transition_model
from smc.testing.paths import path_cases, run_path, states_reached, transitions_taken

__all__ = [
    "FakeAction",
    "MachineTest",
    "event_methods",
    "path_cases",
    "run_path",
    "situation_model",
    "states_reached",
    "transition_model",
    "transitions_taken",
]
