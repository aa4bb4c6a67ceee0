"""Listens for aftercare items checked off on the Home Assistant to-do list.

A state trigger on the list (its state is the number of open items) wakes the
listener; it then reads the items (``todo/item/list``) and reports every completed
one of Needlecare's (``needlecare:<reminder id>`` in its description) once per
process. At each (re)connect the list is read at once, so an item checked off
while the daemon or the connection was down is still seen. The core records each
report as an event with a fixed id, so a repeat acknowledges nothing twice.
"""

from collections.abc import Callable
from typing import Any

from needlecare.app.todo import reminder_from_description
from needlecare.config import HomeAssistantConfig
from needlecare.logs import get_logger
from needlecare_integrations.homeassistant.subscription import Subscription
from needlecare_integrations.homeassistant.worker import todo_items, websocket_url

log = get_logger(__name__)


class TodoListener(Subscription):
    """Hands the reminder id of each checked-off item to ``on_checked``."""

    thread_name = "ha-todo"
    lost_event = "homeassistant_todo_lost"

    def __init__(
        self, config: HomeAssistantConfig, entity_id: str, on_checked: Callable[[str], None]
    ) -> None:
        super().__init__(config)
        self._entity_id = entity_id
        self._on_checked = on_checked
        self._reported: set[str] = set()

    def _listen(self) -> None:
        from homeassistant_api import WebsocketClient  # noqa: PLC0415 - lazy: heavy import

        with WebsocketClient(websocket_url(self._config), self._token()) as socket:
            self._socket = socket
            with socket.listen_trigger("state", entity_id=self._entity_id) as changes:
                self._report(socket)
                self.subscribed.set()
                log.info("homeassistant_todo_listening", entity_id=self._entity_id)
                for _ in changes:
                    self._report(socket)

    def _report(self, socket: Any) -> None:
        for item in todo_items(self._config, self._entity_id, socket):
            if item.get("status") != "completed":
                continue
            reminder_id = reminder_from_description(item.get("description"))
            if reminder_id is not None and reminder_id not in self._reported:
                self._reported.add(reminder_id)
                self._on_checked(reminder_id)
