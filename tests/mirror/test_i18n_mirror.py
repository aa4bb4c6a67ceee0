"""MMM-Needlecare with two languages on one mirror: Alice reads German, Bob English.

The prompt's text comes from the daemon in the profile's language, and each entry's
buttons follow the same language (the state's ``language``), whatever MagicMirror's
own ``language`` is: on an English MagicMirror Alice's buttons read German, on a
German one Bob's read English. The buttons publish the same events in every language.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, expect

from mirror.conftest import MIRRORS, PROFILES, _running
from mirror.harness import DAEMON_PASSWORD, DAEMON_USER, Install, MagicMirror, MirrorStack
from mirror.harness import module_config as mirror_module
from mirror.test_mirror import entry, status_of, treat, wait_for_entry, wait_gone
from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonFactory
from support.mosquitto import MqttClientFactory, free_ports

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(params=["de", "en"], ids=["german-magicmirror", "english-magicmirror"])
def two_language_stack(  # noqa: PLR0917 (pytest passes fixtures by name)
    request: pytest.FixtureRequest,
    tmp_path: Path,
    mirror_install: Install,
    browser: Browser,
    auth_broker: MosquittoBroker,
    daemon_factory: DaemonFactory,
    mqtt_client_factory: MqttClientFactory,
) -> Iterator[MirrorStack]:
    """Alice reads German, Bob English (the default); MagicMirror itself is set to
    German, then English."""
    credentials = {"username": DAEMON_USER, "password": DAEMON_PASSWORD}
    profiles: dict[str, Any] = {**PROFILES, "alice": {**PROFILES["alice"], "language": "de"}}
    daemon = daemon_factory(
        auth_broker, mqtt=credentials, profiles=profiles, mirrors=MIRRORS
    ).start()
    publisher = mqtt_client_factory(auth_broker, username=DAEMON_USER, password=DAEMON_PASSWORD)
    magicmirror = MagicMirror(
        mirror_install, tmp_path, free_ports(1)[0], mirror_module(auth_broker)
    )
    magicmirror.language = request.param
    yield from _running(browser, MirrorStack(auth_broker, daemon, magicmirror, publisher))


def assert_buttons(item: Locator, done: str, snooze: str) -> None:
    """The entry's two buttons, exactly these words (waits for a redraw)."""
    expect(item.get_by_role("button")).to_have_text([done, snooze])
    expect(item.get_by_role("button", name=done, exact=True)).to_have_count(1)


class TestTwoLanguagesOnOneMirror:
    def test_each_person_reads_their_own_buttons_and_german_done_acks(
        self, two_language_stack: MirrorStack
    ) -> None:
        """Alice's soothe prompt reads German with Erledigt / Später, Bob's English with
        Done / Snooze, whichever language MagicMirror has; Alice's Erledigt acks hers
        and leaves Bob's."""
        stack = two_language_stack
        treat(stack, "alice")
        treat(stack, "bob")
        alice = wait_for_entry(stack, "alice", "soothe")
        bob = wait_for_entry(stack, "bob", "soothe")
        assert "Beruhige deine Haut" in alice["text"]
        assert "Deine Haut ist jetzt empfindlich." in alice["text"]
        assert "Soothe your skin" in bob["text"]
        assert (alice["kind"], alice["severity"]) == (bob["kind"], bob["severity"])
        alice_item, bob_item = entry(stack.page, alice["id"]), entry(stack.page, bob["id"])
        assert_buttons(alice_item, "Erledigt", "Später")
        assert_buttons(bob_item, "Done", "Snooze")
        assert ("de", "en") == (alice_item.get_attribute("lang"), bob_item.get_attribute("lang"))
        alice_item.get_by_role("button", name="Erledigt", exact=True).click()
        wait_gone(stack, alice["id"], timeout=10.0)
        assert "acked" == status_of(stack, alice["id"])
        assert "sent" == status_of(stack, bob["id"])
        assert_buttons(bob_item, "Done", "Snooze")
        assert [] == stack.console_errors
