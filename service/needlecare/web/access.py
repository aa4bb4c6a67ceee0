"""Who may use the web app: the bearer token, the login cookie, the Home Assistant Supervisor.

Trust is decided by the TCP peer address and the token alone. Forwarded headers
(``X-Forwarded-For``, ``Forwarded``) are never read; the server runs with proxy
headers off, so the peer address is the socket's.
"""

import hashlib
import hmac
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final
from urllib.parse import quote

SUPERVISOR: Final = "172.30.32.2"
COOKIE: Final = "needlecare_session"
PUBLIC_PATHS: Final = frozenset({"/api/v1/health", "/login", "/favicon.ico"})
PUBLIC_PREFIXES: Final = ("/static/",)
_INGRESS_PATH = re.compile(r"^/[A-Za-z0-9._~/-]{0,200}$")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


def session_value(token: str) -> str:
    """The login cookie's value: derived from the token, never the token itself."""
    return hmac.new(token.encode(), b"needlecare-web-session", hashlib.sha256).hexdigest()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    raw = _header(scope, b"cookie") or ""
    for part in raw.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def ingress_prefix(scope: Scope) -> str:
    """The X-Ingress-Path a trusted Supervisor sent, if it is a plain path."""
    value = (_header(scope, b"x-ingress-path") or "").rstrip("/")
    return value if _INGRESS_PATH.match(value) else ""


class Access:
    """ASGI middleware: lets a request through, or answers 401 (JSON) / 303 to the login page."""

    def __init__(self, app: Asgi, *, token: str | None, ingress: bool) -> None:
        self.app = app
        self.token = token
        self.ingress = ingress
        self.cookie = session_value(token) if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        supervisor = self.ingress and client is not None and client[0] == SUPERVISOR
        state = scope.setdefault("state", {})
        state["prefix"] = ingress_prefix(scope) if supervisor else ""
        state["login"] = self.token is not None and not supervisor
        if supervisor or self._public(scope["path"]) or self._authorised(scope):
            await self.app(scope, receive, send)
            return
        await self._refuse(scope, send)

    @staticmethod
    def _public(path: str) -> bool:
        return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)

    def _authorised(self, scope: Scope) -> bool:
        if self.token is None:
            # Without a token only loopback is served (config check), except under
            # ingress, where nobody but the Supervisor is let in.
            return not self.ingress
        bearer = _header(scope, b"authorization") or ""
        scheme, _, given = bearer.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), self.token):
            return True
        cookie = _cookie(scope, COOKIE)
        return (
            cookie is not None
            and self.cookie is not None
            and hmac.compare_digest(cookie, self.cookie)
        )

    async def _refuse(self, scope: Scope, send: Send) -> None:
        path = scope["path"]
        if scope["method"] == "GET" and not path.startswith("/api/") and self.token is not None:
            target = "/login?next=" + quote(path, safe="/")
            await _answer(send, 303, b"", [(b"location", target.encode())])
            return
        detail = (
            "missing or wrong bearer token" if self.token else "only the Supervisor may connect"
        )
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]
        await _answer(send, 401, body, headers)


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
