"""The start lock of a machine name on this host: held from a ``start_fsm``'s check that the
name is free until the child it starts holds the name (its monitor socket listens) or has
refused it.

Without it two starts of one name at the same moment both found the name free and both
started a child; the second child refused to run beside the first, but its start had already
returned ``success`` and stored the pid of a process that ended at once. With it the second
start waits until the first child listens, then finds it running.

The lock is an exclusive ``flock`` on ``.<socket file name>.starting`` beside the machine's
monitor socket. The starter takes it, checks the name, and hands the open file to the child
(its descriptor number in :data:`START_LOCK_ENV`); a ``flock`` belongs to the open file, so it
stays held until the child lets go of it after its socket listens, or dies. Whoever holds the
lock last removes the file before letting go; a starter that then gets a lock on a file no
longer at the path opens it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from pathlib import Path

#: The environment variable that tells a child ``smc run`` which descriptor holds its start
#: lock.
START_LOCK_ENV = "SMC_START_LOCK_FD"

#: How long a start waits for another start of the same name to let go (its child's start-up:
#: well under a second here, a few seconds on a loaded host). After it the child is started
#: anyway and its own refusal guards, as without the lock.
START_LOCK_WAIT = 15.0

_POLL = 0.01


def start_lock_path(socket_path: Path) -> Path:
    """The start lock of the machine whose monitor socket is ``socket_path``."""
    return socket_path.with_name(f".{socket_path.stem}.starting")


async def take_start_lock(path: Path, wait: float = START_LOCK_WAIT) -> int | None:
    """A descriptor (close-on-exec) holding the lock at ``path``, or None when another start
    held it for ``wait`` seconds, or it cannot be taken at all (no such directory, a file
    system without locks): then nothing is held and the caller goes on unlocked."""
    deadline = time.monotonic() + wait
    while True:
        try:
            handle = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError:
            return None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(_POLL)
            continue
        except OSError:
            os.close(handle)
            return None
        if _is_at(handle, path):
            return handle
        os.close(handle)  # its last holder removed it: the lock is on a file nobody else opens


def release_start_lock(handle: int | None, path: Path) -> None:
    """Remove the lock's file (while holding it, so that nobody else has it open and locked
    under that path) and let go of it; nothing when ``handle`` is None (none was taken)."""
    if handle is None:
        return
    try:
        if _is_at(handle, path):
            with contextlib.suppress(OSError):
                os.unlink(path)
    finally:
        os.close(handle)


def inherited_start_lock() -> int | None:
    """The start lock a starting parent handed this process, taken out of the environment (so
    that this machine's own commands and children never see it) and made close-on-exec; None
    when there is none."""
    text = os.environ.pop(START_LOCK_ENV, None)
    if text is None or not text.isdigit():
        return None
    handle = int(text)
    try:
        os.set_inheritable(handle, False)
    except OSError:
        return None  # not open: nothing was handed over
    return handle


def let_go_of_start_lock(handle: int | None, path: Path) -> None:
    """Done with the start (this machine's socket listens, or it refused the name): remove and
    release the inherited lock at ``path``. A descriptor that is not that lock (the variable
    set by something else) is left alone."""
    if handle is None:
        return
    if _is_at(handle, path):
        release_start_lock(handle, path)


def _is_at(handle: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(handle), os.stat(path, follow_symlinks=False))
    except OSError:
        return False
