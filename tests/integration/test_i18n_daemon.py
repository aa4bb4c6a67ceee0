"""Languages end to end: the daemon as a process, a real Mosquitto, three people, one mirror.

Alice reads German, Bob English, Carol French. Each gets the same prompts in their
own language on the mirror's notify topic and their retained prompt, while every
machine value (keys, kind, severity, actions, ids, the state's status and
restriction names) stays exactly the same.
"""

import json
from pathlib import Path
from typing import Any

import pytest

from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonFactory, wait_until
from support.mosquitto import MqttClientFactory, MqttConnection

pytestmark = pytest.mark.integration

NOTIFY = "needlecare/mirror/hallway/notify"
MIRROR = "needlecare/mirror/hallway/event"
AWAKE = {"start": "03:00", "end": "03:01"}  # a one-minute quiet window: never in the way
PEOPLE = {"alice": "de", "bob": "en", "carol": "fr"}
CONFIG: dict[str, Any] = {
    "profiles": {
        "alice": {"timezone": "Europe/Berlin", "language": "de", "quiet_hours": AWAKE},
        "bob": {"timezone": "Europe/Berlin", "quiet_hours": AWAKE},
        "carol": {"timezone": "Europe/Paris", "language": "fr-FR", "quiet_hours": AWAKE},
    },
    "devices": {
        "pen1": {"owner": "alice"},
        "pen2": {"owner": "bob"},
        "pen3": {"owner": "carol"},
    },
}
# Only the session-end prompts and the guards: the retained prompt stays predictable.
PROTOCOL = {
    "steps": {
        name: {"enabled": False}
        for name in ("serum_window", "actives_resume", "window_open", "overdue")
    }
}
MACHINE_KEYS = ("kind", "severity", "actions", "profile")


def event(event_id: str, kind: str, **fields: Any) -> bytes:
    return json.dumps({"event_id": event_id, "type": kind, **fields}).encode()


def notifications(watcher: MqttConnection, profile: str) -> dict[str, dict[str, Any]]:
    """The notifications the mirror got for ``profile``, by kind (the latest of each)."""
    found = {}
    for message in watcher.received.messages:
        if message.topic == NOTIFY and message.payload:
            body = json.loads(message.payload)
            if body["profile"] == profile:
                found[body["kind"]] = body
    return found


def retained_json(watcher: MqttConnection, topic: str) -> dict[str, Any]:
    """The latest payload seen on a retained topic (the watcher subscribed to it)."""
    payloads = [m.payload for m in watcher.received.messages if m.topic == topic]
    return json.loads(payloads[-1]) if payloads and payloads[-1] else {}


@pytest.fixture
def delivered(
    mosquitto: MosquittoBroker,
    mqtt_client_factory: MqttClientFactory,
    daemon_factory: DaemonFactory,
    tmp_path: Path,
) -> dict[str, dict[str, Any]]:
    """Per profile: its mirror notifications by kind, its retained prompt and state."""
    daemon = daemon_factory(mosquitto, protocol=PROTOCOL, **CONFIG).start()
    watcher = mqtt_client_factory(mosquitto)
    watcher.subscribe("needlecare/#")
    client = mqtt_client_factory(mosquitto)
    for n in range(1, len(PEOPLE) + 1):
        pen = f"needlecare/device/pen{n}/event"
        client.publish(pen, event(f"start{n}", "session_started"))
        client.publish(pen, event(f"end{n}", "session_ended", duration_s=600))
    for profile in PEOPLE:
        wait_until(lambda p=profile: "soothe" in notifications(watcher, p), what="soothe")
    for n, profile in enumerate(PEOPLE, start=1):
        product = event(
            f"product{n}",
            "product_applied",
            profile=profile,
            product="Night serum",
            ingredients=["Retinol 0.3%", "glycolic acid"],
        )
        client.publish(MIRROR, product)
    seen: dict[str, dict[str, Any]] = {}
    for profile in PEOPLE:
        prompt_topic = f"needlecare/profile/{profile}/prompt"
        wait_until(
            lambda p=profile, t=prompt_topic: (
                "restricted_product" in notifications(watcher, p)
                and retained_json(watcher, t).get("kind") == "restricted_product"
            ),
            what=f"{profile}'s restricted-product prompt, retained",
        )
        seen[profile] = {
            "notify": notifications(watcher, profile),
            "prompt": retained_json(watcher, prompt_topic),
            "state": retained_json(watcher, f"needlecare/profile/{profile}/state"),
        }
    # The delivered prompts, kept beside the test's other output for people to read.
    (tmp_path / "delivered.json").write_text(json.dumps(seen, ensure_ascii=False, indent=2))
    print(json.dumps({p: seen[p]["prompt"] for p in PEOPLE}, ensure_ascii=False, indent=2))
    assert daemon.alive()
    return seen


class TestEachPersonInTheirLanguage:
    def test_mirror_notifications_in_each_language(
        self, delivered: dict[str, dict[str, Any]]
    ) -> None:
        """Soothe and the restricted-product warning, worded for each person."""
        titles = {p: delivered[p]["notify"]["soothe"]["title"] for p in PEOPLE}
        assert {
            "alice": "Beruhige deine Haut",
            "bob": "Soothe your skin",
            "carol": "Apaisez votre peau",
        } == titles
        warning = {p: delivered[p]["notify"]["restricted_product"]["message"] for p in PEOPLE}
        assert warning["alice"].startswith("Night serum enthält Retinoide und Peelings; ")
        assert warning["bob"].startswith("Night serum contains retinoids and exfoliants; ")
        assert warning["carol"].startswith("Night serum contient des rétinoïdes et exfoliants ; ")

    def test_retained_prompt_in_each_language(self, delivered: dict[str, dict[str, Any]]) -> None:
        """Each profile's retained prompt is its own, in its language."""
        titles = {p: delivered[p]["prompt"]["title"] for p in PEOPLE}
        assert {
            "alice": "Night serum vorerst nicht verwenden",
            "bob": "Avoid Night serum for now",
            "carol": "Évitez Night serum pour le moment",
        } == titles

    def test_machine_values_identical_in_every_language(
        self, delivered: dict[str, dict[str, Any]]
    ) -> None:
        """Same keys, kinds, severities, actions; the state's status and restriction names."""
        shapes = {
            p: [
                (kind, sorted(body), [body[key] for key in MACHINE_KEYS[:3]])
                for kind, body in sorted(delivered[p]["notify"].items())
            ]
            for p in PEOPLE
        }
        assert shapes["bob"] == shapes["alice"] == shapes["carol"]
        prompts = {p: delivered[p]["prompt"] for p in PEOPLE}
        assert len({tuple(sorted(prompt)) for prompt in prompts.values()}) == 1
        assert {"warning"} == {prompt["severity"] for prompt in prompts.values()}
        states = {p: delivered[p]["state"] for p in PEOPLE}
        assert {"recovering"} == {state["status"] for state in states.values()}
        names = {p: [r["name"] for r in states[p]["restrictions"]] for p in PEOPLE}
        assert names["alice"] == names["bob"] == names["carol"] == ["actives_pause"]
        for p in PEOPLE:
            assert all(r["id"].startswith("rem_") for r in states[p]["open_prompts"])
