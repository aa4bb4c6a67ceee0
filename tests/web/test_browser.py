"""The pages in a real browser (Debian's Chromium via Playwright) against the real daemon."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from browser import Watched, launch, watched_page
from playwright.sync_api import Browser, expect
from test_api import publish

from conftest import TOKEN, WebDaemon
from support.daemon import wait_until

pytestmark = pytest.mark.integration

PAGES = ("", "timeline", "sessions", "skin", "dead-letters", "config", "api/docs")
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


@pytest.fixture
def tab(browser: Browser) -> Iterator[Watched]:
    watched = watched_page(browser, extra_http_headers=AUTH)
    yield watched
    watched.page.context.close()


def luminance(rgb: str) -> float:
    red, green, blue = (int(part) for part in rgb[rgb.index("(") + 1 : -1].split(",")[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


def background(watched: Watched) -> float:
    color: Any = watched.page.evaluate("getComputedStyle(document.body).backgroundColor")
    return luminance(str(color))


class TestOverview:
    def test_shows_each_profile(self, web: WebDaemon, tab: Watched) -> None:
        """One card per configured profile, with its status."""
        tab.page.goto(web.url + "/")
        for name in ("Alice", "Bob"):
            expect(tab.page.get_by_role("heading", name=name)).to_be_visible()
        expect(tab.page.locator("[data-profile]")).to_have_count(2)

    def test_done_acks_without_a_reload(self, web: WebDaemon, tab: Watched) -> None:
        """Done on a pending prompt acknowledges it; the page is never reloaded."""
        web.log_session("alice")
        prompt = web.wait_for_prompt("alice")
        tab.page.goto(web.url + "/")
        tab.page.evaluate("window.stayed = true")
        item = tab.page.locator(f'[data-reminder="{prompt["id"]}"]')
        item.get_by_role("button", name="Done").click()
        expect(item).to_have_count(0)
        wait_until(
            lambda: web.get("/api/v1/reminders?profile=alice&status=acked"),
            what="the ack in the journal",
        )
        acked = {r["id"] for r in web.get("/api/v1/reminders?profile=alice&status=acked")}
        assert prompt["id"] in acked
        assert tab.page.evaluate("window.stayed === true")

    def test_updates_live_after_an_ack_elsewhere(self, web: WebDaemon, tab: Watched) -> None:
        """An ack on the mirror (over MQTT) removes the prompt from an open page, no reload."""
        web.log_session("bob")
        prompt = web.wait_for_prompt("bob")
        tab.page.goto(web.url + "/")
        tab.page.evaluate("window.stayed = true")
        item = tab.page.locator(f'[data-reminder="{prompt["id"]}"]')
        expect(item).to_have_count(1)
        ack = {"type": "ack", "event_id": f"mirror-{prompt['id']}", "reminder_id": prompt["id"]}
        publish(web, "needlecare/mirror/hallway/event", ack)
        expect(item).to_have_count(0, timeout=10_000)
        assert tab.page.evaluate("window.stayed === true")

    def test_snooze_for_the_chosen_minutes(self, web: WebDaemon, tab: Watched) -> None:
        """Snooze with 2 h chosen: the prompt goes, the reminder is snoozed for 120 minutes."""
        web.log_session("bob")
        prompt = web.wait_for_prompt("bob")
        tab.page.goto(web.url + "/")
        item = tab.page.locator(f'[data-reminder="{prompt["id"]}"]')
        item.get_by_role("combobox").select_option("120")
        item.get_by_role("button", name="Snooze").click()
        expect(item).to_have_count(0)
        snoozed = {r["id"]: r for r in web.get("/api/v1/reminders?profile=bob&status=snoozed")}
        row = snoozed[prompt["id"]]
        due = datetime.fromisoformat(row["due_at"])
        assert timedelta(minutes=119) < due - datetime.fromisoformat(prompt["due_at"])

    def test_keyboard_reaches_done(self, web: WebDaemon, tab: Watched) -> None:
        """Done and Snooze are buttons with names, reachable with the Tab key."""
        web.log_session("alice")
        web.wait_for_prompt("alice")
        tab.page.goto(web.url + "/")
        expect(tab.page.get_by_role("button", name="Done").first).to_be_visible()
        for _ in range(40):
            tab.page.keyboard.press("Tab")
            if tab.page.evaluate("document.activeElement.textContent") == "Done":
                break
        assert "Done" == tab.page.evaluate("document.activeElement.textContent")


class TestEveryPage:
    def test_stays_on_its_origin_without_console_errors(self, web: WebDaemon, tab: Watched) -> None:
        """Every page: no request leaves the daemon's origin, no console error."""
        for path in PAGES:
            tab.page.goto(f"{web.url}/{path}")
            tab.page.wait_for_load_state("networkidle")
        assert [] == [url for url in tab.requests if not url.startswith(web.url + "/")]
        assert [] == tab.errors
        assert len(tab.requests) > len(PAGES)

    def test_no_horizontal_scroll_at_375_px(self, web: WebDaemon, browser: Browser) -> None:
        """A phone-sized viewport never scrolls sideways."""
        phone = watched_page(
            browser, viewport={"width": 375, "height": 812}, extra_http_headers=AUTH
        )
        try:
            for path in PAGES:
                phone.page.goto(f"{web.url}/{path}")
                phone.page.wait_for_load_state("networkidle")
                widths = phone.page.evaluate(
                    "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
                )
                assert widths[0] <= widths[1], (path, widths)
        finally:
            phone.page.context.close()

    def test_follows_the_system_dark_mode(self, web: WebDaemon, browser: Browser) -> None:
        """Dark when the system is dark, light when it is light."""
        dark = watched_page(browser, color_scheme="dark", extra_http_headers=AUTH)
        light = watched_page(browser, color_scheme="light", extra_http_headers=AUTH)
        try:
            for watched in (dark, light):
                watched.page.goto(web.url + "/")
            assert background(dark) < 0.2
            assert background(light) > 0.8
        finally:
            dark.page.context.close()
            light.page.context.close()

    def test_log_and_void_a_session_from_the_page(self, web: WebDaemon, tab: Watched) -> None:
        """The sessions page logs a session and voids it, through the API."""
        tab.page.goto(web.url + "/sessions")
        tab.page.get_by_label("Profile").select_option("bob")
        tab.page.get_by_label("Setting").select_option("professional")
        tab.page.get_by_role("button", name="Log session").click()
        expect(tab.page.locator("#status")).to_contain_text("Logged session")
        created = tab.page.locator("#status").inner_text().split()[-1].rstrip(".")
        tab.page.get_by_label(f"Reason to void {created}").fill("test entry")
        row = tab.page.locator("li", has_text=created)
        row.get_by_role("button", name="Void").click()
        expect(tab.page.locator("#status")).to_contain_text("Voided")
        statuses = {s["id"]: s["status"] for s in web.get("/api/v1/sessions?profile=bob")}
        assert "voided" == statuses[created]


