"""The publisher side of the socket monitor: a running machine publishes its transitions, job
claims and errors as JSON lines on a Unix stream socket that readers can follow (up to a bound,
64 by default). One :class:`MonitorPublisher` per running machine:

- listens on ``<socket_dir>/monitor-<machine>.sock`` (``monitor-h-<hash>.sock`` when the name is
  not file-name safe or the path would not fit in an ``AF_UNIX`` address);
- :meth:`MonitorPublisher.publish` serialises a record once and hands the line to every
  connected reader; it never blocks and never raises, so the machine is never slowed by its
  audience. With no reader connected it does not even serialise the record;
- each reader has a bounded buffer (``max_buffer_bytes``, 1 MiB by default, on top of the
  kernel's socket buffer). A reader whose buffer would overflow is **disconnected**: it sees
  end-of-file and knows it lost lines, rather than silently receiving a stream with holes. A
  reader that went away is dropped on the next write or when the kernel reports its hang-up;
- at most ``max_readers`` readers are served (:func:`reader_limit`); one more is sent a
  ``reader_refused`` record and disconnected, so readers never take the descriptors the
  machine's own work needs. An ``accept`` that fails for want of descriptors pauses accepting
  (50 ms doubling to 1 s) instead of spinning on the still-readable listener.

A small daemon thread owns the listening socket and the readers' write-readiness: it accepts
readers and flushes backlogs while the machine is busy. A thread rather than an asyncio server
because the engine's loop is not always free: store calls are synchronous and user actions may
hog the loop, and a monitor that only advanced when the loop was idle would stall readers and
accepts exactly when something interesting happens. The same class therefore works unchanged
from synchronous code. ``publish`` itself is thread-safe and sends directly when a reader's
buffer is empty, so the common case costs one ``send`` per reader and no thread hand-off.

Record schema (version 1): ``{"v": 1, "kind": ..., "machine": ..., "from": ..., "event": ...,
"to": ..., "job_id": ..., "ts": <epoch seconds>, ...}``; see ``docs/monitor.md``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import json
import logging
import os
import resource
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from smc.runtime.monitor.paths import (
    MonitorError,
    ensure_monitor_dir,
    monitor_socket_path,
    name_holder,
)

#: Version of the record schema, written as ``"v"`` in every record.
SCHEMA_VERSION = 1

#: Default bound of one reader's user-space buffer, beyond the kernel socket buffer.
DEFAULT_MAX_BUFFER_BYTES = 1 << 20

#: Default bound on a machine's connected readers (``$SMC_MONITOR_MAX_READERS`` or
#: ``smc run --monitor-readers`` change it). A reader beyond it is refused: it receives one
#: ``reader_refused`` record and end-of-file. Each reader holds a file descriptor of the
#: machine's process; the bound never exceeds a quarter of the process's open-file limit, so
#: readers can never take the descriptors the machine's own work needs.
DEFAULT_MAX_READERS = 64
MAX_READERS_VARIABLE = "SMC_MONITOR_MAX_READERS"

#: When ``accept`` fails for lack of descriptors or memory, the listener is left alone for this
#: long, doubling up to :data:`ACCEPT_MAX_PAUSE` (it stays readable: watching it would spin).
ACCEPT_FIRST_PAUSE = 0.05
ACCEPT_MAX_PAUSE = 1.0
#: ``errno`` values of an ``accept`` that failed for want of resources, not for the reader.
#: Numbers the names a publisher binds before linking its socket into place.
_BIND_NUMBERS = itertools.count()
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

# The package's name, not this module's: log lines keep the source they had before the split.
_log = logging.getLogger("smc.runtime.monitor")


def reader_limit(requested: int | None = None) -> int:
    """The bound on readers: ``requested``, else ``$SMC_MONITOR_MAX_READERS``, else
    :data:`DEFAULT_MAX_READERS`; at most a quarter of the open-file limit, at least 1."""
    limit = DEFAULT_MAX_READERS if requested is None else requested
    if requested is None:
        text = os.environ.get(MAX_READERS_VARIABLE, "").strip()
        if text:
            try:
                limit = int(text)
            except ValueError:
                raise MonitorError(
                    f"${MAX_READERS_VARIABLE} must be a whole number, not {text!r}"
                ) from None
    if limit < 1:
        raise MonitorError(f"the monitor reader limit must be at least 1, not {limit}")
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY:
        limit = min(limit, max(soft // 4, 1))
    return limit


def encode_record(record: dict[str, Any]) -> bytes:
    """One JSON line (``v`` first, ``ts`` added when missing); unknown types become strings."""
    full: dict[str, Any] = {"v": SCHEMA_VERSION}
    full.update(record)
    if "ts" not in full:
        full["ts"] = time.time()
    return (json.dumps(full, default=str, separators=(",", ":")) + "\n").encode()


@dataclass(eq=False)
class _Reader:
    sock: socket.socket
    backlog: bytearray = field(default_factory=bytearray)
    dropped: bool = False


#: How long a machine's start waits for another start in its monitor directory (which holds
#: the lock for a few system calls) before it goes on without the lock.
NAME_LOCK_WAIT = 5.0


@contextlib.contextmanager
def _taking_a_name(directory: Path) -> Iterator[None]:
    """Held while a publisher finds its socket file stale, removes it and links its own in
    place: two machines of one name starting at once over a stale file (a SIGKILLed namesake's)
    each found it stale, and the later removal took the other's fresh socket away, so both
    ran. An exclusive ``flock`` on the directory, for those few system calls of a machine's
    start. Where it cannot be taken (a file system without locks), or its holder does not let
    go within :data:`NAME_LOCK_WAIT` (stopped by SIGSTOP in those calls), the start goes on
    unlocked, as before."""
    try:
        handle = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        yield
        return
    try:
        deadline = time.monotonic() + NAME_LOCK_WAIT
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.002)
                    continue
            except OSError:
                pass
            break
        yield
    finally:
        os.close(handle)  # and the lock with it


class MonitorPublisher:
    """One machine's monitor socket server. Create with :meth:`open`; close with :meth:`close`
    (also a context manager). All methods are thread-safe; ``publish`` may be called from an
    asyncio event loop directly (it never blocks)."""

    def __init__(
        self,
        path: Path,
        machine: str,
        listener: socket.socket,
        max_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES,
        max_readers: int = DEFAULT_MAX_READERS,
    ) -> None:
        self.path = path
        self.machine = machine
        self.max_buffer_bytes = max_buffer_bytes
        self.max_readers = max_readers
        #: Readers disconnected because their buffer overflowed (a diagnostic counter).
        self.overflowed_readers = 0
        #: Readers refused because ``max_readers`` were connected (a diagnostic counter).
        self.refused_readers = 0
        # accept() failed for want of descriptors: no accepting until then (monotonic time)
        self._accept_paused_until = 0.0
        self._accept_pause = 0.0
        #: Records handed to at least one reader.
        self.published = 0
        self._listener = listener
        self._inode = os.stat(path).st_ino
        self._lock = threading.Lock()
        self._readers: list[_Reader] = []
        self._closed = False
        # The thread owns the selector; other threads only poke it through this pair.
        self._wake_receiver, self._wake_sender = socket.socketpair()
        self._wake_receiver.setblocking(False)
        self._wake_sender.setblocking(False)
        self._wake_pending = False
        # Made here, not in the thread, so every descriptor the publisher needs exists once
        # ``open`` returns (the thread cannot fail later for want of one).
        self._selector = selectors.DefaultSelector()
        self._thread = threading.Thread(
            target=self._serve, name=f"smc-monitor-{machine}", daemon=True
        )
        self._thread.start()

    @classmethod
    def open(
        cls,
        socket_dir: str | os.PathLike[str],
        machine: str,
        max_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES,
        max_readers: int | None = None,
    ) -> MonitorPublisher:
        """Listen on ``machine``'s monitor socket in ``socket_dir`` (created, mode 0700).

        A socket file left by a dead process is replaced; one that a live process still serves
        raises :class:`MonitorError` (two machines with one name would mix their streams).
        ``max_readers`` None: :func:`reader_limit` decides (the environment, else 64).
        """
        readers = reader_limit(max_readers)
        directory = Path(socket_dir)
        ensure_monitor_dir(directory)
        path = monitor_socket_path(directory, machine)
        with _taking_a_name(directory):
            return cls._take(path, machine, max_buffer_bytes, readers)

    @classmethod
    def _take(
        cls, path: Path, machine: str, max_buffer_bytes: int, readers: int
    ) -> MonitorPublisher:
        """Listen on ``path``, unless a live publisher holds it (``open``, under its lock)."""
        directory = path.parent
        if os.path.lexists(path):
            if name_holder(path) is not None:
                raise MonitorError(
                    f"monitor socket {path} is in use: is another machine named "
                    f"{machine!r} running?"
                )
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # stale: its publisher died without cleaning up
        # Bound and listening under a name no follower looks at, then linked into place: a
        # reader that finds the file can connect at once (between a bind and its listen, a
        # connect is refused), and the link, unlike a rename, fails if another machine of
        # this name took the path meanwhile.
        bound = directory / f".bind-{os.getpid()}-{next(_BIND_NUMBERS)}"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(bound))
            listener.listen(64)
            listener.setblocking(False)
            os.link(bound, path)
        except FileExistsError:
            listener.close()
            raise MonitorError(
                f"monitor socket {path} is in use: is another machine named {machine!r} running?"
            ) from None
        except OSError as error:
            listener.close()
            raise MonitorError(f"cannot listen on monitor socket {path}: {error}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                bound.unlink()
        return cls(path, machine, listener, max_buffer_bytes, readers)

    # --- public API ---

    @property
    def reader_count(self) -> int:
        """Readers connected now (counting those accepted on the next publish or wake-up)."""
        with self._lock:
            self._accept_locked()
            return len(self._readers)

    def publish(self, record: dict[str, Any]) -> None:
        """Send ``record`` (plus ``v`` and ``ts`` when missing) to every connected reader.

        Never blocks and never raises. A reader receives every record published after the
        server accepted it (the thread accepts within moments of ``connect``; :attr:`reader_count`
        accepts pending connections at once), unless it is disconnected for being too slow.
        """
        if not self._readers:
            return  # the common case: nobody is watching, so not even a lock (GIL-atomic read)
        try:
            with self._lock:
                if self._closed or not self._readers:
                    return
                line = encode_record(record)
                need_wake = False
                for reader in self._readers:
                    if not reader.dropped:
                        need_wake |= self._offer_locked(reader, line)
                self.published += 1
                if need_wake:
                    self._wake_locked()
        except Exception:  # a monitor must never take its machine down
            _log.debug("monitor publish failed", exc_info=True)

    def close(self) -> None:
        """Disconnect every reader, stop the thread and remove the socket file (if still ours)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wake_locked()
        self._thread.join(timeout=5.0)
        with self._lock:
            for reader in self._readers:
                # Flush what fits without blocking, so a prompt reader gets the last records.
                if not reader.dropped and reader.backlog:
                    with contextlib.suppress(OSError):
                        reader.sock.send(reader.backlog)
                reader.sock.close()
            self._readers = []
            self._listener.close()
            self._wake_receiver.close()
            self._wake_sender.close()
        self.remove_file()

    def remove_file(self) -> None:
        """Remove the socket file if it is still ours. Takes no lock, so a forced exit can call
        it from a signal handler, even one that interrupted :meth:`close` halfway."""
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self._inode:
                self.path.unlink()

    def __enter__(self) -> MonitorPublisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- internals (call with self._lock held) ---

    def _accept_locked(self) -> None:
        if self._accept_paused_until and time.monotonic() < self._accept_paused_until:
            return
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                if error.errno in _RESOURCE_ERRORS:
                    self._pause_accepting_locked(error)
                return  # never fail the machine for a reader
            if self._accept_pause:
                self._accept_pause = 0.0
                _log.warning("monitor %s: accepting readers again", self.machine)
            sock.setblocking(False)
            if sum(not reader.dropped for reader in self._readers) >= self.max_readers:
                self._refuse(sock)
                continue
            self._readers.append(_Reader(sock))
            self._wake_locked()  # the thread must watch it for hang-ups

    def _pause_accepting_locked(self, error: OSError) -> None:
        """Stop accepting for a while: the listener stays readable while descriptors are short,
        so the thread would otherwise spin on it."""
        if not self._accept_pause:
            _log.warning(
                "monitor %s: cannot accept readers (%s); retrying with backoff",
                self.machine,
                error.strerror or error,
            )
        self._accept_pause = min(max(self._accept_pause * 2, ACCEPT_FIRST_PAUSE), ACCEPT_MAX_PAUSE)
        self._accept_paused_until = time.monotonic() + self._accept_pause

    def _refuse(self, sock: socket.socket) -> None:
        """Tell a reader beyond ``max_readers`` why, in one record, and hang up."""
        self.refused_readers += 1
        record = {
            "kind": "reader_refused",
            "machine": self.machine,
            "reason": f"too many readers (the limit is {self.max_readers})",
        }
        with contextlib.suppress(OSError):
            sock.send(encode_record(record))
        sock.close()

    def _offer_locked(self, reader: _Reader, line: bytes) -> bool:
        """Queue ``line`` for ``reader``; True when the thread must act (backlog or drop)."""
        if reader.backlog:
            if len(reader.backlog) + len(line) > self.max_buffer_bytes:
                self._drop_locked(reader, overflow=True)
                return True
            reader.backlog += line
            return False  # the thread already watches it for write-readiness
        try:
            sent = reader.sock.send(line)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._drop_locked(reader, overflow=False)  # EPIPE, ECONNRESET: the reader is gone
            return True
        if sent == len(line):
            return False
        # One line larger than the bound is still accepted into an empty buffer, so a record
        # bigger than the buffer does not disconnect a reader that keeps up.
        reader.backlog += line[sent:]
        return True

    def _flush_locked(self, reader: _Reader) -> None:
        while reader.backlog and not reader.dropped:
            try:
                sent = reader.sock.send(reader.backlog)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._drop_locked(reader, overflow=False)
                return
            del reader.backlog[:sent]

    def _drop_locked(self, reader: _Reader, overflow: bool) -> None:
        if reader.dropped:
            return
        reader.dropped = True
        reader.backlog = bytearray()
        if overflow:
            self.overflowed_readers += 1
            _log.debug("monitor %s: disconnected a reader that fell behind", self.machine)
        # shutdown, not close: the thread still has the descriptor registered and closes it.
        with contextlib.suppress(OSError):
            reader.sock.shutdown(socket.SHUT_RDWR)

    def _wake_locked(self) -> None:
        if self._wake_pending:
            return
        self._wake_pending = True
        with contextlib.suppress(OSError):
            self._wake_sender.send(b"\0")

    # --- the thread ---

    def _serve(self) -> None:
        selector = self._selector
        registered: dict[_Reader, int] = {}
        listening = False
        try:
            selector.register(self._wake_receiver, selectors.EVENT_READ, "wake")
            while True:
                with self._lock:
                    if self._closed:
                        return
                    self._sync_registrations_locked(selector, registered)
                    pause = self._accept_paused_until - time.monotonic()
                # While accepting is paused the listener is not watched (it stays readable).
                if listening and pause > 0:
                    selector.unregister(self._listener)
                    listening = False
                elif not listening and pause <= 0:
                    selector.register(self._listener, selectors.EVENT_READ, "listener")
                    listening = True
                for key, mask in selector.select(timeout=None if listening else pause):
                    with self._lock:
                        if self._closed:
                            return
                        self._handle_locked(key.data, mask)
        except Exception:  # pragma: no cover - a bug here must not kill the machine
            _log.exception("monitor %s: server thread failed", self.machine)
        finally:
            with self._lock:
                for reader in list(registered):
                    with contextlib.suppress(KeyError, ValueError, OSError):
                        selector.unregister(reader.sock)
            selector.close()

    def _sync_registrations_locked(
        self, selector: selectors.BaseSelector, registered: dict[_Reader, int]
    ) -> None:
        for reader in list(registered):
            if reader.dropped:
                selector.unregister(reader.sock)
                del registered[reader]
                reader.sock.close()
        for reader in self._readers:
            if reader.dropped and reader not in registered:
                reader.sock.close()  # dropped before the thread ever watched it
        self._readers = [reader for reader in self._readers if not reader.dropped]
        for reader in self._readers:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if reader.backlog else 0)
            current = registered.get(reader)
            if current is None:
                selector.register(reader.sock, events, reader)
            elif current != events:
                selector.modify(reader.sock, events, reader)
            registered[reader] = events

    def _handle_locked(self, data: Any, mask: int) -> None:
        if data == "wake":
            with contextlib.suppress(OSError):
                while self._wake_receiver.recv(4096):
                    pass
            self._wake_pending = False
        elif data == "listener":
            self._accept_locked()
        else:
            reader: _Reader = data
            if reader.dropped:
                return
            if mask & selectors.EVENT_READ:
                # Readers never talk; readable means hang-up (or chatter, which is discarded).
                try:
                    chunk = reader.sock.recv(4096)
                except (BlockingIOError, InterruptedError):
                    chunk = b"-"
                except OSError:
                    chunk = b""
                if not chunk:
                    self._drop_locked(reader, overflow=False)
                    return
            if mask & selectors.EVENT_WRITE:
                self._flush_locked(reader)
