"""Aftercare steps on a Home Assistant to-do list (``homeassistant.todo_entity``).

The steps a person does themselves (soothe, serum, the end of the
actives pause) become to-do items with due dates when a session's aftercare is
planned (an item already there for the reminder is updated instead: a replanned
step moves its due time), are checked off when the reminder is acknowledged, from
any channel, and are removed when the reminder is cancelled (superseded by a newer
session, or its session voided). All of it goes through the durable Home Assistant
outbox, in order, like every other call.

The outbox rows carry no ``reminder_id`` on purpose: answering or superseding a
reminder cancels its pending deliveries, but an item that is on its way to the
list must still arrive, so that checking it off later finds it.

Items are found again by their description, ``needlecare:<reminder id>``, never
by their text (which the person may edit, and which holds a due time that a snooze
or a replanned session moves): checking an item off in Home Assistant acknowledges
the reminder (the to-do listener reads the description), and an acknowledgement
elsewhere looks the item up by description and completes it by its uid.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from needlecare.app.ports import AftercareStore
from needlecare.config import NeedlecareConfig
from needlecare.domain.outbox import OutboxItem
from needlecare.i18n import translator

TODO_KINDS = frozenset({"soothe", "serum_window", "actives_resume"})
ADD, DONE, REMOVE = "todo", "todo_done", "todo_remove"
MARK = "needlecare:"


class TodoStep(Protocol):
    """What a to-do item is made from: a planned or a stored reminder."""

    @property
    def id(self) -> str: ...

    @property
    def profile(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def due_at(self) -> datetime: ...


def summary(title: str, due_at: datetime, zone: ZoneInfo, language: str) -> str:
    """The item's text: the step and its local due time in the person's language."""
    tr = translator(language)
    return tr.gettext("{title} ({due})", title=title, due=tr.when(due_at, zone))


def description(reminder_id: str) -> str:
    return f"{MARK}{reminder_id}"


def reminder_from_description(description: str | None) -> str | None:
    """The reminder id in an item's description, or None for someone else's item."""
    if not description or not description.startswith(MARK):
        return None
    return description.removeprefix(MARK).strip() or None


@dataclass
class TodoList:
    """Queues to-do calls in the caller's transaction (the outbox)."""

    store: AftercareStore
    config: NeedlecareConfig

    @property
    def entity(self) -> str | None:
        ha = self.config.homeassistant
        return None if ha is None else ha.todo_entity

    def planned(self, steps: Iterable[TodoStep], now: datetime) -> None:
        """Put each new or changed step of a plan on the list (added, or updated)."""
        entity = self.entity
        if entity is None:
            return
        for step in steps:
            if step.kind not in TODO_KINDS or step.profile not in self.config.profiles:
                continue
            profile = self.config.profiles[step.profile]
            due = step.due_at.astimezone(profile.zone)
            payload = {
                "entity_id": entity,
                "item": summary(step.title, due, profile.zone, profile.language),
                "due_datetime": due.isoformat(),
                "description": description(step.id),
            }
            key = f"{step.id}:todo:{due.isoformat()}:{now.isoformat()}"
            self._queue(key, ADD, step.profile, payload, now)

    def checked(self, step: TodoStep, now: datetime) -> None:
        """The reminder was acknowledged: check its item off (once)."""
        entity = self.entity
        if entity is None or step.kind not in TODO_KINDS:
            return
        payload = {
            "entity_id": entity,
            "description": description(step.id),
            "status": "completed",
        }
        self._queue(f"{step.id}:todo_done", DONE, step.profile, payload, now)

    def removed(self, step: TodoStep, now: datetime) -> None:
        """The reminder was cancelled: take its item off the list."""
        entity = self.entity
        if entity is None or step.kind not in TODO_KINDS:
            return
        payload = {"entity_id": entity, "description": description(step.id)}
        self._queue(f"{step.id}:todo_remove:{now.isoformat()}", REMOVE, step.profile, payload, now)

    def _queue(
        self, key: str, channel: str, profile: str, payload: dict[str, str], now: datetime
    ) -> None:
        self.store.outbox.add(
            OutboxItem(
                key=key,
                channel=channel,
                target=str(payload["entity_id"]),
                payload=json.dumps(payload),
                not_before=now,
                created_at=now,
                profile=profile,
            )
        )
