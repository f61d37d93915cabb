"""Wake-up hints: a waiting worker or machine is poked when a job or event arrives.

A wake-up is a *hint*, never trusted: a poke can be lost (a socket queue is full, a NOTIFY
arrives while the listener reconnects) and a poke can be spurious. Callers therefore always
also poll slowly (e.g. every second) and treat a wake-up only as "look now".

Channels are plain strings: ``jobs`` (a job was added) and ``machine:<name>`` (an event for
that machine was stored); see :func:`machine_channel`.

- SQLite: Unix datagram "doorbell" sockets in a short per-database directory. Each waiter binds
  its own socket per channel (``<channel token>@<pid>-<n>.sock``) so several workers can wait on
  ``jobs``; :class:`Doorbell` sends one byte to every socket of a channel.
- PostgreSQL: ``LISTEN`` on a dedicated connection (:class:`PostgresWaker`); ``pg_notify`` is
  sent in the same transaction as the insert, so it is delivered only once the row is visible.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import itertools
import os
import re
import select
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from smc.runtime.sockets import (
    UNIX_PATH_MAX,
    SocketDirError,
    ensure_private_dir,
    file_token,
    fits_unix_path,
    socket_dir,
)
from smc.runtime.store.errors import StoreError
from smc.runtime.store.pgconnect import connect

#: The channel rung whenever a job is added.
JOBS_CHANNEL = "jobs"
#: The channel PostgreSQL notifies when history rows commit (``smc_history`` in the public
#: schema), for monitors on any host; SQLite does not ring it (the monitor sockets are the
#: fast path there, and a ring per write would cost the hot path a system call).
HISTORY_CHANNEL = "history"

#: Channel names used verbatim in socket file names; anything else is hashed. ``@`` is excluded
#: because it separates the channel token from the waiter's identity in the file name.
_SAFE_CHANNEL = re.compile(r"[A-Za-z0-9_.:-]{1,48}")

_socket_counter = itertools.count()


def machine_channel(machine_name: str) -> str:
    """The channel rung when an event is stored for ``machine_name``."""
    return f"machine:{machine_name}"


class Waker(abc.ABC):
    """Something to wait on until one of its channels is rung (or a timeout passes)."""

    channels: tuple[str, ...]
    #: True once the waker has lost its connection (PostgreSQL): its descriptor no longer
    #: rings, and ``reopen()`` listens again. A doorbell never breaks.
    broken: bool = False

    @abc.abstractmethod
    def reopen(self) -> None:
        """Listen again after ``broken``, on a new descriptor (``fileno()`` changes). Raises
        ``StoreError`` when that is not possible yet."""

    @abc.abstractmethod
    def fileno(self) -> int:
        """A descriptor that becomes readable when rung (for ``loop.add_reader``)."""

    @abc.abstractmethod
    def drain(self) -> frozenset[str]:
        """Consume pending pokes without blocking; call it when ``fileno()`` is readable.
        Returns the channels that rang (empty: none did)."""

    @abc.abstractmethod
    def add_channel(self, channel: str) -> bool:
        """Listen on ``channel`` too (nothing when it is listened to already); ``fileno()`` may
        change. True when rings of the channels listened to before may have been lost while
        adding it: the caller should look as if they had rung. Raises ``StoreError``."""

    @abc.abstractmethod
    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True when rung (pokes are drained), else False."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop listening and release the socket or connection."""

    def __enter__(self) -> Waker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class LoopWaker:
    """A waker read by an asyncio event loop: ``on_ring`` runs with the channels that rang.

    When the waker loses its connection (a PostgreSQL restart, an idle connection cut by a
    firewall), its descriptor is taken off the loop, ``on_ring`` runs once (a poke may have
    been missed), and ``rearm()``, which the owner calls from its polling loop, listens again
    on a new connection, at most once per ``retry_seconds``. Without this, a worker would
    fall back to its slow poll for the rest of its life after one dropped connection.
    """

    def __init__(
        self,
        loop: Any,
        waker: Waker,
        on_ring: Callable[[frozenset[str]], None],
        retry_seconds: float = 1.0,
    ) -> None:
        self.waker = waker
        self._loop = loop
        self._on_ring = on_ring
        self._retry_seconds = retry_seconds
        self._next_attempt = 0.0
        self._fd: int | None = None
        self._listen()

    @property
    def armed(self) -> bool:
        """Whether the loop is reading the waker (False between a lost connection and a
        successful ``rearm()``)."""
        return self._fd is not None

    def _listen(self) -> None:
        self._fd = self.waker.fileno()
        self._loop.add_reader(self._fd, self._rung)

    def _unlisten(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(Exception):  # the descriptor may be closed already
                self._loop.remove_reader(self._fd)
            self._fd = None

    def _rung(self) -> None:
        rung = self.waker.drain()
        if self.waker.broken:
            self._unlisten()
            rung = frozenset(self.waker.channels)
        if rung:
            self._on_ring(rung)

    def add_channel(self, channel: str) -> None:
        """Listen on ``channel`` too, on the same descriptor or connection (see
        :meth:`Waker.add_channel`); rings the channels listened to before if their rings may
        have been lost meanwhile. Raises ``StoreError``."""
        before = frozenset(self.waker.channels)
        if channel in before:
            return
        missed = self.waker.add_channel(channel)
        if self._fd is not None and self.waker.fileno() != self._fd:
            self._unlisten()
            self._listen()
        if missed:
            self._on_ring(before)

    def rearm(self) -> bool:
        """Listen again if the connection was lost and the retry interval has passed; True
        when it was lost and now listens again. Raises ``StoreError`` when reconnecting
        fails (the next call, ``retry_seconds`` later, tries again)."""
        if self._fd is not None:
            return False
        now = time.monotonic()
        if now < self._next_attempt:
            return False
        self._next_attempt = now + self._retry_seconds
        self.waker.reopen()
        self._listen()
        return True

    def close(self) -> None:
        self._unlisten()
        with contextlib.suppress(Exception):
            self.waker.close()


# --- SQLite: Unix datagram doorbells ---------------------------------------------------------


def default_socket_dir(database_path: Path) -> Path:
    """The doorbell directory of a database file: short, per user, per database.

    ``$SMC_SOCKET_DIR/<hash>`` when the variable is set, else ``/tmp/smc-<uid>-<hash>``, where
    ``<hash>`` is the first 12 hex digits of the SHA-1 of the absolute database path. Kept short
    because a socket path must fit in 108 bytes.
    """
    return socket_dir(str(database_path.resolve()))


def channel_token(channel: str) -> str:
    """The file-name form of a channel: the name itself when short and safe, else a hash."""
    return file_token(channel, _SAFE_CHANNEL)


def ensure_socket_dir(directory: Path) -> None:
    """Create the doorbell directory (mode 0700) and refuse one owned by another user."""
    try:
        ensure_private_dir(directory)
    except SocketDirError as error:
        raise StoreError(str(error)) from None


def _check_path_length(path: Path) -> None:
    if not fits_unix_path(path):
        raise StoreError(
            f"socket path {path} is longer than {UNIX_PATH_MAX - 1} bytes; "
            "set SMC_SOCKET_DIR to a shorter directory"
        )


class DoorbellWaker(Waker):
    """One bound datagram socket per channel; an epoll descriptor joins them when several."""

    def __init__(self, socket_dir: Path, channels: Sequence[str]) -> None:
        if not channels:
            raise ValueError("a waker needs at least one channel")
        ensure_socket_dir(socket_dir)
        self.channels = tuple(channels)
        self.socket_dir = socket_dir
        self._sockets: list[socket.socket] = []
        self._paths: list[Path] = []
        self._epoll: select.epoll | None = None
        try:
            for channel in self.channels:
                self._bind(channel)
            if len(self._sockets) > 1:
                self._join()
        except BaseException:
            self.close()
            raise

    def _bind(self, channel: str) -> socket.socket:
        path = self.socket_dir / (
            f"{channel_token(channel)}@{os.getpid()}-{next(_socket_counter)}.sock"
        )
        _check_path_length(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # a leftover from a dead process that reused our pid
            sock.bind(str(path))
        except BaseException:
            sock.close()
            raise
        sock.setblocking(False)
        self._sockets.append(sock)
        self._paths.append(path)
        return sock

    def _join(self) -> None:
        """One descriptor for ``add_reader``: an epoll set (itself pollable) of every socket."""
        if self._epoll is None:
            self._epoll = select.epoll()
            for sock in self._sockets:
                self._epoll.register(sock.fileno(), select.EPOLLIN)

    def add_channel(self, channel: str) -> bool:
        """Bind one more socket (the descriptor becomes an epoll set). No ring can be lost:
        the sockets already bound stay bound."""
        if channel in self.channels:
            return False
        try:
            sock = self._bind(channel)
        except OSError as error:
            raise StoreError(f"cannot listen on {channel!r}: {error}") from None
        self.channels += (channel,)
        if self._epoll is None:
            self._join()
        else:
            self._epoll.register(sock.fileno(), select.EPOLLIN)
        return False

    def reopen(self) -> None:
        """A bound socket on the local file system has no connection to lose."""

    def fileno(self) -> int:
        if self._epoll is not None:
            return self._epoll.fileno()
        return self._sockets[0].fileno()

    def drain(self) -> frozenset[str]:
        rung: set[str] = set()
        # Not strict: a closed waker keeps its channels and has no sockets.
        for channel, sock in zip(self.channels, self._sockets, strict=False):
            while True:
                try:
                    sock.recv(64)
                except OSError:  # BlockingIOError: drained; anything else: nothing to read
                    break
                rung.add(channel)
        return frozenset(rung)

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            remaining = max(deadline - time.monotonic(), 0.0)
            readable, _, _ = select.select([self.fileno()], [], [], remaining)
            if readable and self.drain():
                return True
            if remaining <= 0.0:
                return False

    def close(self) -> None:
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None
        for sock in self._sockets:
            sock.close()
        for path in self._paths:
            with contextlib.suppress(OSError):
                path.unlink()
        self._sockets = []
        self._paths = []


class Doorbell:
    """Rings the doorbell sockets of a channel: one byte to each subscribed waiter."""

    def __init__(self, socket_dir: Path) -> None:
        self.socket_dir = socket_dir
        self._sender: socket.socket | None = None
        self._pid = os.getpid()

    def _socket(self) -> socket.socket:
        if self._sender is None or self._pid != os.getpid():
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sender.setblocking(False)  # a full queue must never block the sender
            self._pid = os.getpid()
        return self._sender

    def ring(self, channel: str) -> int:
        """Poke every waiter on ``channel``; returns how many were poked. Never raises."""
        prefix = channel_token(channel) + "@"
        try:
            names = os.listdir(self.socket_dir)
        except OSError:
            return 0  # nobody ever waited here
        poked = 0
        sender = self._socket()
        for name in names:
            if not name.startswith(prefix):
                continue
            path = os.path.join(self.socket_dir, name)
            try:
                sender.sendto(b"\x01", path)
                poked += 1
            except ConnectionRefusedError:
                # Nobody is bound: its owner died without cleaning up.
                with contextlib.suppress(OSError):
                    os.unlink(path)
            except BlockingIOError:
                poked += 1  # its queue is full, so it already has a wake-up pending
            except OSError:
                continue  # ENOENT (gone since listdir) or anything else: a hint may be lost
        return poked

    def close(self) -> None:
        if self._sender is not None and self._pid == os.getpid():
            self._sender.close()
        self._sender = None


# --- PostgreSQL: LISTEN/NOTIFY ---------------------------------------------------------------


def postgres_channel_name(schema: str, channel: str) -> str:
    """The NOTIFY channel for ``channel`` in a store schema: readable, unique, < 63 bytes.

    The schema is part of the hash because channels are database-wide while queues live in a
    schema: two schemas must not wake each other.
    """
    readable = re.sub(r"[^a-z0-9_]", "_", channel.lower())[:30]
    digest = hashlib.sha1(f"{schema}\0{channel}".encode()).hexdigest()[:10]
    return f"smc_{readable}_{digest}"


class PostgresWaker(Waker):
    """``LISTEN`` on a dedicated autocommit connection.

    psycopg's ``Connection.notifies()`` generator holds the connection lock while it waits, so
    any query on that connection from inside the loop deadlocks. This waker runs no query but
    ``LISTEN`` (from the thread that reads it: :meth:`add_channel`) and reads notifications
    straight from libpq (``consume_input`` + ``notifies``), which neither blocks nor takes the
    lock. One connection serves every channel of a process's machine (its events and the jobs
    channel): a server's connections are few (100 by default). If the connection breaks, ``wait``
    reconnects; an event loop that reads ``fileno()`` sees ``broken`` after ``drain()`` and
    calls ``reopen()`` itself, then reads the new ``fileno()`` (the engine's ``LoopWaker``).
    """

    def __init__(self, url: str, schema: str, channels: Sequence[str]) -> None:
        if not channels:
            raise ValueError("a waker needs at least one channel")
        self.channels = tuple(channels)
        self._url = url
        self._schema = schema
        #: The channel of each ``LISTEN`` name (a notification carries the name).
        self._names = {postgres_channel_name(schema, channel): channel for channel in channels}
        self._connection: Any = None
        self._connect()

    def _connect(self) -> None:
        import psycopg
        from psycopg import sql

        try:
            connection = connect(self._url, connect_timeout=10)
            for name in self._names:
                connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(name)))
        except psycopg.Error as error:
            raise StoreError(f"cannot listen for wake-ups: {first_line(error)}") from None
        self._connection = connection
        self.broken = False

    def reopen(self) -> None:
        self._close_connection()
        self._connect()

    def add_channel(self, channel: str) -> bool:
        """``LISTEN`` on the open connection (a broken one listens on every channel when
        reopened). True: psycopg hands the notifications that arrive while a statement runs
        to its own handlers, not to :meth:`drain`, so rings may have been lost."""
        import psycopg
        from psycopg import sql

        if channel in self.channels:
            return False
        name = postgres_channel_name(self._schema, channel)
        self._names[name] = channel
        self.channels += (channel,)
        if self.broken or self._connection is None:
            return True
        try:
            self._connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(name)))
        except psycopg.Error:
            self.broken = True  # the next reopen() listens on it with the rest
        return True

    def fileno(self) -> int:
        fd: int = self._connection.pgconn.socket
        return fd

    def drain(self) -> frozenset[str]:
        from psycopg import pq

        rung: set[str] = set()
        try:
            pgconn = self._connection.pgconn
            pgconn.consume_input()
            while (notification := pgconn.notifies()) is not None:
                channel = self._names.get(notification.relname.decode())
                if channel is not None:
                    rung.add(channel)
            if pgconn.status != pq.ConnStatus.OK:  # closed without an error being raised
                self.broken = True
        except Exception:
            # A lost connection is not an error for a hint: callers keep polling, and the next
            # wait() reconnects.
            self.broken = True
        return frozenset(rung)

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + max(timeout, 0.0)
        if self.broken:
            try:
                self.reopen()
            except Exception:
                time.sleep(max(deadline - time.monotonic(), 0.0))
                return False
            return True  # something may have been missed while disconnected
        while True:
            remaining = max(deadline - time.monotonic(), 0.0)
            readable, _, _ = select.select([self.fileno()], [], [], remaining)
            if readable:
                if self.drain():
                    return True
                if self.broken:
                    return True
            if remaining <= 0.0:
                return False

    def _close_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None

    def close(self) -> None:
        self._close_connection()


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, for one-line error reports."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
