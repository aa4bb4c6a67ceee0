"""MMM-Needlecare on a real MagicMirror² 2.36.0, seen through Chromium.

Each test runs its own Mosquitto (with accounts), daemon and MagicMirror, set up as
deploy/magicmirror/MMM-Needlecare/README.md says; the page is driven by Playwright.
"""

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page

from mirror.conftest import MIRRORS, PROFILES, _running
from mirror.harness import (
    CONNECTED,
    DAEMON_PASSWORD,
    DAEMON_USER,
    MIRROR_ID,
    MIRROR_PASSWORD,
    Install,
    MagicMirror,
    MirrorStack,
    module_config,
)
from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonFactory, wait_until
from support.mosquitto import MqttClientFactory, free_ports

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PENS = {"alice": "needlecare/device/pen1/event", "bob": "needlecare/device/pen2/event"}
MIRROR_EVENTS = f"needlecare/mirror/{MIRROR_ID}/event"
NOTIFY = f"needlecare/mirror/{MIRROR_ID}/notify"
OPEN = {"sent", "late"}
ANSWERED_WITHIN_S = 2.0  # the deadline for an answer from another channel
BROKER_RETURN_S = 10.0  # the deadline for the mirror after a broker restart
SESSION_RESUMED = f"{CONNECTED} (session present: true)"
STARTING = "Starting MagicMirror"
BROKER_GONE = f"mirror {MIRROR_ID}: connection lost"
HOSTILE = (
    '<img src=x onerror="window.__pwned=1">Night <b>serum</b><script>window.__pwned=2</script>'
)


def treat(stack: MirrorStack, profile: str, n: int = 1) -> None:
    """A home session on the profile's pen: start, then end after ten minutes."""
    topic = PENS[profile]
    stack.publish(topic, {"event_id": f"{profile}-s{n}", "type": "session_started"})
    stack.publish(
        topic, {"event_id": f"{profile}-e{n}", "type": "session_ended", "duration_s": 600}
    )


def shown(page: Page) -> list[dict[str, str]]:
    """The prompt entries on the page, in screen order."""
    return list(
        page.eval_on_selector_all(
            "li.needlecare-prompt",
            """items => items.map(item => ({
                id: item.dataset.reminderId, profile: item.dataset.profile,
                kind: item.dataset.kind, severity: item.dataset.severity,
                name: item.querySelector('.needlecare-name').textContent,
                text: item.textContent}))""",
        )
    )


def reminders(stack: MirrorStack) -> list[dict[str, Any]]:
    return list(json.loads(stack.daemon.cli("reminders", "--json").stdout))


def open_ids(stack: MirrorStack) -> list[str]:
    """The reminders delivered and not answered, as the daemon's CLI lists them."""
    return sorted(r["id"] for r in reminders(stack) if r["status"] in OPEN)


def status_of(stack: MirrorStack, reminder_id: str) -> str:
    return next(str(r["status"]) for r in reminders(stack) if r["id"] == reminder_id)


def wait_for_entry(stack: MirrorStack, profile: str, kind: str) -> dict[str, str]:
    def find() -> dict[str, str] | None:
        return next(
            (e for e in shown(stack.page) if (e["profile"], e["kind"]) == (profile, kind)), None
        )

    wait_until(lambda: find() is not None, what=f"{profile}'s {kind} prompt on the mirror")
    found = find()
    assert found is not None
    return found


def entry(page: Page, reminder_id: str) -> Locator:
    return page.locator(f'li.needlecare-prompt[data-reminder-id="{reminder_id}"]')


def wait_gone(stack: MirrorStack, reminder_id: str, timeout: float) -> None:
    wait_until(
        lambda: reminder_id not in [e["id"] for e in shown(stack.page)],
        timeout=timeout,
        what=f"{reminder_id} to leave the mirror",
    )


