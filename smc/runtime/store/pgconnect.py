"""Opening a PostgreSQL connection, with TCP settings that notice a server gone silent.

A server that stops answering without closing its connections (its host powered off, a
network partition, a failover that moves the address) sends no reset: with the kernel's
defaults a connection waiting for an answer learns of it after about 15 minutes of
retransmissions, an idle one (a worker's ``LISTEN`` for wake-ups) after two hours of
keepalive silence. Unless the URL sets them itself, smc asks libpq for keepalives after 10 s
of silence, every 5 s, 3 unanswered ending the connection (25 s), and for data left
unacknowledged 30 s to end it too: the worker's next statement reconnects, as after any lost
connection. A statement that runs long (a lock waited for) is not ended by them: a live
server's host answers keepalives while the statement waits.
"""

from __future__ import annotations

from typing import Any

#: libpq's parameters, and the values smc gives those the URL does not set.
TCP_DEFAULTS: dict[str, int] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}


def tcp_defaults(url: str) -> dict[str, int]:
    """The parameters of :data:`TCP_DEFAULTS` that ``url`` (a libpq URL or ``key=value``
    string) does not set; none for a URL libpq cannot read (connecting says why)."""
    from psycopg import Error
    from psycopg.conninfo import conninfo_to_dict

    try:
        given = conninfo_to_dict(url)
    except Error:
        return {}
    return {key: value for key, value in TCP_DEFAULTS.items() if key not in given}


def connect(url: str, *, connect_timeout: int) -> Any:
    """An autocommit psycopg connection to ``url`` with :func:`tcp_defaults`."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    defaults = tcp_defaults(url)
    conninfo = make_conninfo(url, **defaults) if defaults else url
    return psycopg.connect(conninfo, autocommit=True, connect_timeout=connect_timeout)
