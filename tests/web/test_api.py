"""The JSON API against the real daemon and a real Mosquitto: auth, reads, writes, errors."""

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import TOKEN, WebDaemon, publish, start_web_daemon, stop
from needlecare.config import MqttConfig
from needlecare_integrations.broker import MosquittoBroker
from needlecare_integrations.mqtt.oneshot import publish_all
from support.daemon import DaemonProcess, wait_until
from support.mosquitto import MqttClientFactory

pytestmark = pytest.mark.integration


class TestAuth:
    def test_health_needs_no_token(self, web: WebDaemon) -> None:
        """GET /api/v1/health answers without a token, with the fields monitoring reads."""
        health = web.get("/api/v1/health", token=None)
        assert {"status", "mqtt", "store", "homeassistant", "version"} == set(health)
        assert ("ok", "connected", "ok") == (health["status"], health["mqtt"], health["store"])

    @pytest.mark.parametrize("token", [None, "wrong-token", ""])
    def test_api_without_the_right_token_is_401(self, web: WebDaemon, token: str | None) -> None:
        """A missing, wrong or empty bearer token gets 401 with a JSON body."""
        for path in ("/api/v1/profiles", "/api/v1/reminders", "/api/openapi.json"):
            answer = web.call("GET", path, token=token)
            assert (401, "Bearer") == (answer.status, answer.headers.get("www-authenticate"))
            assert "detail" in answer.json()

    def test_writes_without_token_are_401_and_change_nothing(self, web: WebDaemon) -> None:
        """A POST without the token is refused before it reaches the core."""
        before = len(web.get("/api/v1/sessions?profile=bob"))
        answer = web.call("POST", "/api/v1/sessions", {"profile": "bob"}, token=None)
        assert 401 == answer.status
        assert before == len(web.get("/api/v1/sessions?profile=bob"))

    def test_page_without_token_goes_to_the_login_form(self, web: WebDaemon) -> None:
        """A page asks for the token with a login form; the form sets a session cookie."""
        answer = web.call("GET", "/timeline", token=None)
        assert (303, "/login?next=/timeline") == (answer.status, answer.headers["location"])
        wrong = web.call("POST", "/login", token=None, raw=b"token=nope&next=/timeline")
        assert (303, "login?failed=1") == (wrong.status, wrong.headers["location"])
        right = web.call("POST", "/login", token=None, raw=f"token={TOKEN}&next=/timeline".encode())
        assert (303, "/timeline") == (right.status, right.headers["location"])
        cookie = right.headers["set-cookie"].split(";")[0]
        assert TOKEN not in cookie
        page = web.call("GET", "/timeline", token=None, headers={"Cookie": cookie})
        assert 200 == page.status
        api = web.call("GET", "/api/v1/profiles", token=None, headers={"Cookie": cookie})
        assert 200 == api.status

    def test_login_does_not_redirect_elsewhere(self, web: WebDaemon) -> None:
        """``next`` must be a path on this server, not another site."""
        answer = web.call("POST", "/login", token=None, raw=f"token={TOKEN}&next=//evil".encode())
        assert "/" == answer.headers["location"]

    def test_token_never_reaches_the_log(self, web: WebDaemon) -> None:
        """Right and wrong tokens, in headers and the login form: none is logged."""
        web.call("GET", "/api/v1/profiles")
        web.call("GET", "/api/v1/profiles", token="wrong-token-in-log?")
        web.call("POST", "/login", token=None, raw=f"token={TOKEN}".encode())
        text = web.daemon.log_text()
        assert TOKEN not in text
        assert "wrong-token-in-log?" not in text

    def test_config_errors_mask_the_token(self, tmp_path: Path) -> None:
        """A broken web section with the token from the environment never prints the token."""
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump({"web": {"enabled": True, "port": "eighty", "host": "::"}}))
        secret = "s3cret-web-token-for-the-mask-test"
        result = subprocess.run(
            [sys.executable, "-m", "needlecare", "check-config", "-c", str(path)],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "NEEDLECARE_WEB__TOKEN": secret},
        )
        assert 1 == result.returncode
        assert "web.port" in result.stdout + result.stderr
        assert secret not in result.stdout + result.stderr

    def test_check_config_rejects_exposed_host_without_token(self, tmp_path: Path) -> None:
        """A non-loopback host without a token is a config error naming web.token."""
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump({"web": {"enabled": True, "host": "0.0.0.0"}}))
        result = subprocess.run(
            [sys.executable, "-m", "needlecare", "check-config", "-c", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert 1 == result.returncode
        assert "web.token" in result.stderr + result.stdout


class TestReads:
    def test_profiles_are_the_state_json(self, web: WebDaemon) -> None:
        """Every configured profile, with the contract's profile state fields."""
        states = web.get("/api/v1/profiles")
        assert ["alice", "bob"] == [s["profile"] for s in states]
        fields = {"profile", "display_name", "status", "last_session_at", "recovery_day"}
        fields |= {"restrictions", "next_window_start", "next_window_end", "open_prompts"}
        assert fields <= set(states[0])

    def test_lists_have_the_cli_json_fields(self, web: WebDaemon) -> None:
        """Sessions and reminders carry exactly what ``--json`` prints for the same rows."""
        web.log_session("alice", setting="professional")
        cli_sessions = json.loads(web.daemon.cli("sessions", "--json").stdout)
        api_sessions = web.get("/api/v1/sessions")
        assert {s["id"]: s for s in cli_sessions} == {s["id"]: s for s in api_sessions}
        cli_reminders = json.loads(web.daemon.cli("reminders", "--json").stdout)
        api_reminders = web.get("/api/v1/reminders")
        assert {r["id"]: set(r) for r in cli_reminders} == {r["id"]: set(r) for r in api_reminders}

    def test_filters(self, web: WebDaemon) -> None:
        """profile, status and limit narrow the lists."""
        web.log_session("bob")
        bobs = web.get("/api/v1/reminders?profile=bob")
        assert bobs
        assert {"bob"} == {r["profile"] for r in bobs}
        sent = web.get("/api/v1/reminders?status=sent")
        assert {"sent"} == {r["status"] for r in sent}
        assert 1 == len(web.get("/api/v1/sessions?limit=1"))

    def test_dead_letters_and_config_check(self, web: WebDaemon) -> None:
        """A rejected message shows with its reason; the config check lists warnings."""
        publish(web, "needlecare/device/pen1/event", {"type": "no-such-type", "event_id": "x1"})
        wait_until(lambda: web.get("/api/v1/dead-letters"), what="a dead letter")
        letter = web.get("/api/v1/dead-letters")[0]
        assert {"id", "received_at", "topic", "reason", "payload_excerpt"} <= set(letter)
        check = web.get("/api/v1/config/check")
        assert "2 profile(s)" in check["summary"]
        assert any(w.startswith("homeassistant") for w in check["warnings"])

    def test_skin_checks(self, web: WebDaemon) -> None:
        """Skin checks from the mirror are listed for the trend."""
        check = {"type": "skin_check", "event_id": "sk1", "profile": "alice", "redness": 40}
        publish(web, "needlecare/mirror/hallway/event", check)
        wait_until(lambda: web.get("/api/v1/skin-checks?profile=alice"), what="a skin check")
        assert 40 == web.get("/api/v1/skin-checks?profile=alice")[0]["redness"]

    def test_report_is_html(self, web: WebDaemon) -> None:
        """GET /report serves the HTML report (matplotlib is installed with the test extra)."""
        answer = web.call("GET", "/report?profile=alice")
        assert 200 == answer.status
        assert answer.headers["content-type"].startswith("text/html")
        assert 404 == web.call("GET", "/report?profile=zed").status

    def test_report_without_matplotlib_is_503(
        self, tmp_path: Path, mosquitto: MosquittoBroker
    ) -> None:
        """Without the 'report' extra, GET /report says so in JSON with a 503, not a 500."""
        hidden = str(Path(__file__).with_name("without_matplotlib"))
        running = start_web_daemon(tmp_path / "web", mosquitto, pythonpath=hidden)
        try:
            answer = running.call("GET", "/report?profile=alice")
            assert 503 == answer.status
            assert "report" in answer.json()["detail"]
            assert 200 == running.call("GET", "/api/v1/profiles").status
        finally:
            stop(running)

    def test_openapi_examples_are_real(self, web: WebDaemon) -> None:
        """The OpenAPI document's examples name a configured profile and stored ids."""
        web.log_session("alice")
        spec = web.get("/api/openapi.json")
        params = {
            p["name"]: p.get("example")
            for ops in spec["paths"].values()
            for op in ops.values()
            for p in op.get("parameters", [])
        }
        assert "alice" == params["profile"]
        assert any(r["id"] == params["reminder_id"] for r in web.get("/api/v1/reminders"))
        assert any(s["id"] == params["session_id"] for s in web.get("/api/v1/sessions"))

    def test_docs_page_loads_nothing_from_elsewhere(self, web: WebDaemon) -> None:
        """/api/docs is served from the daemon: no script, style or link to another host."""
        html = web.call("GET", "/api/docs").body.decode()
        assert "http://" not in html
        assert "https://" not in html
        assert 'src="static/app.js"' in html


class TestWrites:
    def test_log_session_goes_through_the_core(self, web: WebDaemon) -> None:
        """POST /api/v1/sessions is a log_session command, recorded in the journal as one."""
        session_id = web.log_session("bob", setting="professional", needle_depth_mm=0.5)
        listed = {s["id"]: s for s in web.get("/api/v1/sessions?profile=bob")}
        assert ("professional", 0.5) == (
            listed[session_id]["setting"],
            listed[session_id]["needle_depth_mm"],
        )
        events = web.daemon.read(lambda s: list(s.iter_events()))
        assert any(e.type == "log_session" and e.source == "command" for e in events)

    def test_ack_over_http_clears_the_retained_prompt(
        self,
        web: WebDaemon,
        module_broker: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
    ) -> None:
        """Done over HTTP acknowledges everywhere: the retained prompt topic is cleared."""
        web.log_session("alice")
        web.wait_for_prompt("alice")
        client = mqtt_client_factory(module_broker)
        client.subscribe("needlecare/profile/alice/prompt")
        client.received.wait_for(lambda got: bool(got) and bool(got[-1].payload), 10)
        for prompt in web.open_prompts("alice"):
            acked = web.post(f"/api/v1/reminders/{prompt['id']}/ack")
            assert "acked" == acked["status"]
        client.received.wait_for(lambda got: got[-1].payload == b"", 10)
        assert [] == web.open_prompts("alice")

    def test_snooze(self, web: WebDaemon) -> None:
        """Snooze with 1-1440 minutes; the reminder is snoozed."""
        web.log_session("bob")
        prompt = web.wait_for_prompt("bob")
        snoozed = web.post(f"/api/v1/reminders/{prompt['id']}/snooze", {"minutes": 30})
        assert "snoozed" == snoozed["status"]

    @pytest.mark.parametrize("minutes", [0, 1441, -5, "ten", None])
    def test_snooze_minutes_out_of_range_are_422(self, web: WebDaemon, minutes: Any) -> None:
        """Minutes outside 1-1440 (or not a number) are a 422 with a JSON body."""
        reminder = web.get("/api/v1/reminders?limit=1")[0]
        answer = web.call(
            "POST", f"/api/v1/reminders/{reminder['id']}/snooze", {"minutes": minutes}
        )
        assert 422 == answer.status
        assert "detail" in answer.json()

    @pytest.mark.parametrize(
        "body",
        [
            {"profile": "alice", "setting": "spa"},
            {"profile": "alice", "needle_depth_mm": 9},
            {"profile": "alice", "timestamp": "2026-01-01T10:00:00"},
            {"profile": "Not A Slug"},
            {"setting": "home"},
            {"profile": "alice", "extra": 1},
        ],
    )
    def test_bad_session_bodies_are_422(self, web: WebDaemon, body: dict[str, Any]) -> None:
        """Wrong setting, depth, a time without offset, a bad slug, missing or extra fields."""
        answer = web.call("POST", "/api/v1/sessions", body)
        assert 422 == answer.status, answer.body

    def test_malformed_json_is_422(self, web: WebDaemon) -> None:
        """A body that is not JSON is a 422, not a 500."""
        answer = web.call(
            "POST",
            "/api/v1/sessions",
            raw=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert 422 == answer.status

    def test_timestamp_far_ahead_is_rejected_by_the_core(self, web: WebDaemon) -> None:
        """The core's own rule (at most a day ahead) answers 422 with its reason."""
        answer = web.call(
            "POST", "/api/v1/sessions", {"profile": "alice", "timestamp": "2099-01-01T00:00:00Z"}
        )
        assert 422 == answer.status
        assert "ahead" in answer.json()["detail"]

    def test_unknown_ids_and_profiles_are_404(self, web: WebDaemon) -> None:
        """Unknown reminder, session, profile or route: 404 with a JSON body."""
        for method, path, body in [
            ("POST", "/api/v1/reminders/rem_nope/ack", None),
            ("POST", "/api/v1/reminders/rem_nope/snooze", {"minutes": 5}),
            ("POST", "/api/v1/sessions/ses_nope/void", {"reason": "test"}),
            ("POST", "/api/v1/sessions", {"profile": "zed"}),
            ("GET", "/api/v1/sessions?profile=zed", None),
            ("GET", "/api/v1/reminders?profile=zed", None),
            ("GET", "/api/v1/no-such-route", None),
        ]:
            answer = web.call(method, path, body)
            assert (404, True) == (answer.status, "detail" in answer.json()), path

    def test_void_session(self, web: WebDaemon) -> None:
        """POST .../void sends void_session: the session is voided and its prompts go."""
        session_id = web.log_session("bob", setting="professional")
        web.wait_for_prompt("bob")
        voided = web.post(f"/api/v1/sessions/{session_id}/void", {"reason": "logged twice"})
        assert (session_id, "voided") == (voided["id"], voided["status"])
        listed = {s["id"]: s["status"] for s in web.get("/api/v1/sessions?profile=bob")}
        assert "voided" == listed[session_id]
        mine = web.get("/api/v1/reminders?profile=bob")
        assert all(r["status"] == "cancelled" for r in mine if r["session_id"] == session_id)


class TestEvents:
    def test_ack_on_the_mirror_reaches_the_event_stream(self, web: WebDaemon) -> None:
        """An ack from the mirror (not the web) arrives as reminder and state events."""
        web.log_session("alice")
        prompt = web.wait_for_prompt("alice")
        ack = {"type": "ack", "event_id": f"m-{prompt['id']}", "reminder_id": prompt["id"]}
        with _open_stream(web) as stream:
            publish(web, "needlecare/mirror/hallway/event", ack)
            seen = _read_events(stream, lambda kind, data: data.get("id") == prompt["id"])
        assert ("reminder", "acked") == (seen[-1][0], seen[-1][1]["status"])

    def test_a_prompt_shown_and_acked_between_two_looks_is_reported(self, web: WebDaemon) -> None:
        """Session, prompt and mirror ack within one poll: the stream still says acked."""
        with _open_stream(web) as stream:
            for _ in range(3):
                web.log_session("bob")
                prompt = web.wait_for_prompt("bob")
                ack = {
                    "type": "ack",
                    "event_id": f"fast-{prompt['id']}",
                    "reminder_id": prompt["id"],
                }
                publish(web, "needlecare/mirror/hallway/event", ack)
                seen = _read_events(
                    stream,
                    lambda kind, data, p=prompt: (
                        kind == "reminder" and data["id"] == p["id"] and data["status"] == "acked"
                    ),
                )
                assert "acked" == seen[-1][1]["status"]

    def test_sigterm_with_an_open_event_stream_exits_0(self, fresh_web: WebDaemon) -> None:
        """A page left open holds no shutdown: SIGTERM ends the daemon with exit code 0."""
        with _open_stream(fresh_web) as stream:
            assert b"retry:" in stream.readline()
            assert 0 == fresh_web.terminate()
        assert fresh_web.daemon.log_count("web_stopped") == 1


@contextmanager
def _open_stream(web: WebDaemon) -> Iterator[http.client.HTTPResponse]:
    connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=20)
    try:
        connection.request("GET", "/api/v1/events", headers={"Authorization": f"Bearer {TOKEN}"})
        response = connection.getresponse()
        assert (200, "text/event-stream") == (
            response.status,
            response.getheader("content-type", "").split(";")[0],
        )
        yield response
        response.close()
    finally:
        connection.close()


def _read_events(
    stream: http.client.HTTPResponse, until: Any, timeout: float = 15.0
) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []
    kind = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline().decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            seen.append((kind, json.loads(line[6:])))
            if until(kind, seen[-1][1]):
                return seen
    pytest.fail(f"no matching event within {timeout:g} s; saw {[k for k, _ in seen]}")


class TestStartUp:
    def test_a_busy_port_leaves_the_daemon_running(
        self, tmp_path: Path, mosquitto: MosquittoBroker
    ) -> None:
        """If the web port is taken, the daemon logs web_failed and keeps its other work."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            extra = {"web": {"enabled": True, "port": port, "token": TOKEN}}
            (tmp_path / "d").mkdir()
            daemon = DaemonProcess(tmp_path / "d", mosquitto, extra).start()
            try:
                wait_until(lambda: daemon.log_count("web_failed") == 1, what="web_failed")
                publish_all(
                    MqttConfig(host=mosquitto.host, port=mosquitto.port, client_id="busy-port"),
                    [("needlecare/profile/alice/command", b'{"action": "log_session"}')],
                )
                wait_until(lambda: daemon.count("sessions") == 1, what="the session recorded")
                assert 0 == daemon.stop()
            finally:
                if daemon.alive():
                    daemon.kill()