def wait_exactly_open(stack: MirrorStack, timeout: float = 15.0) -> None:
    """Wait until the page shows each open reminder once, and nothing else."""

    def matches() -> bool:
        ids = [e["id"] for e in shown(stack.page)]
        return len(ids) == len(set(ids)) and sorted(ids) == open_ids(stack)

    wait_until(
        matches,
        timeout=timeout,
        what=lambda: f"page {shown(stack.page)} to equal the open reminders {open_ids(stack)}",
    )


def close_alert(stack: MirrorStack) -> None:
    """Tap MagicMirror's modal alert, which closes it (and only it), and wait until it is gone."""
    stack.page.locator(".ns-alert.ns-show").click()
    wait_until(
        lambda: 0 == stack.page.locator(".ns-alert, .alert-blur").count(),
        what="the alert and its blur to go",
    )


def assert_no_console_errors(stack: MirrorStack) -> None:
    assert [] == stack.console_errors


def screenshot(stack: MirrorStack, name: str, tmp_path: Path, *, whole: bool = False) -> None:
    """Keep a screenshot of the module's region (or the whole page); with
    NEEDLECARE_SCREENSHOTS set, also copy it there (docs/images)."""
    path = tmp_path / name
    if whole:
        stack.page.screenshot(path=str(path))
    else:
        stack.page.locator(".region.bottom.bar").screenshot(path=str(path))
    target = os.environ.get("NEEDLECARE_SCREENSHOTS")
    if target:
        shutil.copy(path, Path(target) / name)


class TestAPrompt:
    def test_soothe_appears_with_the_name_and_done_acknowledges_it(
        self, stack: MirrorStack, tmp_path: Path
    ) -> None:
        """After a session the soothe prompt shows with Alice's name and real Done /
        Snooze buttons; the modal alert shows it as text; Done acks it and it goes."""
        treat(stack, "alice")
        soothe = wait_for_entry(stack, "alice", "soothe")
        assert ("Alice", "warning") == (soothe["name"], soothe["severity"])
        assert "Soothe your skin" in soothe["text"]
        item = entry(stack.page, soothe["id"])
        done = item.get_by_role("button", name="Done", exact=True)
        snooze = item.get_by_role("button", name="Snooze", exact=True)
        assert (1, 1) == (done.count(), snooze.count())
        box = done.bounding_box()
        assert box is not None
        assert box["height"] >= 48
        alert = stack.page.locator(".ns-alert.ns-show")
        alert.wait_for(state="visible")
        assert "Alice: Soothe your skin" in alert.inner_text()
        screenshot(stack, "mirror-alert.png", tmp_path, whole=True)
        close_alert(stack)
        assert soothe == wait_for_entry(stack, "alice", "soothe")  # the tap answered nothing
        screenshot(stack, "mirror-prompt.png", tmp_path)
        done.click()
        wait_gone(stack, soothe["id"], timeout=10.0)
        assert "acked" == status_of(stack, soothe["id"])
        assert_no_console_errors(stack)

    def test_snooze_snoozes_it(self, stack: MirrorStack) -> None:
        """Snooze publishes a snooze for the configured 30 minutes; the prompt goes until then."""
        treat(stack, "alice")
        soothe = wait_for_entry(stack, "alice", "soothe")
        before = next(r for r in reminders(stack) if r["id"] == soothe["id"])
        entry(stack.page, soothe["id"]).get_by_role("button", name="Snooze").click()
        wait_gone(stack, soothe["id"], timeout=10.0)
        after = next(r for r in reminders(stack) if r["id"] == soothe["id"])
        assert "snoozed" == after["status"]
        assert before["due_at"] != after["due_at"]
        assert_no_console_errors(stack)

    def test_an_ack_from_another_channel_removes_it_within_2_s(self, stack: MirrorStack) -> None:
        """`needlecare ack` (the CLI, through the daemon) clears the entry on the mirror,
        and the modal alert that showed it closes."""
        treat(stack, "alice")
        soothe = wait_for_entry(stack, "alice", "soothe")
        alert = stack.page.locator(".ns-alert.ns-show")
        alert.wait_for(state="visible")
        stack.daemon.cli("ack", soothe["id"])
        wait_gone(stack, soothe["id"], timeout=ANSWERED_WITHIN_S)
        wait_until(lambda: 0 == alert.count(), what="the alert to close with its prompt")
        assert "acked" == status_of(stack, soothe["id"])
        wait_exactly_open(stack)
        assert_no_console_errors(stack)


