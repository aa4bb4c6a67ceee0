"""The notification JSON of PRODUCT §2, shared by the mirror topic and the retained prompt.

Field names follow MagicMirror's SHOW_ALERT (``title``, ``message``, ``timer``), so
a stock MQTT-to-MagicMirror bridge can show a notification unchanged.
"""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from needlecare.domain.protocol import Severity
from needlecare.domain.reminders import Reminder

_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


def notification(reminder: Reminder, shown_at: datetime | None = None) -> dict[str, Any]:
    """The notification for a reminder; the same ``id`` replaces an earlier one on a mirror.

    ``shown_at`` is when this copy goes out (a re-show after a snooze or on presence),
    so ``timer`` counts down what is left; by default the first delivery, which keeps
    the retained prompt's payload stable.
    """
    shown_at = shown_at or reminder.delivered_at or reminder.created_at
    body: dict[str, Any] = {
        "id": reminder.id,
        "reminder_id": reminder.id,
        "profile": reminder.profile,
        "kind": reminder.kind,
        "title": reminder.title,
        "message": reminder.message,
        "severity": reminder.severity.value,
        "created_at": shown_at.isoformat(),
        "due_at": reminder.due_at.isoformat(),
        "actions": ["ack", "snooze"],
    }
    if reminder.expires_at is not None:
        body["expires_at"] = reminder.expires_at.isoformat()
        body["timer"] = max(0, int((reminder.expires_at - shown_at).total_seconds() * 1000))
    return body


def notification_json(reminder: Reminder, shown_at: datetime | None = None) -> str:
    return json.dumps(notification(reminder, shown_at), ensure_ascii=False)


def delivery_json(reminder: Reminder, channel: str, shown_at: datetime | None = None) -> str:
    """An outbox payload: the notification, and for the voice channel the text written to
    be heard (``speech``, in the profile's language) when the plan at hand has one."""
    body = notification(reminder, shown_at)
    if channel == "voice" and reminder.speech:
        body["speech"] = reminder.speech
    return json.dumps(body, ensure_ascii=False)


def current_prompt(open_prompts: Sequence[Reminder]) -> Reminder | None:
    """The one prompt a profile's retained topic shows: most severe, then most recent."""
    if not open_prompts:
        return None
    return max(
        open_prompts,
        key=lambda r: (_RANK[r.severity], r.delivered_at or r.created_at, r.id),
    )
