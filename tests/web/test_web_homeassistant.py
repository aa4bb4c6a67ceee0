"""Done in the web app reaches a real Home Assistant through the outbox (each tested release)."""

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from conftest import TOKEN, WebDaemon
from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonProcess, wait_until
from support.homeassistant import HomeAssistant
from support.mosquitto import free_port

pytestmark = pytest.mark.e2e

SLOW = 60.0  # includes Home Assistant's own retries


def notification(hass: HomeAssistant, reminder_id: str) -> dict[str, Any] | None:
    wanted = f"needlecare_{reminder_id}"
    return next(
        (n for n in hass.persistent_notifications() if n["notification_id"] == wanted), None
    )


def test_ack_over_http_dismisses_the_dashboard_notification(
    homeassistant: HomeAssistant,
    ha_mosquitto: MosquittoBroker,
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    """A session logged over HTTP notifies the dashboard; Done over HTTP dismisses it."""
    profile = f"w{uuid.uuid4().hex[:8]}"
    port = free_port()
    daemon = daemon_factory(
        ha_mosquitto,
        mqtt={"client_id": f"needlecare-{profile}", "session_expiry_s": 60},
        homeassistant={"url": homeassistant.url, "token": homeassistant.token},
        profiles={profile: {"timezone": "Europe/Berlin"}},
        devices={},
        mirrors={},
        protocol={
            "steps": {
                "soothe": {"channels": ["mirror", "dashboard"], "escalation": []},
                **{
                    step: {"enabled": False}
                    for step in ("serum_window", "actives_pause", "actives_resume")
                },
            }
        },
        web={"enabled": True, "port": port, "token": TOKEN},
    ).start()
    wait_until(lambda: daemon.log_count("web_started") > 0, what="the web server")
    web = WebDaemon(daemon, port, TOKEN)
    web.log_session(profile)
    prompt = web.wait_for_prompt(profile)
    shown = homeassistant.wait_for(lambda: notification(homeassistant, prompt["id"]), timeout=SLOW)
    assert prompt["title"] == shown["title"]
    assert "acked" == web.post(f"/api/v1/reminders/{prompt['id']}/ack")["status"]
    homeassistant.wait_for(
        lambda: notification(homeassistant, prompt["id"]) is None,
        timeout=SLOW,
        what="the dashboard notification to be dismissed",
    )