class TestHostileText:
    def test_a_product_name_with_html_and_script_shows_literally_and_runs_nothing(
        self, stack: MirrorStack
    ) -> None:
        """A restricted product whose name holds markup: the entry and the alert show the
        characters, no element is made from them, no script runs, nothing is fetched."""
        fetched: list[str] = []
        stack.page.on("request", lambda request: fetched.append(request.url))
        treat(stack, "alice")
        wait_for_entry(stack, "alice", "soothe")
        stack.publish(
            MIRROR_EVENTS,
            {
                "event_id": "hall-product-1",
                "type": "product_applied",
                "profile": "alice",
                "product": HOSTILE,
                "ingredients": ["retinol"],
            },
        )
        product = wait_for_entry(stack, "alice", "restricted_product")
        assert HOSTILE in product["text"]
        alert = stack.page.locator(".ns-alert.ns-show")
        wait_until(lambda: HOSTILE in alert.inner_text(), what="the alert with the product")
        injected = stack.page.locator(".needlecare img, .needlecare b, .needlecare script")
        assert (0, 0) == (injected.count(), alert.locator("img, b, script").count())
        assert None is stack.page.evaluate("window.__pwned")
        assert [] == [url for url in fetched if url.rstrip("/").endswith("/x")]
        assert_no_console_errors(stack)


class TestSeveralPeople:
    def test_two_people_are_both_shown_and_labelled(
        self, stack: MirrorStack, tmp_path: Path
    ) -> None:
        """Alice's and Bob's prompts are all on screen, each entry with its person's name;
        warnings before information."""
        treat(stack, "alice")
        treat(stack, "bob")
        wait_exactly_open(stack)
        entries = shown(stack.page)
        assert {"alice", "bob"} == {e["profile"] for e in entries}
        assert all(e["name"] == {"alice": "Alice", "bob": "Bob"}[e["profile"]] for e in entries)
        for person in ("alice", "bob"):
            soothe = wait_for_entry(stack, person, "soothe")
            assert entry(stack.page, soothe["id"]).is_visible()
        ranks = [{"critical": 2, "warning": 1, "info": 0}[e["severity"]] for e in entries]
        assert sorted(ranks, reverse=True) == ranks
        close_alert(stack)
        assert [e["id"] for e in entries] == [e["id"] for e in shown(stack.page)]
        screenshot(stack, "mirror-two-people.png", tmp_path)
        assert_no_console_errors(stack)

    def test_repeated_presence_never_duplicates_an_entry(
        self, stack: MirrorStack, mqtt_client_factory: MqttClientFactory
    ) -> None:
        """Presence from MQTT and NEEDLECARE_PRESENCE relayed by the module re-send the
        prompts to the mirror; each entry stays on screen once."""
        watcher = mqtt_client_factory(stack.broker, username=DAEMON_USER, password=DAEMON_PASSWORD)
        watcher.subscribe(MIRROR_EVENTS)
        watcher.subscribe(NOTIFY)
        treat(stack, "alice")
        wait_exactly_open(stack)
        before = shown(stack.page)
        for n in range(3):
            stack.publish(
                MIRROR_EVENTS, {"event_id": f"pir-{n}", "type": "presence", "profile": "alice"}
            )
            stack.page.evaluate(
                """() => MM.sendNotification("NEEDLECARE_PRESENCE", {profile: "alice"},
                    MM.getModules().withClass("alert")[0])"""
            )
        relayed = watcher.received.wait_for(
            lambda got: 6 <= sum(1 for m in got if _is_presence(m.payload))
        )
        ids = [json.loads(m.payload)["event_id"] for m in relayed if _is_presence(m.payload)]
        assert len(ids) == len(set(ids))
        # Every presence re-shows the open prompts: more notifications than prompts.
        watcher.received.wait_for(
            lambda got: sum(1 for m in got if m.topic == NOTIFY) >= 6 * len(before)
        )
        wait_exactly_open(stack)
        assert before == shown(stack.page)
        assert_no_console_errors(stack)


