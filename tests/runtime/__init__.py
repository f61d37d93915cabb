"""Tests of the runtime in one process or one ``smc run``: the engine, the built-in and user
actions, the context, stops and signals, the statemachine-engine traps, the hot path, the
monitor, ``smc.testing``, values in bash commands."""
