"""Who may use the web monitor, and how its actions are protected.

- **Token.** With a token configured (required for any bind other than loopback), every
  request — pages, assets, the JSON API and the live stream — must present it: an
  ``Authorization: Bearer <token>`` header (scripts), or the ``smc_ui_token_<port>`` cookie
  (browsers). A browser gets the cookie by opening ``/?token=<token>`` once; the server answers
  with the cookie and a redirect to ``/``, so the token leaves the address bar and the history.
  The cookie holds a session of this server process, not the token: random, made at that
  login, valid until the server stops. Cookies go to every port of a host, so another
  service there sees it; what it sees opens this server while it runs, never the token,
  which may be kept in a file and given to the next server too.
  Tokens are compared in constant time (:func:`hmac.compare_digest`). The cookie is HttpOnly
  and **SameSite=Lax**, not Strict: a link to ``/?token=...`` followed from another site (a
  chat, a wiki) must log in, and a Strict cookie is not sent on that navigation's redirect
  nor on reloads of the page it lands on. Lax lets another site open the page in a top-level
  navigation with the cookie, which shows the monitor and changes nothing (GETs never do;
  its answer is the browser's, not the other site's). Its name holds the port: cookies are
  shared by every port of a host, and two monitors on one host must not replace each
  other's (a cookie cannot be kept from another server on the same host name: the token is
  that host's other services' to see, as any cookie is).
- **Host.** Without a token the server accepts only requests addressed to a loopback name
  (``Host: 127.0.0.1``/``localhost``, or the loopback address it was bound to, such as
  127.0.0.2): a web page whose domain was re-pointed at 127.0.0.1 (DNS rebinding) is refused.
- **CSRF.** Every request that is not GET/HEAD must carry the ``X-SMC-CSRF`` header equal to
  the ``smc_csrf`` cookie (a random value the page gets with ``/``; another site can neither
  read it nor, with SameSite=Strict, make the browser send it), and an ``Origin``, when the
  browser sends one, must be the page's own.
- **Headers.** A strict Content-Security-Policy (scripts and styles only from the server's own
  files, nothing inline, no frames), ``nosniff``, no referrer.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from http.cookies import SimpleCookie

from starlette.datastructures import URL, Headers, MutableHeaders
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The token cookie's name is this and the server's port (:func:`token_cookie`).
TOKEN_COOKIE = "smc_ui_token"
#: How many browser sessions a server keeps (the oldest forgotten first): each is one opening
#: of ``/?token=``, which only a holder of the token can make.
MAX_SESSIONS = 1000
CSRF_COOKIE = "smc_csrf"
CSRF_HEADER = "x-smc-csrf"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented secret with the expected one."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def new_csrf_value() -> str:
    return secrets.token_urlsafe(32)


def _cookies(headers: Headers) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for value in headers.getlist("cookie"):
        try:
            jar.load(value)
        except Exception:  # a malformed Cookie header: as if it were absent
            continue
    return {key: morsel.value for key, morsel in jar.items()}


def token_cookie(port: int | None) -> str:
    """The token cookie's name for the server on ``port``."""
    return TOKEN_COOKIE if port is None else f"{TOKEN_COOKIE}_{port}"


def _token_refusal(bearer: str | None, offered: str | None) -> str:
    """Why a request without the token is refused: a token given and wrong says so (it read
    "a token is required" whatever was sent, so a typo looked like a missing header)."""
    if bearer is not None:
        return "wrong token: send the monitor's token as Authorization: Bearer TOKEN\n"
    if offered:
        return "wrong token: open /?token=TOKEN with the monitor's token\n"
    return "a token is required: open /?token=TOKEN, or send Authorization: Bearer TOKEN\n"


def _host_name(host_header: str) -> str:
    if host_header.startswith("["):  # [::1]:8520
        return host_header.split("]", 1)[0] + "]"
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class Guard:
    """ASGI middleware applying the rules in the module docstring to every request."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        allowed_hosts: Sequence[str] | None,
    ) -> None:
        """``allowed_hosts`` None: any ``Host`` (a token protects the server instead)."""
        self.app = app
        self.token = token
        self.allowed_hosts = None if allowed_hosts is None else set(allowed_hosts)
        #: The sessions the token cookie may hold, oldest first (a dict: ordered, for
        #: forgetting the oldest). Its lookup is not constant-time, but each value is 256
        #: random bits: timing cannot guess one.
        self._sessions: dict[str, None] = {}

    def _new_session(self) -> str:
        session = secrets.token_urlsafe(32)
        self._sessions[session] = None
        while len(self._sessions) > MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        return session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    if key not in response_headers:
                        response_headers[key] = value
            await send(message)

        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope, headers: Headers) -> Response | None:
        host = _host_name(headers.get("host", ""))
        if self.allowed_hosts is not None and host not in self.allowed_hosts:
            return PlainTextResponse("unknown host\n", status_code=400)
        cookies = _cookies(headers)
        if self.token is not None:
            server = scope.get("server")
            cookie = token_cookie(server[1] if server else None)
            authorization = headers.get("authorization", "")
            bearer = authorization[7:] if authorization.lower().startswith("bearer ") else None
            session = cookies.get(cookie)
            if not (
                same_secret(bearer, self.token)
                or (session is not None and session in self._sessions)
            ):
                url = URL(scope=scope)
                offered = url.query and dict(
                    (k, v) for k, v in _query_pairs(url.query) if k == "token"
                ).get("token")
                if (
                    scope["method"] == "GET"
                    and url.path == "/"
                    and offered
                    and same_secret(offered, self.token)
                ):
                    redirect = RedirectResponse("/", status_code=303)
                    redirect.set_cookie(
                        cookie, self._new_session(), httponly=True, samesite="lax", path="/"
                    )
                    return redirect
                return PlainTextResponse(_token_refusal(bearer, offered), status_code=401)
        if scope["method"] not in ("GET", "HEAD"):
            origin = headers.get("origin")
            if origin is not None and origin != _own_origin(scope, headers):
                return PlainTextResponse("cross-origin request refused\n", status_code=403)
            expected = cookies.get(CSRF_COOKIE)
            if not expected or not same_secret(headers.get(CSRF_HEADER), expected):
                return PlainTextResponse("missing or wrong CSRF token\n", status_code=403)
        return None


def _query_pairs(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query, keep_blank_values=True)


def _own_origin(scope: Scope, headers: Headers) -> str:
    scheme = "https" if scope.get("scheme") == "https" else "http"
    return f"{scheme}://{headers.get('host', '')}"
