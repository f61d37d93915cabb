"""PostgreSQL URLs that are wrong, or hold a password: one line saying what is wrong, never
a traceback and never the password; and the URL's own parameters reach libpq as written."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from smc.runtime.store import StoreError, open_store
from tests.support.backends import postgres_schema_url
from tests.support.cli import command_name
from tests.support.harness import REPO

pytestmark = pytest.mark.postgres

SECRET = "s3cret-Pw"


def _closed_port() -> int:
    """A local TCP port nothing listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _open_error(url: str) -> str:
    with pytest.raises(StoreError) as error:
        open_store(url)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_a_password_in_the_url_query_is_not_shown() -> None:
    # libpq takes the password from the query too; it was shown as written.
    port = _closed_port()
    message = _open_error(
        f"postgresql://127.0.0.1:{port}/test?password={SECRET}&sslpassword={SECRET}2"
    )
    assert message.startswith(
        f"cannot connect to postgresql://127.0.0.1:{port}/test?password=***&sslpassword=***: "
    )
    assert SECRET not in message


@pytest.mark.parametrize(
    "password", [f"p%zz{SECRET}", f"sp ace{SECRET}"], ids=["bad-escape", "space"]
)
def test_a_malformed_password_that_libpq_quotes_is_not_shown(password: str) -> None:
    # libpq's message quotes the token it cannot read: the password itself.
    message = _open_error(f"postgresql://user:{password}@127.0.0.1:5432/test")
    assert message.startswith("cannot connect to postgresql://user:***@127.0.0.1:5432/test: ")
    assert SECRET not in message
    assert '"***"' in message  # the rest of libpq's message is kept


def test_the_urls_own_parameters_reach_the_server_as_written() -> None:
    # smc takes its schema parameter out of the query; re-encoding the rest made the space of
    # options=-c%20… a "+", which libpq does not read as a space, and the server refused it.
    with postgres_schema_url() as url:
        store = open_store(f"{url}&options=-c%20statement_timeout%3D4321")
        with store:
            row = store.connection.execute("SHOW statement_timeout").fetchone()
            assert row == ("4321ms",)
            assert store.schema == url.rsplit("schema=", 1)[1]


@pytest.mark.parametrize(
    "url, says",
    [
        (f"postgresql://user:{SECRET}@[::1/test", "a PostgreSQL URL that cannot be read"),
        (
            f"postgresql://user:{SECRET}@127.0.0.1:5432/test?schema=a%20b",
            "invalid schema name 'a b'",
        ),
    ],
    ids=["unreadable", "bad-schema-name"],
)
def test_a_url_smc_cannot_use_is_one_line_at_the_cli(url: str, says: str) -> None:
    # Both were an "internal error" and a traceback (a ValueError from the URL's parsing).
    for command in (["status"], ["history"], ["jobs", "add", "--type", "t"]):
        result = subprocess.run(
            [sys.executable, "-m", "smc", *command, "--db", url],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 1, result.stderr
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"smc {command_name(command)}: error: "), result.stderr
        assert says in lines[0]
        assert SECRET not in lines[0]


def _tcp_settings(fileno: int) -> tuple[int, int, int, int, int]:
    sock = socket.socket(fileno=fileno)
    try:
        return (
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
        )
    finally:
        sock.detach()  # the connection's socket: not closed here


def test_connections_notice_a_silent_server_unless_the_url_says_otherwise() -> None:
    """The store's connection and its wake-up listener's send keepalives after 10 s of
    silence, every 5 s, three unanswered ending it, and end after 30 s of data unacknowledged
    (the kernel's defaults: none, and about 15 minutes); a URL's own values are kept.
    tests/runtime/test_postgres_partition.py drills what they are for."""
    with postgres_schema_url() as url:
        with open_store(url) as store:
            assert _tcp_settings(store.connection.fileno()) == (1, 10, 5, 3, 30_000)
            waker = store.open_waker(["jobs"])
            try:
                assert _tcp_settings(waker.fileno()) == (1, 10, 5, 3, 30_000)
            finally:
                waker.close()
        with open_store(f"{url}&keepalives_idle=7&tcp_user_timeout=1234") as store:
            assert _tcp_settings(store.connection.fileno()) == (1, 7, 5, 3, 1234)
        with open_store(f"{url}&keepalives=0") as store:
            assert _tcp_settings(store.connection.fileno())[0] == 0
