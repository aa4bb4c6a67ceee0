"""Aftercare steps on a Home Assistant Local To-do list: added, checked off both ways."""

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from needlecare.clock import SystemClock
from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonProcess, wait_until
from support.homeassistant import HomeAssistant, one_profile_daemon
from support.homeassistant_setup import drive_flow
from support.mosquitto import MqttClientFactory

pytestmark = pytest.mark.e2e

TODO = "todo.aftercare"
SLOW = 60.0
_FLOW = "/api/config/config_entries/flow"


def ensure_local_todo(hass: HomeAssistant) -> None:
    """A Local To-do list named 'Aftercare', made through its config flow once."""
    if hass.state(TODO) is not None:
        return
    flow = hass.rest("POST", _FLOW, {"handler": "local_todo"})
    drive_flow(hass, _FLOW, flow, {"todo_list_name": "Aftercare"})
    hass.wait_for(lambda: hass.state(TODO), what="the Local To-do entity")


def items(hass: HomeAssistant) -> dict[str, dict[str, Any]]:
    """Needlecare's items on the list, by the reminder id in their description."""
    listed = hass.websocket("todo/item/list", entity_id=TODO)["items"]
    return {
        item["description"].removeprefix("needlecare:"): item
        for item in listed
        if str(item.get("description") or "").startswith("needlecare:")
    }


class TestTodo:
    def test_steps_are_added_and_checked_off_both_ways(
        self,
        homeassistant: HomeAssistant,
        ha_mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: Callable[..., DaemonProcess],
    ) -> None:
        """Steps become items; a check-off in HA acks; an ack elsewhere checks off; a void
        removes what was still ahead."""
        ensure_local_todo(homeassistant)
        profile = f"t{uuid.uuid4().hex[:8]}"
        device = f"pen_{profile}"
        daemon = one_profile_daemon(
            daemon_factory, ha_mosquitto, homeassistant, profile, entities={"todo_entity": TODO}
        )
        client = mqtt_client_factory(ha_mosquitto)
        topic = f"needlecare/device/{device}/event"
        for kind in ("session_started", "session_ended"):
            client.publish(
                topic, json.dumps({"event_id": f"{kind}-{profile}", "type": kind}).encode()
            )

        def reminders() -> dict[str, dict[str, Any]]:
            rows = json.loads(daemon.cli("reminders", "--json", "--profile", profile).stdout)
            return {row["kind"]: row for row in rows}

        wait_until(lambda: "soothe" in reminders(), timeout=SLOW, what="the plan")
        planned = reminders()
        soothe, serum = planned["soothe"]["id"], planned["serum_window"]["id"]

        def both() -> dict[str, dict[str, Any]] | None:
            got = items(homeassistant)
            return got if {soothe, serum} <= set(got) else None

        found = homeassistant.wait_for(both, timeout=SLOW, what="soothe and serum on the list")
        assert ("needs_action", "needs_action") == (
            found[soothe]["status"],
            found[serum]["status"],
        )
        assert found[soothe]["due"]  # a due date and time
        assert "window_open" not in {r.split(":")[-1] for r in found}

        # Checked off in Home Assistant: the reminder is acknowledged.
        homeassistant.call_service(
            "todo",
            "update_item",
            {"entity_id": TODO, "item": found[soothe]["uid"], "status": "completed"},
        )
        wait_until(
            lambda: reminders()["soothe"]["status"] == "acked",
            timeout=SLOW,
            what="soothe acked by the check-off",
        )

        # Acknowledged elsewhere (the command line): the item is checked off.
        daemon.cli("ack", serum)
        homeassistant.wait_for(
            lambda: items(homeassistant)[serum]["status"] == "completed",
            timeout=SLOW,
            what="serum checked off after the ack",
        )
        assert "acked" == reminders()["serum_window"]["status"]

        # The session voided: the step still ahead (the end of the actives pause) is
        # cancelled and its item removed; the answered ones stay, checked off.
        resume = planned["actives_resume"]["id"]
        assert resume in items(homeassistant)
        [session] = json.loads(daemon.cli("sessions", "--json", "--profile", profile).stdout)
        daemon.cli("void-session", session["id"])
        homeassistant.wait_for(
            lambda: resume not in items(homeassistant),
            timeout=SLOW,
            what="the actives-pause item removed after the void",
        )
        left = items(homeassistant)
        assert ("completed", "completed") == (left[soothe]["status"], left[serum]["status"])

    def test_a_replanned_step_moves_its_item_instead_of_adding_one(
        self,
        homeassistant: HomeAssistant,
        ha_mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: Callable[..., DaemonProcess],
    ) -> None:
        """A start stamped three hours ago, then silence: the plan follows an inferred end.
        The real end then moves every step three hours on; each item is updated in place."""
        ensure_local_todo(homeassistant)
        profile = f"r{uuid.uuid4().hex[:8]}"
        device = f"pen_{profile}"
        daemon = one_profile_daemon(
            daemon_factory,
            ha_mosquitto,
            homeassistant,
            profile,
            entities={"todo_entity": TODO},
            sessions={"timeout": 1},
        )
        client = mqtt_client_factory(ha_mosquitto)
        topic = f"needlecare/device/{device}/event"
        started = SystemClock().now() - timedelta(hours=3)
        start = {"event_id": f"s-{profile}", "type": "session_started",
                 "timestamp": started.isoformat()}  # fmt: skip
        client.publish(topic, json.dumps(start).encode())

        def reminders() -> dict[str, dict[str, Any]]:
            rows = json.loads(daemon.cli("reminders", "--json", "--profile", profile).stdout)
            return {row["kind"]: row for row in rows}

        wait_until(lambda: "actives_resume" in reminders(), timeout=SLOW, what="the plan")
        resume = reminders()["actives_resume"]["id"]
        first = homeassistant.wait_for(
            lambda: items(homeassistant).get(resume), timeout=SLOW, what="the item"
        )

        client.publish(
            topic, json.dumps({"event_id": f"e-{profile}", "type": "session_ended"}).encode()
        )

        def moved() -> dict[str, Any] | None:
            item = items(homeassistant).get(resume)
            return item if item is not None and item["due"] != first["due"] else None

        second = homeassistant.wait_for(moved, timeout=SLOW, what="the item's due time moved")
        shift = datetime.fromisoformat(second["due"]) - datetime.fromisoformat(first["due"])
        assert timedelta(hours=2, minutes=59) <= shift <= timedelta(hours=3, minutes=2)
        assert first["uid"] == second["uid"]  # the same item, updated
        assert first["summary"] != second["summary"]  # its text names the new due time
        listed = homeassistant.websocket("todo/item/list", entity_id=TODO)["items"]
        mine = [i for i in listed if i.get("description") == f"needlecare:{resume}"]
        assert [second["uid"]] == [i["uid"] for i in mine]