def _is_presence(payload: bytes) -> bool:
    try:
        return bool(json.loads(payload).get("type") == "presence")
    except ValueError:
        return False


class TestTheTruthAfterInterruptions:
    def test_a_page_reload_shows_exactly_the_open_prompts(self, stack: MirrorStack) -> None:
        """Two people, one prompt answered: after a reload the page lists exactly the
        open ones, once each."""
        treat(stack, "alice")
        treat(stack, "bob")
        wait_exactly_open(stack)
        soothe = wait_for_entry(stack, "bob", "soothe")
        stack.daemon.cli("ack", soothe["id"])
        wait_gone(stack, soothe["id"], timeout=ANSWERED_WITHIN_S)
        stack.page.reload()
        stack.page.locator("li.needlecare-prompt").first.wait_for()
        wait_exactly_open(stack)
        assert soothe["id"] not in [e["id"] for e in shown(stack.page)]
        assert_no_console_errors(stack)

    def test_a_magicmirror_restart_ends_with_exactly_the_open_prompts(
        self, stack: MirrorStack
    ) -> None:
        """While MagicMirror is down Alice's soothe is acked and Bob has a session: the
        open page, reconnected to the restarted MagicMirror, shows exactly what is open."""
        treat(stack, "alice")
        soothe = wait_for_entry(stack, "alice", "soothe")
        stack.magicmirror.stop()
        stack.daemon.cli("ack", soothe["id"])
        treat(stack, "bob")
        wait_until(
            lambda: "sent" in {r["status"] for r in reminders(stack) if r["profile"] == "bob"}
        )
        stack.magicmirror.start()
        # The same client id found its persistent session on the broker.
        assert SESSION_RESUMED in stack.magicmirror.log_text().split(STARTING)[-1]
        wait_exactly_open(stack, timeout=30.0)
        assert {"alice", "bob"} == {e["profile"] for e in shown(stack.page)}
        assert soothe["id"] not in [e["id"] for e in shown(stack.page)]
        # Only the page's own reconnection attempts while MagicMirror was down.
        assert [] == [e for e in stack.console_errors if "ERR_CONNECTION_REFUSED" not in e]

    def test_a_broker_restart_ends_with_exactly_the_open_prompts_within_10_s(
        self, stack: MirrorStack
    ) -> None:
        """The broker stops and returns: the module is connected again within 10 s and the
        page shows exactly the open prompts. Done pressed while the broker was away is
        sent when it returns; an ack from the CLI after that still clears its entry."""
        treat(stack, "alice")
        treat(stack, "bob")
        wait_exactly_open(stack)
        pressed = wait_for_entry(stack, "bob", "actives_pause")
        connections = stack.magicmirror.log_text().count(CONNECTED)
        daemon_connections = stack.daemon.log_count("mqtt_connected")
        stack.broker.stop()
        stack.page.locator(".needlecare-status").wait_for(state="visible")
        entry(stack.page, pressed["id"]).get_by_role("button", name="Done").click()
        stack.broker.start()
        wait_until(
            lambda: stack.magicmirror.log_text().count(CONNECTED) > connections,
            timeout=BROKER_RETURN_S,
            what="the module to reconnect",
        )
        wait_until(
            lambda: 0 == stack.page.locator(".needlecare-status").count(),
            timeout=BROKER_RETURN_S,
            what="the page to show the mirror connected again",
        )
        wait_exactly_open(stack, timeout=BROKER_RETURN_S)
        assert SESSION_RESUMED in stack.magicmirror.log_text().split(BROKER_GONE)[-1]
        # The daemon has its own back-off; once it is back, the held press arrives.
        wait_until(lambda: stack.daemon.log_count("mqtt_connected") > daemon_connections)
        wait_until(lambda: "acked" == status_of(stack, pressed["id"]), what="the held press")
        wait_gone(stack, pressed["id"], timeout=ANSWERED_WITHIN_S)
        soothe = wait_for_entry(stack, "alice", "soothe")
        stack.daemon.cli("ack", soothe["id"])
        wait_gone(stack, soothe["id"], timeout=ANSWERED_WITHIN_S)
        wait_exactly_open(stack)
        assert_no_console_errors(stack)


