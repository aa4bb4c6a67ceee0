"""What each Home Assistant outbox item becomes: a service call or an event.

Pure mapping; the Home Assistant adapter carries the calls out. Ids derived from
the reminder id make repeats harmless where Home Assistant allows it: a persistent
notification or a phone notification with the same id or tag replaces the old one.
"""

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from needlecare.config import ProfileConfig
from needlecare.i18n import translator

HA_CHANNELS = (
    "dashboard",
    "mobile",
    "voice",
    "event",
    "dismiss",
    "clear",
    "calendar",
    "todo",
    "todo_done",
    "todo_remove",
)
ACTION_PREFIX = "NEEDLECARE"
# The to-do channels (app/todo.py); todo_done's payload carries status: completed.
_TODO_SERVICES = {
    "todo": "todo.add_item",
    "todo_done": "todo.update_item",
    "todo_remove": "todo.remove_item",
}
REMINDER_EVENT = "needlecare_reminder"


@dataclass(frozen=True, slots=True)
class HaCall:
    """One call to make: a service (``domain.service``) or an event (``name``).

    ``todo_item`` is ``name`` (``todo.add_item``, ``update_item`` or ``remove_item``) on
    the item of the list ``data["entity_id"]`` whose description is
    ``data["description"]``: the adapter looks its uid up first. An add finding the
    item updates it instead (text and due time), so a repeat never duplicates it.
    """

    kind: Literal["service", "event", "todo_item"]
    name: str
    data: dict[str, Any] = field(default_factory=dict)
    only_when_home: str | None = None  # a person entity that must be 'home'


def notification_id(reminder_id: str) -> str:
    return f"needlecare_{reminder_id}"


def action_id(verb: Literal["ACK", "SNOOZE"], reminder_id: str, send_id: int) -> str:
    """Unique per send, so a press on an old phone notification is still traceable."""
    return f"{ACTION_PREFIX}_{verb}:{reminder_id}:{send_id}"


def parse_action(action: str) -> tuple[str, str] | None:
    """(verb, reminder id) from a phone button's action id, or None if not ours."""
    head, _, rest = action.partition(":")
    reminder_id, _, _ = rest.partition(":")
    verb = head.removeprefix(f"{ACTION_PREFIX}_")
    if head == verb or verb not in {"ACK", "SNOOZE"} or not reminder_id:
        return None
    return verb, reminder_id


def ha_call(
    *, channel: str, payload: str, profile: ProfileConfig, send_id: int, snooze_minutes: int
) -> HaCall | None:
    """The call for one outbox item; None when the profile has no such channel."""
    body = json.loads(payload)
    if channel == "calendar":
        return HaCall("service", "calendar.create_event", body)
    if channel in _TODO_SERVICES:
        return HaCall("todo_item", _TODO_SERVICES[channel], body)
    if channel in {"mobile", "clear"}:
        return _mobile(channel, body, profile, send_id, snooze_minutes)
    if channel == "voice":
        return _voice(body, profile)
    return _dashboard_or_event(channel, body)


def _dashboard_or_event(channel: str, body: dict[str, Any]) -> HaCall | None:
    rid = body["reminder_id"]
    if channel == "dashboard":
        data = {
            "notification_id": notification_id(rid),
            "title": body["title"],
            "message": body["message"],
        }
        return HaCall("service", "persistent_notification.create", data)
    if channel == "dismiss":
        data = {"notification_id": notification_id(rid)}
        return HaCall("service", "persistent_notification.dismiss", data)
    if channel == "event":
        keys = ("profile", "kind", "reminder_id", "title", "message", "severity")
        return HaCall("event", REMINDER_EVENT, {key: body[key] for key in keys})
    return None


def _voice(body: dict[str, Any], profile: ProfileConfig) -> HaCall | None:
    if profile.voice is None:
        return None
    voice = profile.voice
    text = body.get("speech") or translator(profile.language).pgettext(
        "voice", "{title}. {message}", title=body["title"], message=body["message"]
    )
    data = {**voice.data, voice.message_field: text}
    home = profile.person if voice.only_when_home else None
    return HaCall("service", voice.service, data, only_when_home=home)


def _mobile(
    channel: str, body: dict[str, Any], profile: ProfileConfig, send_id: int, snooze_minutes: int
) -> HaCall | None:
    if profile.notify_service is None:
        return None
    tag = notification_id(body["reminder_id"])
    if channel == "clear":
        return HaCall(
            "service",
            profile.notify_service,
            {"message": "clear_notification", "data": {"tag": tag}},
        )
    tr = translator(profile.language)
    actions = [
        # Translators: the phone notification's button that acknowledges a reminder.
        {"action": action_id("ACK", body["reminder_id"], send_id), "title": tr.gettext("Done")},
        {
            "action": action_id("SNOOZE", body["reminder_id"], send_id),
            # Translators: the phone notification's button that snoozes a reminder.
            "title": tr.gettext("Snooze {minutes} min", minutes=snooze_minutes),
        },
    ]
    data = {"tag": tag, "actions": actions}
    return HaCall(
        "service",
        profile.notify_service,
        {"title": body["title"], "message": body["message"], "data": data},
    )
