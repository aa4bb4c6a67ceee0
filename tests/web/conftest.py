"""Fixtures for the web app's tests: the daemon as a process with web.enabled, over HTTP."""

import http.client
import json
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from needlecare.config import MqttConfig
from needlecare_integrations.broker import MosquittoBroker
from needlecare_integrations.mqtt.oneshot import publish_all
from support.daemon import DaemonProcess, wait_until
from support.mosquitto import free_port, running_broker

TOKEN = "test-web-token-7f3a"
# Only the soothe prompt (which needs an ack) after a session: a predictable overview.
QUIET_PROTOCOL: dict[str, Any] = {
    "steps": {
        name: {"enabled": False}
        for name in ("serum_window", "actives_pause", "actives_resume", "window_open", "overdue")
    }
}
AWAKE = {"start": "03:00", "end": "03:01"}
PROFILES = {
    "alice": {"timezone": "Europe/Berlin", "display_name": "Alice", "quiet_hours": AWAKE},
    "bob": {"timezone": "America/New_York", "display_name": "Bob", "quiet_hours": AWAKE},
}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebDaemon:
    """The daemon with its web app on a free port, and an HTTP client for it."""

    def __init__(self, daemon: DaemonProcess, port: int, token: str | None) -> None:
        self.daemon = daemon
        self.port = port
        self.token = token

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = "default",  # noqa: S107 - "use the daemon's token"
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Answer:
        sent = dict(headers or {})
        chosen = self.token if token == "default" else token
        if chosen is not None:
            sent["Authorization"] = f"Bearer {chosen}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            return Answer(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()

    def get(self, path: str, **kwargs: Any) -> Any:
        answer = self.call("GET", path, **kwargs)
        assert answer.status == 200, (path, answer.status, answer.body[:300])
        return answer.json()

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        answer = self.call("POST", path, body, **kwargs)
        assert answer.status in (200, 201), (path, answer.status, answer.body[:300])
        return answer.json()

    def log_session(self, profile: str, **fields: Any) -> str:
        created = self.post("/api/v1/sessions", {"profile": profile, **fields})
        return str(created["id"])

    def open_prompts(self, profile: str) -> list[dict[str, Any]]:
        states = {s["profile"]: s for s in self.get("/api/v1/profiles")}
        return list(states[profile]["open_prompts"])

    def wait_for_prompt(self, profile: str, kind: str = "soothe") -> dict[str, Any]:
        wait_until(
            lambda: any(p["kind"] == kind for p in self.open_prompts(profile)),
            what=f"a {kind} prompt for {profile}",
        )
        return next(p for p in self.open_prompts(profile) if p["kind"] == kind)

    def terminate(self) -> int:
        process = self.daemon.process
        assert process is not None
        process.send_signal(signal.SIGTERM)
        return process.wait(15)


def publish(web: WebDaemon, topic: str, payload: dict[str, Any]) -> None:
    mqtt = web.daemon.config["mqtt"]
    config = MqttConfig(host=mqtt["host"], port=mqtt["port"], client_id="web-test-publisher")
    publish_all(config, [(topic, json.dumps(payload).encode())])


def start_web_daemon(
    workdir: Path,
    broker: MosquittoBroker,
    *,
    token: str | None = TOKEN,
    pythonpath: str | None = None,
    **web: Any,
) -> WebDaemon:
    port = free_port()
    settings: dict[str, Any] = {"enabled": True, "port": port, **web}
    if token is not None:
        settings["token"] = token
    workdir.mkdir(parents=True, exist_ok=True)
    daemon = DaemonProcess(
        workdir,
        broker,
        {"profiles": PROFILES, "protocol": QUIET_PROTOCOL, "web": settings},
    )
    if pythonpath is not None:
        daemon.env["PYTHONPATH"] = pythonpath
    daemon.start()
    wait_until(lambda: daemon.log_count("web_started") > 0 or not daemon.alive(), what="web")
    assert daemon.alive(), daemon.log_text()
    return WebDaemon(daemon, port, token)


def stop(web: WebDaemon) -> None:
    if web.daemon.alive():
        web.daemon.kill()
    print(f"--- daemon log:\n{web.daemon.log_text()[-6000:]}")


@pytest.fixture(scope="module")
def module_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    yield from running_broker(tmp_path_factory.mktemp("broker"), port=free_port())


@pytest.fixture(scope="module")
def web(
    tmp_path_factory: pytest.TempPathFactory, module_broker: MosquittoBroker
) -> Iterator[WebDaemon]:
    """One daemon per test module, with a token; tests log their own sessions."""
    running = start_web_daemon(tmp_path_factory.mktemp("web"), module_broker)
    yield running
    stop(running)


@pytest.fixture
def fresh_web(tmp_path: Path, mosquitto: MosquittoBroker) -> Iterator[WebDaemon]:
    """A daemon of its own, for a test that stops it or needs an empty store."""
    running = start_web_daemon(tmp_path / "web", mosquitto)
    yield running
    stop(running)