class TestTls:
    def test_mqtts_with_a_private_ca_and_a_client_certificate(self, tls_stack: MirrorStack) -> None:
        """With `mqtts://`, `ca`, `cert` and `key` the module connects over TLS, shows the
        prompt and its Done acks it."""
        treat(tls_stack, "alice")
        soothe = wait_for_entry(tls_stack, "alice", "soothe")
        close_alert(tls_stack)
        entry(tls_stack.page, soothe["id"]).get_by_role("button", name="Done").click()
        wait_gone(tls_stack, soothe["id"], timeout=10.0)
        assert "acked" == status_of(tls_stack, soothe["id"])
        assert_no_console_errors(tls_stack)


class SecretsMirror(MagicMirror):
    """MagicMirror with `hideConfigSecrets: true`, as the module's README advises."""

    def write_config(self) -> None:
        super().write_config()
        text = self.config_path.read_text(encoding="utf-8")
        # MagicMirror looks for this exact line (unquoted key) before it redacts.
        text = text.replace("let config = {\n", "let config = {\n  hideConfigSecrets: true,\n", 1)
        self.config_path.write_text(text, encoding="utf-8")


@pytest.fixture
def secrets_stack(  # noqa: PLR0917 (pytest passes fixtures by name)
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mirror_install: Install,
    browser: Browser,
    auth_broker: MosquittoBroker,
    daemon_factory: DaemonFactory,
    mqtt_client_factory: MqttClientFactory,
) -> Iterator[MirrorStack]:
    """The usual stack, the mirror's password given as ${SECRET_NEEDLECARE_PASSWORD}."""
    credentials = {"username": DAEMON_USER, "password": DAEMON_PASSWORD}
    daemon = daemon_factory(
        auth_broker, mqtt=credentials, profiles=PROFILES, mirrors=MIRRORS
    ).start()
    publisher = mqtt_client_factory(auth_broker, **credentials)
    monkeypatch.setenv("SECRET_NEEDLECARE_PASSWORD", MIRROR_PASSWORD)
    module = {**module_config(auth_broker), "password": "${SECRET_NEEDLECARE_PASSWORD}"}
    magicmirror = SecretsMirror(mirror_install, tmp_path, free_ports(1)[0], module)
    yield from _running(browser, MirrorStack(auth_broker, daemon, magicmirror, publisher))


def _served(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
        return str(response.read().decode("utf-8"))


class TestSecrets:
    def test_the_password_stays_on_the_server(self, secrets_stack: MirrorStack) -> None:
        """With hideConfigSecrets and the password from the environment, the module logs
        in (the broker refuses anyone else) and shows prompts, while the page, the config
        MagicMirror serves, its config file and its log never hold the password."""
        stack = secrets_stack
        treat(stack, "alice")
        wait_for_entry(stack, "alice", "soothe")
        mirror = stack.magicmirror
        page_config = str(stack.page.evaluate("JSON.stringify(config)"))
        served_config = _served(f"{mirror.url}config/")
        served_file = _served(f"{mirror.url}config/{mirror.config_path.name}")
        assert "**SECRET_NEEDLECARE_PASSWORD**" in page_config
        for seen in (page_config, served_config, served_file, mirror.log_text()):
            assert MIRROR_PASSWORD not in seen
        assert_no_console_errors(stack)
