"""The notification JSON of PRODUCT §2 and the one prompt a profile's retained topic shows."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from needlecare.app.notifications import current_prompt, notification, notification_json
from needlecare.domain.protocol import Channel, Severity
from needlecare.domain.reminders import Reminder, ReminderStatus

CREATED = datetime(2026, 3, 5, 16, 0, tzinfo=UTC)
DUE = datetime(2026, 3, 5, 19, 0, tzinfo=UTC)
PRODUCT_FIELDS = frozenset(
    {
        "id",
        "reminder_id",
        "profile",
        "kind",
        "title",
        "message",
        "severity",
        "created_at",
        "due_at",
        "actions",
    }
)


def reminder(
    rid: str = "rem_1",
    *,
    severity: Severity = Severity.INFO,
    delivered_at: datetime | None = DUE,
    expires_at: datetime | None = None,
) -> Reminder:
    return Reminder(
        id=rid,
        session_id="ses_1",
        profile="alice",
        kind="soothe",
        title="Soothe your skin",
        message="Apply a calming serum — gently.",
        severity=severity,
        channels=(Channel.MIRROR,),
        needs_ack=True,
        escalation=(),
        status=ReminderStatus.SENT if delivered_at else ReminderStatus.PENDING,
        due_at=DUE,
        planned_at=DUE,
        created_at=CREATED,
        expires_at=expires_at,
        delivered_at=delivered_at,
        rounds=1 if delivered_at else 0,
    )


class TestNotification:
    def test_exactly_the_product_fields(self) -> None:
        """Without an expiry the notification has the §2 fields and nothing else."""
        assert PRODUCT_FIELDS == notification(reminder()).keys()

    def test_values(self) -> None:
        """Ids, text and times come from the reminder; created_at is when it was shown."""
        assert {
            "id": "rem_1",
            "reminder_id": "rem_1",
            "profile": "alice",
            "kind": "soothe",
            "title": "Soothe your skin",
            "message": "Apply a calming serum — gently.",
            "severity": "warning",
            "created_at": "2026-03-05T19:00:00+00:00",
            "due_at": "2026-03-05T19:00:00+00:00",
            "actions": ["ack", "snooze"],
        } == notification(reminder(severity=Severity.WARNING))

    def test_undelivered_shows_creation_time(self) -> None:
        """A reminder not yet delivered carries its creation time as created_at."""
        assert CREATED.isoformat() == notification(reminder(delivered_at=None))["created_at"]

    def test_expiring_adds_expiry_and_timer(self) -> None:
        """An expiring reminder adds expires_at and the MagicMirror timer in milliseconds."""
        body = notification(reminder(expires_at=DUE + timedelta(minutes=90)))
        assert PRODUCT_FIELDS | {"expires_at", "timer"} == body.keys()
        assert ("2026-03-05T20:30:00+00:00", 90 * 60 * 1000) == (
            body["expires_at"],
            body["timer"],
        )

    def test_timer_never_negative(self) -> None:
        """Shown after its expiry, the timer is 0 rather than negative."""
        body = notification(reminder(expires_at=DUE - timedelta(minutes=1)))
        assert 0 == body["timer"]

    @pytest.mark.parametrize("severity", list(Severity))
    def test_severity_is_plain_text(self, severity: Severity) -> None:
        """Severity is one of the §2 strings, as a plain str."""
        value = notification(reminder(severity=severity))["severity"]
        assert (severity.value, str) == (value, type(value))

    def test_json_matches_the_dict(self) -> None:
        """The JSON text decodes to the same notification, non-ASCII kept as is."""
        item = reminder(expires_at=DUE + timedelta(hours=1))
        text = notification_json(item)
        assert (notification(item), True) == (json.loads(text), "—" in text)


class TestCurrentPrompt:
    def test_no_prompts(self) -> None:
        """Nothing open, nothing to show."""
        assert None is current_prompt([])

    def test_single_prompt(self) -> None:
        """One open prompt is the current one."""
        only = reminder()
        assert only is current_prompt([only])

    def test_most_severe_wins_over_newer(self) -> None:
        """A critical prompt beats newer warnings and infos."""
        critical = reminder("rem_c", severity=Severity.CRITICAL, delivered_at=DUE)
        newer = [
            reminder("rem_w", severity=Severity.WARNING, delivered_at=DUE + timedelta(hours=1)),
            reminder("rem_i", severity=Severity.INFO, delivered_at=DUE + timedelta(hours=2)),
        ]
        assert critical is current_prompt([*newer, critical])
        assert critical is current_prompt([critical, *newer])

    def test_warning_beats_info(self) -> None:
        """Without a critical prompt, a warning beats a newer info."""
        warning = reminder("rem_w", severity=Severity.WARNING, delivered_at=DUE)
        info = reminder("rem_i", severity=Severity.INFO, delivered_at=DUE + timedelta(hours=1))
        assert warning is current_prompt([info, warning])

    def test_same_severity_most_recent_wins(self) -> None:
        """Among equally severe prompts, the most recently delivered is shown."""
        older = reminder("rem_b", delivered_at=DUE)
        newer = reminder("rem_a", delivered_at=DUE + timedelta(minutes=1))
        assert newer is current_prompt([newer, older])
        assert newer is current_prompt([older, newer])

    def test_tie_does_not_depend_on_order(self) -> None:
        """Same severity and delivery time: the same prompt whatever the order."""
        first = reminder("rem_a")
        second = replace(first, id="rem_b")
        assert current_prompt([first, second]) is current_prompt([second, first])
