"""MMM-Needlecare in German: a German profile on a MagicMirror set to German.

The prompt's text comes from the daemon in the profile's language; the module's
labels and buttons follow MagicMirror's ``language``. The English profile on the
same mirror keeps its English prompt, and the buttons publish the same events.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from mirror.conftest import MIRRORS, PROFILES, _running
from mirror.harness import DAEMON_PASSWORD, DAEMON_USER, Install, MagicMirror, MirrorStack
from mirror.harness import module_config as mirror_module
from mirror.test_mirror import entry, status_of, treat, wait_for_entry, wait_gone
from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonFactory
from support.mosquitto import MqttClientFactory, free_ports

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def german_stack(  # noqa: PLR0917 (pytest passes fixtures by name)
    tmp_path: Path,
    mirror_install: Install,
    browser: Browser,
    auth_broker: MosquittoBroker,
    daemon_factory: DaemonFactory,
    mqtt_client_factory: MqttClientFactory,
) -> Iterator[MirrorStack]:
    """Alice reads German, Bob English; MagicMirror itself is set to German."""
    credentials = {"username": DAEMON_USER, "password": DAEMON_PASSWORD}
    profiles: dict[str, Any] = {**PROFILES, "alice": {**PROFILES["alice"], "language": "de"}}
    daemon = daemon_factory(
        auth_broker, mqtt=credentials, profiles=profiles, mirrors=MIRRORS
    ).start()
    publisher = mqtt_client_factory(auth_broker, **credentials)
    magicmirror = MagicMirror(
        mirror_install, tmp_path, free_ports(1)[0], mirror_module(auth_broker)
    )
    magicmirror.language = "de"
    yield from _running(browser, MirrorStack(auth_broker, daemon, magicmirror, publisher))


class TestGermanMirror:
    def test_german_prompt_with_german_buttons_acks(self, german_stack: MirrorStack) -> None:
        """Alice's soothe prompt reads German with Erledigt / Später; Erledigt acks it.
        Bob's prompt on the same mirror stays English."""
        stack = german_stack
        treat(stack, "alice")
        treat(stack, "bob")
        alice = wait_for_entry(stack, "alice", "soothe")
        bob = wait_for_entry(stack, "bob", "soothe")
        assert "Beruhige deine Haut" in alice["text"]
        assert "Deine Haut ist jetzt empfindlich." in alice["text"]
        assert "Soothe your skin" in bob["text"]
        assert (alice["kind"], alice["severity"]) == (bob["kind"], bob["severity"])
        item = entry(stack.page, alice["id"])
        done = item.get_by_role("button", name="Erledigt", exact=True)
        assert 1 == done.count()
        assert 1 == item.get_by_role("button", name="Später", exact=True).count()
        done.click()
        wait_gone(stack, alice["id"], timeout=10.0)
        assert "acked" == status_of(stack, alice["id"])
        assert "sent" == status_of(stack, bob["id"])
        assert [] == stack.console_errors
