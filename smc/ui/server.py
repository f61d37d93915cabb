"""``smc ui``'s server: the app of ``smc.ui.app`` served by uvicorn, in this process."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from types import FrameType

import uvicorn

from smc.runtime.monitor import monitor_dir
from smc.runtime.store import Store, StoreError, open_store
from smc.ui.app import create_app, keeps_history, no_history_feed

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8520


class _Server(uvicorn.Server):
    """uvicorn's server, stopping on SIGINT/SIGTERM without raising the signal again after
    the shutdown (uvicorn does, to hand it to an embedding program): ``smc ui`` stopped by a
    signal exits 0, as ``smc run`` does. On the signal it ends the browsers' streams, which
    would otherwise outlive the graceful shutdown and be cancelled, each with an error and a
    traceback on stderr."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self._on_exit()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        stops = (signal.SIGINT, signal.SIGTERM)
        previous = {stop: signal.signal(stop, self.handle_exit) for stop in stops}
        try:
            yield
        finally:
            for stop, handler in previous.items():
                signal.signal(stop, handler)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    db: str | None,
    host: str,
    port: int,
    token: str | None,
    feed: str = "auto",
    nice: int = 0,
) -> None:
    """Serve until SIGINT/SIGTERM, ``nice`` steps below the priority it was started with.
    Raises ``NoDatabaseError`` when no database is there (the server makes none),
    ``StoreError`` when it cannot be opened (or ``feed`` is ``history`` and it keeps none),
    ``OSError`` when the address cannot be bound and ``ValueError`` for a
    non-loopback ``host`` without a token."""
    if nice > 0:
        # First, before any thread starts: on Linux a thread's niceness is its own, and the
        # threads started later (the feed's, the store's, uvicorn's) inherit it.
        os.nice(nice)
    # create=False, here and in every store the server opens later: a mistyped --db once made
    # an empty database there and served a page saying no machine had used it.
    probe = open_store(db, create=False)
    try:
        socket_dir = monitor_dir(probe)
        if feed == "history" and not keeps_history(probe):
            raise StoreError(f"--feed history: {no_history_feed(probe)}")
    finally:
        probe.close()

    def opener() -> Store:
        return open_store(db, create=False)

    app = create_app(
        opener,
        socket_dir=socket_dir,
        token=token,
        loopback_only=is_loopback(host),
        feed=feed,
        bound_host=host.strip("[]"),
    )
    # The socket is ours, bound before uvicorn starts: a taken port is a one-line OSError for
    # the command to report (uvicorn would log it and exit on its own), and with --port 0 the
    # line below names the port the system chose.
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host.strip("[]"), port))
        listener.listen(128)
    except OSError:
        listener.close()
        raise
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        # A browser's stream ends when the server stops: do not wait for it.
        timeout_graceful_shutdown=1,
    )
    server = _Server(config, app.state.monitor.close_streams)
    shown = f"[{host}]" if ":" in host else host
    bound = listener.getsockname()[1]
    print(f"smc ui: serving http://{shown}:{bound}/ (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        server.run(sockets=[listener])
    finally:
        listener.close()
