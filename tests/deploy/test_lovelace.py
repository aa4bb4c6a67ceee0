"""The Lovelace card: only entities discovery creates, and against a real Home Assistant."""

import json
import re
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from needlecare.app.discovery import profile_entities
from needlecare.domain.topics import Topics
from support.daemon import DaemonProcess, wait_until
from support.deploy import (
    CARD,
    TIMEOUT,
    load_yaml,
)

pytestmark = pytest.mark.integration


# --- Lovelace ----------------------------------------------------------------------

ENTITY_ID = re.compile(r"\b(?:sensor|binary_sensor|button)\.needlecare_[a-z0-9_]+")


def discovered_entity_ids(profile: str) -> set[str]:
    """``<component>.<object_id>`` of every entity the discovery code makes for profile."""
    ids = set()
    for topic, config in profile_entities(Topics(), profile, None):
        component = topic.split("/")[1]
        ids.add(f"{component}.{config['object_id']}")
    return ids


# Timestamp sensors without a value are unavailable (not 'unknown'): no session yet.
NULL_TIMESTAMPS = ("_last_session", "_next_window_start", "_next_window_end")


def card_entity_ids(card_text: str) -> set[str]:
    return set(ENTITY_ID.findall(card_text))


def test_lovelace_card_uses_only_entities_the_discovery_code_creates() -> None:
    """Every entity id in the card is one discovery makes for profile ``alice``; the card
    shows status, recovery day, next window, actives restricted, open prompts and both
    buttons, and lists the prompts from the open_prompts sensor's ``prompts`` attribute."""
    text = CARD.read_text(encoding="utf-8")
    used = card_entity_ids(text)
    made = discovered_entity_ids("alice")
    assert set() == used - made
    for object_id in (
        "sensor.needlecare_alice_status",
        "sensor.needlecare_alice_recovery_day",
        "sensor.needlecare_alice_next_window_start",
        "binary_sensor.needlecare_alice_actives_restricted",
        "sensor.needlecare_alice_open_prompts",
        "button.needlecare_alice_acknowledge_all",
        "button.needlecare_alice_log_professional_session",
    ):
        assert object_id in used
    card = load_yaml(CARD)
    rows = {row["entity"] for row in card["cards"][0]["entities"] if "entity" in row}
    assert rows <= made
    attributes = next(
        c["json_attributes_template"]
        for t, c in profile_entities(Topics(), "alice", None)
        if t.endswith("/open_prompts/config")
    )
    assert "'prompts'" in attributes
    assert "state_attr('sensor.needlecare_alice_open_prompts', 'prompts')" in text


def render_template(url: str, token: str, template: str) -> str:
    """Home Assistant's /api/template (plain text, so not through the JSON helper)."""
    request = urllib.request.Request(  # noqa: S310 (http on loopback)
        f"{url}/api/template",
        data=json.dumps({"template": template}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=TIMEOUT) as response:
        return str(response.read().decode("utf-8"))


@pytest.mark.e2e
def test_lovelace_card_works_against_a_real_home_assistant(
    homeassistant: Any,
    ha_mosquitto: Any,
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    """With a real daemon feeding each tested Home Assistant: every entity of the card
    exists and is available (the timestamps once a session gave them a value: until
    then they are unavailable, see docs/homeassistant.md), the markdown card's template
    renders the open prompts' titles, and the card's Acknowledge-all button empties
    them (hiding the conditional card).

    The card is for ``alice``; the test uses a profile of its own (the shared Home
    Assistant serves other tests too), replacing ``needlecare_alice_`` in the card.
    """
    profile = f"card{uuid.uuid4().hex[:8]}"
    text = CARD.read_text(encoding="utf-8").replace("needlecare_alice_", f"needlecare_{profile}_")
    card = yaml.safe_load(text)
    daemon = daemon_factory(
        ha_mosquitto,
        mqtt={"client_id": f"needlecare-{profile}", "session_expiry_s": 60},
        homeassistant={"url": homeassistant.url, "token": homeassistant.token},
        profiles={profile: {"timezone": "Europe/Berlin"}},
        devices={f"pen_{profile}": {"owner": profile}},
    ).start()
    entities = card_entity_ids(text)

    def available(*, before_a_session: bool = False) -> bool:
        valued = {e for e in entities if before_a_session and e.endswith(NULL_TIMESTAMPS)}
        states = [homeassistant.state(e) for e in entities - valued]
        return all(s is not None and s["state"] != "unavailable" for s in states)

    wait_until(
        lambda: available(before_a_session=True),
        timeout=60,
        what=f"the card's entities {sorted(entities)}",
    )
    prompts_sensor = f"sensor.needlecare_{profile}_open_prompts"
    assert "0" == homeassistant.state(prompts_sensor)["state"]

    daemon.cli("log-session", "--profile", profile)
    wait_until(
        lambda: homeassistant.state(prompts_sensor)["state"] not in {"0", "unavailable"},
        timeout=60,
        what="open prompts after a session",
    )
    wait_until(available, timeout=60, what=f"the card's entities {sorted(entities)}")
    prompts = homeassistant.state(prompts_sensor)["attributes"]["prompts"]
    assert prompts
    markdown = card["cards"][1]["card"]["content"]
    rendered = render_template(homeassistant.url, homeassistant.token, markdown)
    for prompt in prompts:
        assert f"**{prompt['title']}** (due " in rendered
    assert len(prompts) == rendered.count("\n- ") + rendered.startswith("- ")

    ack_all = next(e for e in entities if e.endswith("_acknowledge_all"))
    homeassistant.call_service("button", "press", {"entity_id": ack_all})
    wait_until(
        lambda: homeassistant.state(prompts_sensor)["state"] == "0",
        timeout=60,
        what="no open prompts after Acknowledge all",
    )
    assert 0 == daemon.stop()
