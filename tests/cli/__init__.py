"""Tests of the ``smc`` command line (check, jobs, send, setup) and of the packaging (the wheel,
the lock)."""
