"""Outbox items to Home Assistant calls, and phone button action ids."""

import json

import pytest

from needlecare.app.ha_calls import HaCall, action_id, ha_call, notification_id, parse_action
from needlecare.config import ProfileConfig

BODY = json.dumps(
    {
        "id": "rem_1",
        "reminder_id": "rem_1",
        "profile": "alice",
        "kind": "soothe",
        "title": "Soothe your skin",
        "message": "Calm it.",
        "severity": "warning",
    }
)
FULL = ProfileConfig.model_validate(
    {
        "timezone": "Europe/Berlin",
        "notify_service": "notify.mobile_app_pixel",
        "person": "person.alice",
        "voice": {
            "service": "tts.speak",
            "data": {"entity_id": "tts.piper", "media_player_entity_id": "media_player.kitchen"},
        },
    }
)
BARE = ProfileConfig.model_validate({"timezone": "Europe/Berlin"})


def call(channel: str, profile: ProfileConfig = FULL) -> HaCall | None:
    return ha_call(channel=channel, payload=BODY, profile=profile, send_id=7, snooze_minutes=30)


class TestHaCall:
    def test_dashboard_is_a_persistent_notification_with_a_stable_id(self) -> None:
        """The notification id comes from the reminder, so a repeat replaces it."""
        expected = HaCall(
            "service",
            "persistent_notification.create",
            {
                "notification_id": "needlecare_rem_1",
                "title": "Soothe your skin",
                "message": "Calm it.",
            },
        )
        assert expected == call("dashboard")

    def test_dismiss(self) -> None:
        """An ack dismisses the same notification id."""
        expected = HaCall(
            "service", "persistent_notification.dismiss", {"notification_id": "needlecare_rem_1"}
        )
        assert expected == call("dismiss")

    def test_mobile_has_done_and_snooze_with_a_tag(self) -> None:
        """The phone gets the tag and two actions whose ids are unique per send."""
        result = call("mobile")
        assert result is not None
        assert "notify.mobile_app_pixel" == result.name
        data = result.data["data"]
        assert "needlecare_rem_1" == data["tag"]
        expected = [
            {"action": "NEEDLECARE_ACK:rem_1:7", "title": "Done"},
            {"action": "NEEDLECARE_SNOOZE:rem_1:7", "title": "Snooze 30 min"},
        ]
        assert expected == data["actions"]

    def test_clear_removes_the_phone_notification_by_tag(self) -> None:
        """An ack clears the phone notification with clear_notification and the tag."""
        expected = HaCall(
            "service",
            "notify.mobile_app_pixel",
            {"message": "clear_notification", "data": {"tag": "needlecare_rem_1"}},
        )
        assert expected == call("clear")

    def test_voice_puts_the_text_in_the_message_field_and_needs_home(self) -> None:
        """Voice merges the fixed data with the text and asks for the person to be home."""
        expected = HaCall(
            "service",
            "tts.speak",
            {
                "entity_id": "tts.piper",
                "media_player_entity_id": "media_player.kitchen",
                "message": "Soothe your skin. Calm it.",
            },
            only_when_home="person.alice",
        )
        assert expected == call("voice")

    def test_event_carries_the_reminder(self) -> None:
        """needlecare_reminder carries profile, kind, id, title, message and severity."""
        result = call("event")
        assert result is not None
        assert ("event", "needlecare_reminder") == (result.kind, result.name)
        assert {"profile", "kind", "reminder_id", "title", "message", "severity"} == set(
            result.data
        )

    @pytest.mark.parametrize("channel", ["mobile", "clear", "voice"])
    def test_channels_not_set_up_give_no_call(self, channel: str) -> None:
        """A profile without a phone or a voice service gets no such call."""
        assert call(channel, BARE) is None


class TestLegacyPhoneNotifications:
    def test_actionable_notifications_use_the_legacy_notify_service_with_data(self) -> None:
        """notify.mobile_app_* with data.actions: notify.send_message takes no data."""
        result = call("mobile")
        assert result is not None
        assert "notify.mobile_app_pixel" == result.name
        assert {"tag", "actions"} == set(result.data["data"])


class TestTodo:
    @pytest.mark.parametrize(
        ("channel", "service"),
        [
            ("todo", "todo.add_item"),
            ("todo_done", "todo.update_item"),
            ("todo_remove", "todo.remove_item"),
        ],
    )
    def test_todo_calls_find_the_item_by_description(self, channel: str, service: str) -> None:
        """The payload (built by app/todo.py) goes to the adapter, which looks the uid up."""
        data = {"entity_id": "todo.aftercare", "description": "needlecare:rem_1"}
        result = ha_call(
            channel=channel, payload=json.dumps(data), profile=BARE, send_id=1, snooze_minutes=5
        )
        assert HaCall("todo_item", service, data) == result


class TestActions:
    def test_round_trip(self) -> None:
        """An action id built for a send parses back to its verb and reminder."""
        assert ("SNOOZE", "rem_9") == parse_action(action_id("SNOOZE", "rem_9", 3))

    @pytest.mark.parametrize(
        "action", ["", "OTHER_ACK:x:1", "NEEDLECARE_DANCE:x:1", "NEEDLECARE_ACK:"]
    )
    def test_foreign_actions_are_ignored(self, action: str) -> None:
        """Buttons of other integrations are not ours."""
        assert parse_action(action) is None

    def test_notification_id(self) -> None:
        """Notification ids and tags share one form."""
        assert "needlecare_rem_2" == notification_id("rem_2")
