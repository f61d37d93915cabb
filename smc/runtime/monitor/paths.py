"""Where machines' monitors listen: the socket file of each machine, the directory of a
store's monitor sockets, and the monitor's error. Shared by the publisher and every reader.

Machine names that are file-name safe are used verbatim (``monitor-<machine>.sock``); others,
or paths too long for an ``AF_UNIX`` address, are hashed (``monitor-h-<hash>.sock``).
"""

from __future__ import annotations

import os
import re
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
