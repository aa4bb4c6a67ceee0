"""Carries out Home Assistant calls one at a time, on a thread of its own.

One at a time keeps the outbox's order and means two voice announcements never
talk over each other. Each result goes back to the daemon's core thread, which
alone writes the database.
"""

import queue
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from needlecare.app.ha_calls import HaCall
from needlecare.config import HomeAssistantConfig
from needlecare.logs import get_logger
from needlecare_integrations.backoff import backoff_delay

log = get_logger(__name__)

# A refused call is tried this often (with backoff, ~15 s in all) before it is dropped.
REJECTED_TRIES = 5


class HaOutcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # Home Assistant down, starting or slow: try again later
    FAILED = "failed"  # rejected (unknown service, bad data): retrying will not help
    SKIPPED = "skipped"  # e.g. voice while nobody is home
    AUTH = "auth"  # the token is wrong: stop calling until the config is fixed


@dataclass(frozen=True, slots=True)
class HaResult:
    item_id: int
    outcome: HaOutcome
    error: str | None = None
    retry_after_s: float = 0.0


class HaWorker:
    """Executes HaCalls in order and reports a HaResult for each."""

    def __init__(self, config: HomeAssistantConfig, on_result: Callable[[HaResult], None]) -> None:
        self._config = config
        self._on_result = on_result
        self._queue: queue.SimpleQueue[tuple[int, HaCall] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._failures = 0
        self._rejections: dict[int, int] = {}  # item id -> refused calls so far
        self._rand = random.Random()  # noqa: S311 - jitter, not security

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="homeassistant", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(self, item_id: int, call: HaCall) -> None:
        self._queue.put((item_id, call))

    def _run(self) -> None:
        while (work := self._queue.get()) is not None:
            item_id, call = work
            result = self._execute(item_id, call)
            self._failures = self._failures + 1 if result.outcome is HaOutcome.RETRY else 0
            self._on_result(result)

    def _execute(self, item_id: int, call: HaCall) -> HaResult:
        from homeassistant_api import errors  # noqa: PLC0415 - lazy: heavy import

        try:
            client = self._connect()
            if call.only_when_home and _state(client, call.only_when_home) != "home":
                return HaResult(item_id, HaOutcome.SKIPPED, f"{call.only_when_home} is not home")
            return self._call(item_id, client, call)
        except errors.UnauthorizedError:
            return HaResult(item_id, HaOutcome.AUTH, "Home Assistant refused the token (401)")
        except errors.RequestTimeoutError as error:
            return self._retry(item_id, f"timeout: {error}")
        except (errors.RequestError, errors.EndpointNotFoundError) as error:
            return self._rejected(item_id, f"{type(error).__name__}: {error}")
        except Exception as error:
            self._client = None
            return self._retry(item_id, f"{type(error).__name__}: {error}")

    def _call(self, item_id: int, client: Any, call: HaCall) -> HaResult:
        if call.kind == "event":
            client.fire_event(call.name, **call.data)
        elif call.kind == "todo_item":
            return self._todo_item(item_id, client, call)
        else:
            domain, service = call.name.split(".", 1)
            client.trigger_service(domain, service, **call.data)
        return HaResult(item_id, HaOutcome.SENT)

    def _todo_item(self, item_id: int, client: Any, call: HaCall) -> HaResult:
        """A to-do call on the item found by its description (see app/todo.py)."""
        data = dict(call.data)
        entity_id, description = data.pop("entity_id"), data.pop("description")
        found = [
            item
            for item in todo_items(self._config, entity_id)
            if item.get("description") == description
        ]
        uids = [str(item["uid"]) for item in found]
        if call.name == "todo.add_item" and found:
            # Already there (a replanned step, or a repeat after a lost answer): update it.
            data["rename"] = data.pop("item")
            client.trigger_service("todo", "update_item", entity_id=entity_id, item=uids[0], **data)
        elif call.name == "todo.add_item":
            client.trigger_service(
                "todo", "add_item", entity_id=entity_id, description=description, **data
            )
        elif call.name == "todo.remove_item":
            if uids:  # nothing there is nothing to remove
                client.trigger_service("todo", "remove_item", entity_id=entity_id, item=uids)
        elif not found:
            return HaResult(item_id, HaOutcome.SKIPPED, f"no item on {entity_id} for it")
        else:
            domain, service = call.name.split(".", 1)
            for item in found:
                if item.get("status") != data.get("status"):
                    client.trigger_service(
                        domain, service, entity_id=entity_id, item=item["uid"], **data
                    )
        return HaResult(item_id, HaOutcome.SENT)

    def _rejected(self, item_id: int, error: str) -> HaResult:
        """A 4xx: retried a few times before it counts as failed for good.

        Home Assistant answers before every integration has registered its services:
        for a few seconds after it starts, a call to ``notify.mobile_app_*`` (or a
        script) can be refused as unknown although it is about to exist.
        """
        tries = self._rejections.get(item_id, 0) + 1
        if tries >= REJECTED_TRIES:
            self._rejections.pop(item_id, None)
            return HaResult(item_id, HaOutcome.FAILED, error)
        self._rejections[item_id] = tries
        return self._retry(item_id, error)

    def _retry(self, item_id: int, error: str) -> HaResult:
        delay = backoff_delay(self._failures, rand=self._rand.random, base=1.0, cap=60.0)
        return HaResult(item_id, HaOutcome.RETRY, error, retry_after_s=delay)

    def _connect(self) -> Any:
        if self._client is None:
            from homeassistant_api import Client  # noqa: PLC0415 - lazy: heavy import

            token = self._config.token.get_secret_value() if self._config.token else ""
            self._client = Client(
                self._config.url.rstrip("/") + "/api",
                token,
                verify_ssl=self._config.verify_ssl,
                global_request_kwargs={"timeout": self._config.timeout_s},
            )
        return self._client


def websocket_url(config: HomeAssistantConfig) -> str:
    return config.url.rstrip("/").replace("http", "ws", 1) + "/api/websocket"


def todo_items(config: HomeAssistantConfig, entity_id: str, socket: Any = None) -> list[Any]:
    """The items of a to-do list (``todo/item/list``), over ``socket`` or a new one."""
    if socket is None:
        from homeassistant_api import WebsocketClient  # noqa: PLC0415 - lazy: heavy import

        token = config.token.get_secret_value() if config.token else ""
        with WebsocketClient(websocket_url(config), token) as fresh:
            return todo_items(config, entity_id, fresh)
    result = socket.recv_result(socket.send("todo/item/list", entity_id=entity_id)).result
    items = result.get("items", []) if isinstance(result, dict) else []
    return [item for item in items if isinstance(item, dict)]


def _state(client: Any, entity_id: str) -> str | None:
    body = client.request(f"states/{entity_id}")
    return body.get("state") if isinstance(body, dict) else None
