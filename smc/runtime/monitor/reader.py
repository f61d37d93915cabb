"""The reader side of the socket monitor: :func:`follow` connects to every monitor socket of a
directory (or one machine's), picks up machines that start later, and yields the merged records
as dicts; :func:`follow_lines` also yields each record's line as received.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smc.runtime.monitor.paths import is_monitor_socket_name, monitor_socket_path

#: How long :func:`follow_lines` waits before connecting again to a machine that refused it.
REFUSED_RETRY_SECONDS = 5.0

# The package's name, not this module's: log lines keep the source they had before the split.
_log = logging.getLogger("smc.runtime.monitor")


@dataclass(eq=False)
class _Connection:
    path: str
    sock: socket.socket
    partial: bytearray = field(default_factory=bytearray)
    refused: bool = False
    #: The ``machine`` of the last record read here (None until one arrives).
    machine: str | None = None


def follow(
    socket_dir: str | os.PathLike[str],
    machine: str | None = None,
    *,
    timeout: float | None = None,
    rescan_interval: float = 0.25,
    stop: threading.Event | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the records of every machine publishing in ``socket_dir`` (or only ``machine``),
    merged in arrival order (each machine's records stay in order).

    The directory is rescanned every ``rescan_interval`` seconds, so machines that start later
    are picked up, and a machine whose socket reappears (restart) is reconnected. Lines that are
    not JSON objects are skipped. With ``timeout`` the iterator ends after that many seconds in
    total; without it, it runs until the caller stops iterating. ``stop``, when set by another
    thread, ends it within ``rescan_interval`` seconds even while no record arrives (a server
    following in a thread of its own, such as ``smc ui``, shuts down with it).
    """
    for _, record in follow_lines(
        socket_dir, machine, timeout=timeout, rescan_interval=rescan_interval, stop=stop
    ):
        yield record


def follow_lines(
    socket_dir: str | os.PathLike[str],
    machine: str | None = None,
    *,
    timeout: float | None = None,
    rescan_interval: float = 0.25,
    stop: threading.Event | None = None,
    on_disconnect: Callable[[str], None] | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Like :func:`follow`, yielding ``(raw line without newline, decoded record)`` pairs.

    ``on_disconnect(machine)`` is called when a connection that delivered records of
    ``machine`` ends while following: the machine stopped, or it cut this reader off for
    falling behind (its buffer for the reader was full), in which case the records between
    the cut and the reconnection are lost. Whoever keeps what the records said (``smc ui``)
    cannot tell the two apart, and should stop trusting it."""
    directory = Path(socket_dir)
    wanted = str(monitor_socket_path(directory, machine)) if machine is not None else None
    deadline = None if timeout is None else time.monotonic() + timeout
    selector = selectors.DefaultSelector()
    connections: dict[str, _Connection] = {}
    refused: dict[str, float] = {}
    next_scan = 0.0

    def scan() -> None:
        if wanted is not None:
            candidates = [wanted]
        else:
            try:
                names = sorted(os.listdir(directory))
            except OSError:
                names = []
            candidates = [str(directory / n) for n in names if is_monitor_socket_name(n)]
        now = time.monotonic()
        for path in candidates:
            if path in connections or refused.get(path, 0.0) > now:
                continue
            if not os.path.exists(path):
                continue
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
            except OSError:
                sock.close()
                # Stale file of a dead machine (or one that is still starting): retry later.
                refused[path] = now + rescan_interval
                continue
            sock.setblocking(False)
            connection = _Connection(path, sock)
            connections[path] = connection
            selector.register(sock, selectors.EVENT_READ, connection)

    def disconnect(connection: _Connection, ended: bool = True) -> None:
        selector.unregister(connection.sock)
        connection.sock.close()
        connections.pop(connection.path, None)
        if connection.refused:  # the machine has readers enough: ask again later, not at once
            refused[connection.path] = time.monotonic() + REFUSED_RETRY_SECONDS
        if ended and on_disconnect is not None and connection.machine and not connection.refused:
            on_disconnect(connection.machine)

    try:
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return
            if stop is not None and stop.is_set():
                return
            if now >= next_scan:
                scan()
                next_scan = now + rescan_interval
            wait = next_scan - now
            if deadline is not None:
                wait = min(wait, deadline - now)
            if not connections:
                time.sleep(max(wait, 0.0))
                continue
            for key, _ in selector.select(timeout=max(wait, 0.0)):
                connection: _Connection = key.data
                try:
                    chunk = connection.sock.recv(1 << 16)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    disconnect(connection)
                    continue
                connection.partial += chunk
                if b"\n" not in chunk:
                    continue
                *lines, rest = bytes(connection.partial).split(b"\n")
                connection.partial = bytearray(rest)
                for line in lines:
                    record = _decode_line(line)
                    if record is None:
                        continue
                    if record.get("kind") == "reader_refused":
                        connection.refused = True
                    name = record.get("machine")
                    if isinstance(name, str):
                        connection.machine = name
                    if machine is None or record.get("machine", machine) == machine:
                        yield line.decode("utf-8", "replace"), record
    finally:
        for connection in list(connections.values()):
            with contextlib.suppress(OSError, KeyError, ValueError):
                disconnect(connection, ended=False)  # the follower stops, not the machine
        selector.close()


def _decode_line(line: bytes) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):  # not JSON, or absurdly nested: not a record of ours
        _log.debug("monitor: skipped a line that is not JSON: %r", line[:200])
        return None
    return record if isinstance(record, dict) else None
