"""Where machines' monitors listen: the socket file of each machine, the directory of a
store's monitor sockets, and the monitor's error. Shared by the publisher and every reader.

Machine names that are file-name safe are used verbatim (``monitor-<machine>.sock``); others,
or paths too long for an ``AF_UNIX`` address, are hashed (``monitor-h-<hash>.sock``).
"""

from __future__ import annotations

import os
import re
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from smc.runtime import sockets

if TYPE_CHECKING:
    from smc.runtime.store import Store

SOCKET_PREFIX = "monitor-"
SOCKET_SUFFIX = ".sock"

#: Machine names used verbatim in socket file names; anything else is hashed. ``@`` and ``:``
#: are excluded so monitor sockets never look like the store's doorbell sockets, which share
#: the directory (``<channel>@<pid>-<n>.sock``).
_SAFE_MACHINE = re.compile(r"[A-Za-z0-9_.-]{1,80}")


class MonitorError(Exception):
    """A monitor socket cannot be opened (directory unusable, name held by a live machine)."""


def monitor_socket_path(socket_dir: str | os.PathLike[str], machine: str) -> Path:
    """Where ``machine`` publishes: ``monitor-<machine>.sock``, or a hashed name when the
    machine name is not file-name safe or the path would exceed the ``AF_UNIX`` limit."""
    directory = Path(socket_dir)
    token = sockets.file_token(machine, _SAFE_MACHINE)
    path = directory / f"{SOCKET_PREFIX}{token}{SOCKET_SUFFIX}"
    if sockets.fits_unix_path(path):
        return path
    return directory / f"{SOCKET_PREFIX}{sockets.hashed_token(machine)}{SOCKET_SUFFIX}"


@dataclass(frozen=True)
class NameHolder:
    """The live machine that serves a monitor socket, and so holds its name on this host."""

    #: Its process id (the socket's ``SO_PEERCRED``, taken when it listened), or None where the
    #: system does not tell (not Linux, a process outside this pid namespace, a full backlog).
    pid: int | None


#: ``struct ucred``: pid, uid, gid.
_UCRED = struct.Struct("3i")


def name_holder(path: Path) -> NameHolder | None:
    """The live machine serving the monitor socket ``path``, or None when none does: no file,
    or a stale one (its machine died without removing it: a connect is refused).

    The test a machine's start uses to refuse to run beside a namesake
    (:meth:`MonitorPublisher.open <smc.runtime.monitor.publisher.MonitorPublisher.open>`), and
    ``start_fsm`` uses not to start a child whose name is held. The connect does not block: a
    listener whose backlog is full (``EAGAIN``) is alive too. A few microseconds when there is
    no file (one ``lstat``). Raises ``OSError`` only when no socket can be made (descriptors)."""
    if not os.path.lexists(path):
        return None
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.setblocking(False)
        try:
            probe.connect(str(path))
        except BlockingIOError:
            return NameHolder(pid=None)  # EAGAIN: listening, its backlog full, so alive
        except OSError:
            return None  # refused (stale), gone meanwhile, or not a socket we may use
        return NameHolder(pid=_peer_pid(probe))
    finally:
        probe.close()


def _peer_pid(connected: socket.socket) -> int | None:
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    try:
        pid, _, _ = _UCRED.unpack(connected.getsockopt(socket.SOL_SOCKET, option, _UCRED.size))
    except (OSError, struct.error):
        return None
    return pid if pid > 0 else None


def is_monitor_socket_name(name: str) -> bool:
    return (
        name.startswith(SOCKET_PREFIX)
        and name.endswith(SOCKET_SUFFIX)
        and "@" not in name
        and len(name) > len(SOCKET_PREFIX) + len(SOCKET_SUFFIX)
    )


def monitor_dir(store: Store) -> Path:
    """The directory of a store's monitor sockets: the store's socket directory (SQLite), or for
    a store without one (PostgreSQL) ``$SMC_SOCKET_DIR/monitor-<hash>`` or
    ``/tmp/smc-<uid>-monitor-<hash>``, hashed from the store's location, so every process using
    the same database finds the same sockets."""
    if store.socket_dir is not None:
        return Path(store.socket_dir)
    return sockets.socket_dir(store.location, "monitor-")


def ensure_monitor_dir(directory: Path) -> None:
    """Create ``directory`` (mode 0700), refusing one owned by another user, or raise
    :class:`MonitorError`."""
    try:
        sockets.ensure_private_dir(directory, "monitor socket directory")
    except sockets.SocketDirError as error:
        raise MonitorError(str(error)) from None
