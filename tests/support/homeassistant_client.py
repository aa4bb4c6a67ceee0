"""A small client for a test Home Assistant: REST over urllib, commands over the websocket.

Every call is bounded: REST requests and websocket reads time out after ``TIMEOUT``
seconds (the websocket reads through a niquests session with a timeout, because
``homeassistant_api``'s own receive loop has none).
"""

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

from homeassistant_api import WebsocketClient
from niquests import Session

from support.homeassistant_config import VOICE_TITLE

TIMEOUT = 10.0
_POLL_SECONDS = 0.1
_ERROR_BODY_CHARS = 500
T = TypeVar("T")

# Loopback only, whatever *_proxy variables the environment holds.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class HomeAssistantError(RuntimeError):
    """Home Assistant refused a request, did not start, or a wait ran out."""


class HomeAssistantHttpError(HomeAssistantError):
    """A REST request answered with an error status."""

    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        super().__init__(f"{method} {url} answered {status}: {body[:_ERROR_BODY_CHARS]}")
        self.status = status


def http_request(
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: Any = None,
    form: dict[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> Any:
    """Send a JSON (or form) request; return the decoded JSON answer, or None if empty."""
    headers = {"Accept": "application/json"}
    data: bytes | None = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 (http only)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as error:
        text = error.read().decode("utf-8", "replace")
        raise HomeAssistantHttpError(method, url, error.code, text) from error
    return json.loads(raw) if raw.strip() else None


def websocket_command(url: str, token: str, command: str, **data: Any) -> Any:
    """Open a websocket, authenticate, run one command and return its result."""
    session = Session(timeout=TIMEOUT)
    session.trust_env = False  # no proxies for loopback
    with WebsocketClient(f"{url}/api/websocket", token, session=session) as client:
        return client.recv_result(client.send(command, **data)).result


def wait_for(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll probe until it returns something truthy and return that; raise after timeout."""
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() > deadline:
            raise HomeAssistantError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(_POLL_SECONDS)
    return value


class HomeAssistantClient:
    """REST and websocket helpers against ``url`` with ``token``."""

    def __init__(self, url: str, token: str) -> None:
        self._url = url
        self._token = token

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``."""
        return self._url

    @property
    def token(self) -> str:
        """A long-lived access token of the owner."""
        return self._token

    def rest(self, method: str, path: str, body: Any = None) -> Any:
        """An authenticated REST request to ``path`` (starting with ``/api/``)."""
        return http_request(method, self.url + path, token=self.token, body=body)

    def websocket(self, command: str, **data: Any) -> Any:
        """One websocket command (``type`` = command, other fields = data); its result."""
        return websocket_command(self.url, self.token, command, **data)

    def state(self, entity_id: str) -> dict[str, Any] | None:
        """The entity's state object, or None if Home Assistant has no such entity."""
        try:
            result: dict[str, Any] = self.rest("GET", f"/api/states/{entity_id}")
        except HomeAssistantHttpError as error:
            if error.status == 404:
                return None
            raise
        return result

    def call_service(
        self, domain: str, service: str, data: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Call a service over REST and wait for it; returns the states it changed."""
        result: list[dict[str, Any]] = self.rest(
            "POST", f"/api/services/{domain}/{service}", data or {}
        )
        return result

    def fire_event(self, event_type: str, data: dict[str, Any] | None = None) -> None:
        """Fire an event on Home Assistant's bus."""
        self.rest("POST", f"/api/events/{event_type}", data or {})

    def persistent_notifications(self) -> list[dict[str, Any]]:
        """The current persistent notifications, oldest first."""
        notifications: list[dict[str, Any]] = self.websocket("persistent_notification/get")
        return sorted(notifications, key=lambda item: str(item.get("created_at", "")))

    def voice_messages(self) -> list[str]:
        """What ``script.announce`` was asked to say, oldest first."""
        return [
            str(item["message"])
            for item in self.persistent_notifications()
            if item.get("title") == VOICE_TITLE
        ]

    def entity_registry(self) -> list[dict[str, Any]]:
        """Every entry of the entity registry."""
        entries: list[dict[str, Any]] = self.websocket("config/entity_registry/list")
        return entries

    def config_entries(self, domain: str) -> list[dict[str, Any]]:
        """The config entries of one integration, with their ``state``."""
        query = urllib.parse.urlencode({"domain": domain})
        entries: list[dict[str, Any]] = self.rest(
            "GET", f"/api/config/config_entries/entry?{query}"
        )
        return entries