UNNAMED = """() => {
  const named = (el) => (el.labels && el.labels.length) || el.getAttribute("aria-label")
    || el.getAttribute("aria-labelledby") || (el.textContent || "").trim();
  const wanted = "input:not([type=hidden]), select, textarea, button, a";
  const controls = [...document.querySelectorAll(wanted)];
  return controls.filter((el) => !named(el)).map((el) => el.outerHTML.slice(0, 80));
}"""


class TestAccessibility:
    def test_every_control_has_a_name(self, web: WebDaemon, tab: Watched) -> None:
        """Each page: a language, one h1, a skip link first, and no control without a name."""
        web.log_session("alice")
        web.wait_for_prompt("alice")
        for path in PAGES:
            tab.page.goto(f"{web.url}/{path}")
            tab.page.wait_for_load_state("networkidle")
            assert tab.page.evaluate("document.documentElement.lang"), path
            assert 1 == tab.page.locator("h1").count(), path
            assert [] == tab.page.evaluate(UNNAMED), path
            tab.page.keyboard.press("Tab")
            assert "Skip to content" == tab.page.evaluate("document.activeElement.textContent")


class TestLiveUpdates:
    def test_keyboard_focus_survives_an_update(self, web: WebDaemon, tab: Watched) -> None:
        """A change elsewhere re-renders the overview; focus stays on the same Done button."""
        web.log_session("alice")
        first = web.wait_for_prompt("alice")
        tab.page.goto(web.url + "/")
        card = tab.page.locator(f'[data-reminder="{first["id"]}"]')
        card.get_by_role("button", name="Done").focus()
        tab.page.evaluate("window.before = document.activeElement")
        web.log_session("bob")  # another profile's card changes: the page renders again
        wait_until(lambda: not tab.page.evaluate("window.before.isConnected"), what="a re-render")
        assert first["id"] == tab.page.evaluate(
            "document.activeElement.closest('[data-reminder]')?.dataset.reminder"
        )
        assert "Done" == tab.page.evaluate("document.activeElement.textContent")
