"""Next-session windows as events in a Home Assistant Local Calendar, never duplicated."""

import json
import urllib.parse
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonProcess, wait_until
from support.homeassistant import HomeAssistant, one_profile_daemon
from support.mosquitto import MqttClientFactory

pytestmark = pytest.mark.e2e

CALENDAR = "calendar.needlecare_windows"


def ensure_local_calendar(hass: HomeAssistant) -> None:
    """A Local Calendar named 'Needlecare windows', created through the config flow once."""
    if hass.state(CALENDAR) is not None:
        return
    flow = hass.rest("POST", "/api/config/config_entries/flow", {"handler": "local_calendar"})
    hass.rest(
        "POST",
        f"/api/config/config_entries/flow/{flow['flow_id']}",
        {"calendar_name": "Needlecare windows"},
    )
    hass.wait_for(lambda: hass.state(CALENDAR), what="the local calendar entity")


def events(hass: HomeAssistant, summary: str) -> list[dict[str, Any]]:
    start = datetime.now(UTC)  # noqa: TID251 - Home Assistant's real clock
    query = urllib.parse.urlencode(
        {"start": start.isoformat(), "end": (start + timedelta(days=60)).isoformat()}
    )
    found: list[dict[str, Any]] = hass.rest("GET", f"/api/calendars/{CALENDAR}?{query}")
    return [event for event in found if event.get("summary") == summary]


class TestCalendar:
    def test_window_event_created_once_even_when_the_session_is_replanned(
        self,
        homeassistant: HomeAssistant,
        ha_mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: Callable[..., DaemonProcess],
    ) -> None:
        """An inferred end plans the window; the late real end replans it; one event remains."""
        ensure_local_calendar(homeassistant)
        profile = f"c{uuid.uuid4().hex[:8]}"
        device = f"pen_{profile}"
        daemon = one_profile_daemon(
            daemon_factory,
            ha_mosquitto,
            homeassistant,
            profile,
            entities={"calendar_entity": CALENDAR},
            sessions={"timeout": 1},
        )
        client = mqtt_client_factory(ha_mosquitto)
        topic = f"needlecare/device/{device}/event"
        client.publish(
            topic, json.dumps({"event_id": f"s-{profile}", "type": "session_started"}).encode()
        )
        summary = f"Microneedling window ({profile})"
        homeassistant.wait_for(lambda: events(homeassistant, summary), timeout=30, what="the event")
        [inferred] = json.loads(daemon.cli("sessions", "--json", "--profile", profile).stdout)
        assert "end_inferred" == inferred["status"]
        client.publish(
            topic, json.dumps({"event_id": f"e-{profile}", "type": "session_ended"}).encode()
        )
        wait_until(
            lambda: (
                json.loads(daemon.cli("sessions", "--json", "--profile", profile).stdout)[0][
                    "status"
                ]
                == "completed"
            ),
            what="the late end completing the session",
        )
        wait_until(
            lambda: all(
                row["status"] != "pending"
                for row in json.loads(daemon.cli("outbox", "--json").stdout)
            ),
            timeout=30,
            what="the outbox drained",
        )
        [event] = events(homeassistant, summary)
        # All-day, over the window's local days: Home Assistant gives dates, not times.
        assert ({"date"}, {"date"}) == (set(event["start"]), set(event["end"]))
        result = daemon.cli("calendar", "--profile", profile)
        assert 1 == result.stdout.count("BEGIN:VEVENT")
