"""The web app in a real browser with one profile switched to German.

The frame (navigation, footer) follows the browser's language; each profile's card
follows the profile's, as its prompts do. Machine values (data attributes, status
classes, the API's JSON) are the same whatever the language.
"""

from collections.abc import Iterator
from typing import Any

import pytest
from browser import Watched, launch, watched_page
from playwright.sync_api import Browser, expect

from conftest import PROFILES, QUIET_PROTOCOL, TOKEN, WebDaemon, stop
from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonProcess, wait_until
from support.mosquitto import free_port

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def web_de(
    tmp_path_factory: pytest.TempPathFactory, module_broker: MosquittoBroker
) -> Iterator[WebDaemon]:
    """Alice reads German, Bob English; each has a soothe prompt waiting."""
    port = free_port()
    profiles: dict[str, Any] = {**PROFILES, "alice": {**PROFILES["alice"], "language": "de"}}
    daemon = DaemonProcess(
        tmp_path_factory.mktemp("web-de"),
        module_broker,
        {
            "profiles": profiles,
            "protocol": QUIET_PROTOCOL,
            "web": {"enabled": True, "port": port, "token": TOKEN},
        },
    )
    daemon.start()
    wait_until(lambda: daemon.log_count("web_started") > 0 or not daemon.alive(), what="web")
    running = WebDaemon(daemon, port, TOKEN)
    for profile in ("alice", "bob"):
        running.log_session(profile)
        running.wait_for_prompt(profile)
    yield running
    stop(running)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


def tab_in(browser: Browser, language: str) -> Watched:
    return watched_page(browser, extra_http_headers={**AUTH, "Accept-Language": language})


class TestCardsInTheProfileLanguage:
    def test_german_card_beside_an_english_one(self, web_de: WebDaemon, browser: Browser) -> None:
        """Alice's card: German labels, prompt and buttons; Bob's stays English."""
        tab = tab_in(browser, "en-US,en;q=0.9")
        try:
            tab.page.goto(web_de.url + "/")
            alice = tab.page.locator('[data-profile="alice"]')
            bob = tab.page.locator('[data-profile="bob"]')
            expect(alice).to_have_attribute("lang", "de")
            expect(alice.locator("dt").first).to_have_text("Erholungstag")
            expect(alice.locator(".badge.recovering")).to_have_text("in Erholung")
            expect(alice.get_by_text("Beruhige deine Haut")).to_be_visible()
            expect(alice.get_by_role("button", name="Erledigt")).to_be_visible()
            expect(alice.get_by_role("button", name="Später")).to_be_visible()
            expect(bob.locator("dt").first).to_have_text("Recovery day")
            expect(bob.get_by_text("Soothe your skin")).to_be_visible()
            expect(bob.get_by_role("button", name="Done")).to_be_visible()
            expect(tab.page.locator("nav a").first).to_have_text("Overview")
            assert [] == tab.errors
        finally:
            tab.page.context.close()

    def test_erledigt_acknowledges_like_done(self, web_de: WebDaemon, browser: Browser) -> None:
        """The German button acks the same reminder, through the same API."""
        prompt = web_de.wait_for_prompt("alice")
        tab = tab_in(browser, "en")
        try:
            tab.page.goto(web_de.url + "/")
            item = tab.page.locator(f'[data-reminder="{prompt["id"]}"]')
            item.get_by_role("button", name="Erledigt").click()
            expect(item).to_have_count(0)
            expect(tab.page.locator("#status")).to_have_text("Erledigt: überall bestätigt.")
            wait_until(
                lambda: (
                    prompt["id"]
                    in {r["id"] for r in web_de.get("/api/v1/reminders?profile=alice&status=acked")}
                ),
                what="the ack in the journal",
            )
        finally:
            tab.page.context.close()


class TestFrameInTheBrowserLanguage:
    def test_german_browser_gets_a_german_frame(self, web_de: WebDaemon, browser: Browser) -> None:
        """Accept-Language de: <html lang="de">, German navigation and footer."""
        tab = tab_in(browser, "de-DE,de;q=0.9")
        try:
            tab.page.goto(web_de.url + "/")
            expect(tab.page.locator("html")).to_have_attribute("lang", "de")
            expect(tab.page.locator("nav a").first).to_have_text("Übersicht")
            expect(tab.page.locator("footer")).to_contain_text("keine medizinische Beratung")
            expect(tab.page.locator('[data-profile="bob"] dt').first).to_have_text("Recovery day")
            assert [] == tab.errors
        finally:
            tab.page.context.close()

    def test_api_json_is_the_same_in_every_language(self, web_de: WebDaemon) -> None:
        """The profiles API keeps its keys and machine values; only texts are German."""
        states = {s["profile"]: s for s in web_de.get("/api/v1/profiles")}
        assert sorted(states["alice"]) == sorted(states["bob"])
        assert states["alice"]["status"] == states["bob"]["status"]
        assert [r["name"] for r in states["alice"]["restrictions"]] == [
            r["name"] for r in states["bob"]["restrictions"]
        ]


class TestOtherPagesInTheBrowserLanguage:
    def test_log_a_session_from_the_german_page(self, web_de: WebDaemon, browser: Browser) -> None:
        """The sessions page in German logs a session through the same API."""
        tab = tab_in(browser, "de")
        try:
            tab.page.goto(web_de.url + "/sessions")
            expect(tab.page.locator("h1")).to_have_text("Behandlungen")
            tab.page.get_by_label("Profil").select_option("bob")
            tab.page.get_by_label("Rahmen").select_option("professional")
            tab.page.get_by_role("button", name="Behandlung eintragen").click()
            expect(tab.page.locator("#status")).to_contain_text("eingetragen")
            created = tab.page.locator("#status").inner_text().split()[1]
            logged = {s["id"]: s for s in web_de.get("/api/v1/sessions?profile=bob")}
            assert "professional" == logged[created]["setting"]
            assert [] == tab.errors
        finally:
            tab.page.context.close()
