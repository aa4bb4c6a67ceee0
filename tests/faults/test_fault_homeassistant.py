"""Home Assistant unreachable for a stretch while prompts pile up, then back.

Promise (README, "Outbox"): deliveries to Home Assistant wait in a durable outbox
while it is down and go out once, in order, when it is back; the oldest is retried
with backoff (capped at a minute) and nothing overtakes it.
"""

import json
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from faultkit import Publisher, report

from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonProcess, wait_until
from support.homeassistant import HomeAssistant

pytestmark = pytest.mark.e2e

SESSIONS = 5  # each for its own profile and device
DOWN_TRIES = 4  # Home Assistant stays down until the head item failed this often (~10 s)
DOWN_TRIES_BEFORE_RESTART = 6  # ~20-30 s: the head's next try is then 16-32 s ahead
SLOW = 120.0  # the head item's backoff reaches a minute while Home Assistant is down
HA_CHANNELS = {"dashboard", "mobile", "voice", "event", "dismiss", "clear"}
PROTOCOL = {
    "steps": {
        "soothe": {"channels": ["mirror", "dashboard"], "escalation": []},
        "actives_pause": {"channels": ["mirror", "dashboard"]},
        "serum_window": {"enabled": False},
    }
}


def ha_items(daemon: DaemonProcess, profiles: list[str]) -> list[dict[str, Any]]:
    """The Home Assistant part of the outbox for ``profiles``, by id."""
    rows: list[dict[str, Any]] = json.loads(daemon.cli("outbox", "--all", "--json").stdout)
    mine = [r for r in rows if r["profile"] in profiles and r["channel"] in HA_CHANNELS]
    return sorted(mine, key=lambda r: int(r["id"]))


class TestHomeAssistantOutage:
    @pytest.mark.parametrize("restart", [False, True], ids=["daemon_up", "daemon_restarted"])
    def test_prompts_queued_while_home_assistant_is_down_arrive_once_in_order(
        self,
        restart: bool,
        homeassistant: HomeAssistant,
        ha_mosquitto: MosquittoBroker,
        daemon_factory: Callable[..., DaemonProcess],
    ) -> None:
        """Five sessions while HA is stopped: each notification once, sent in outbox order.

        In the second variant the daemon is also restarted during the outage, after
        the oldest item's retry was pushed 16-32 s ahead: the outbox is durable, so
        the order must survive the restart as well.
        """
        tries = DOWN_TRIES_BEFORE_RESTART if restart else DOWN_TRIES
        tag = uuid.uuid4().hex[:6]
        profiles = [f"out{tag}{n}" for n in range(SESSIONS)]
        daemon = daemon_factory(
            ha_mosquitto,
            mqtt={"client_id": f"needlecare-{tag}", "session_expiry_s": 60},
            homeassistant={"url": homeassistant.url, "token": homeassistant.token},
            profiles={p: {"timezone": "Europe/Berlin"} for p in profiles},
            devices={f"pen_{p}": {"owner": p} for p in profiles},
            protocol=PROTOCOL,
        ).start()
        homeassistant.stop()
        stopped = time.monotonic()
        try:
            client = Publisher(ha_mosquitto)
            for profile in profiles:
                topic = f"needlecare/device/pen_{profile}/event"
                for kind in ("session_started", "session_ended"):
                    body = {"event_id": f"{profile}-{kind}", "type": kind}
                    client.publish(topic, json.dumps(body).encode(), body["event_id"])
            client.wait_all_acked()
            client.close()
            wait_until(
                lambda: (
                    sum(r["channel"] == "dashboard" for r in ha_items(daemon, profiles))
                    == 2 * SESSIONS
                    and daemon.log_count("homeassistant_unavailable") >= tries
                ),
                timeout=SLOW,
                what=f"every prompt queued and {tries} failed tries (a growing backoff)",
            )
            queued = ha_items(daemon, profiles)
            assert all(r["status"] == "pending" for r in queued), "sent while HA was down?"
            if restart:
                assert 0 == daemon.stop()
                daemon.start()
                wait_until(
                    lambda: daemon.log_count("homeassistant_unavailable") > tries,
                    timeout=SLOW,
                    what="a try by the restarted daemon",
                )
        finally:
            homeassistant.start()
        down_s = time.monotonic() - stopped
        back = time.monotonic()
        wait_until(
            lambda: all(r["status"] != "pending" for r in ha_items(daemon, profiles)),
            timeout=SLOW,
            what="the outbox drained after Home Assistant came back",
        )
        drained_s = time.monotonic() - back

        items = ha_items(daemon, profiles)
        assert [] == [
            (r["id"], r["status"], r["last_error"]) for r in items if r["status"] != "sent"
        ]
        sent_at = [datetime.fromisoformat(r["sent_at"]) for r in items]
        assert sorted(sent_at) == sent_at, "an item overtook an older one"
        shown = [n["notification_id"] for n in homeassistant.persistent_notifications()]
        dashboard = [r["reminder_id"] for r in items if r["channel"] == "dashboard"]
        assert 2 * SESSIONS == len(set(dashboard))
        assert {f"needlecare_{rid}": 1 for rid in dashboard} == {
            f"needlecare_{rid}": shown.count(f"needlecare_{rid}") for rid in dashboard
        }
        retries = sum(int(r["attempts"]) for r in items) - len(items)
        assert retries >= 1, "the head item was tried while Home Assistant was down"
        report(
            f"homeassistant_outage_{'daemon_restarted' if restart else 'daemon_up'}",
            sessions=SESSIONS,
            items=len(items),
            dashboard_prompts=len(dashboard),
            failed_tries_while_down=retries,
            ha_down_s=round(down_s, 1),
            drained_after_back_s=round(drained_s, 1),
        )
