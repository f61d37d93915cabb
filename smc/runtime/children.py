"""The child processes a running machine's actions started (``start_fsm``), reaped as they exit.

A child that exits stays a zombie until its parent waits for it; the heartbeat thread reaps
finished children at each beat, and the engine once more when it stops.
"""

from __future__ import annotations

import threading
from typing import Any


class ChildProcesses:
    """Tracks :class:`subprocess.Popen` objects (anything with ``poll()``), thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: list[Any] = []

    def track(self, process: Any) -> None:
        """Reap ``process`` once it exits."""
        with self._lock:
            self._running.append(process)

    def reap(self) -> None:
        """Wait for (and forget) the children that have exited."""
        with self._lock:
            self._running = [child for child in self._running if child.poll() is None]


__all__ = ["ChildProcesses"]
