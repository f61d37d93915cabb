"""Unix socket file names and directories, shared by the store's doorbells and the monitor.

Both put their sockets in short per-user, per-database directories and derive file names from
free-form names (channels, machines). The rules live here once because the processes that bind
a socket and the processes that look for it must compute the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

#: Linux limit for an AF_UNIX path, including the terminating NUL byte.
UNIX_PATH_MAX = 108

#: Prefix of a hashed token; a name that starts with it is hashed too, so the two never meet.
HASHED_PREFIX = "h-"


class SocketDirError(Exception):
    """A socket directory cannot be created or belongs to another user."""


def hashed_token(name: str) -> str:
    """``h-`` and 20 hex digits of the SHA-1 of ``name``: a file-name safe, short stand-in."""
    digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:20]
    return HASHED_PREFIX + digest


def file_token(name: str, safe: re.Pattern[str]) -> str:
    """``name`` itself when ``safe`` matches all of it (and it does not look hashed), else
    :func:`hashed_token`."""
    if safe.fullmatch(name) and not name.startswith(HASHED_PREFIX):
        return name
    return hashed_token(name)


def fits_unix_path(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` can be bound as an ``AF_UNIX`` socket."""
    return len(os.fsencode(path)) < UNIX_PATH_MAX


def socket_dir(key: str, label: str = "") -> Path:
    """The socket directory for ``key`` (a database's path or location): ``$SMC_SOCKET_DIR/
    <label><hash>`` when the variable is set, else ``/tmp/smc-<uid>-<label><hash>``, where
    ``<hash>`` is the first 12 hex digits of the SHA-1 of ``key``. Kept short because a socket
    path must fit in :data:`UNIX_PATH_MAX` bytes."""
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    base = os.environ.get("SMC_SOCKET_DIR")
    if base:
        return Path(base) / f"{label}{digest}"
    return Path("/tmp") / f"smc-{os.getuid()}-{label}{digest}"


def ensure_private_dir(directory: Path, what: str = "socket directory") -> None:
    """Create ``directory`` (mode 0700) and refuse one owned by another user, who could read
    or spoof what goes through its sockets. ``what`` names it in the error message."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        owner = directory.stat().st_uid
    except OSError as error:
        raise SocketDirError(f"cannot create {what} {directory}: {error.strerror}") from None
    if owner != os.getuid():
        raise SocketDirError(f"{what} {directory} belongs to uid {owner}, not {os.getuid()}")


__all__ = [
    "HASHED_PREFIX",
    "UNIX_PATH_MAX",
    "SocketDirError",
    "ensure_private_dir",
    "file_token",
    "fits_unix_path",
    "hashed_token",
    "socket_dir",
]
