"""One-time set-up of a test Home Assistant: onboarding without a browser, and MQTT.

MQTT is configured only through a config entry, made here with the config-flow
HTTP API; discovery is turned on through the options flow. The releases ask for
different fields (2024.3's options flow starts with a broker step, 2025.x's does
not), so every form is answered from what its ``data_schema`` asks for: the same
code drives each release. Readiness is judged by HA's birth message
(``homeassistant/status`` = ``online``): HA sends it only after its discovery
subscriptions have settled, so a discovery config retained before then is seen.
"""

from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from support.homeassistant_client import (
    HomeAssistantClient,
    HomeAssistantError,
    http_request,
    wait_for,
    websocket_command,
)
from support.mosquitto import MqttConnection, Recorder, unique_client_id

OWNER = {
    "name": "Needlecare Test",
    "username": "needlecare",
    "password": "needlecare-test-password",
    "language": "en",
}
TOKEN_LIFESPAN_DAYS = 3650
DISCOVERY_PREFIX = "homeassistant"
STATUS_TOPIC = f"{DISCOVERY_PREFIX}/status"
MQTT_TIMEOUT = 30.0
_FLOW = "/api/config/config_entries/flow"
_OPTIONS_FLOW = "/api/config/config_entries/options/flow"
_MAX_STEPS = 6


def onboard(url: str) -> str:
    """Create the owner, finish onboarding and return a new long-lived access token."""
    client_id = f"{url}/"
    user = http_request(
        "POST", f"{url}/api/onboarding/users", body={**OWNER, "client_id": client_id}
    )
    form = {"grant_type": "authorization_code", "code": user["auth_code"], "client_id": client_id}
    access = http_request("POST", f"{url}/auth/token", form=form)["access_token"]
    http_request("POST", f"{url}/api/onboarding/analytics", token=access, body={})
    redirect = {"client_id": client_id, "redirect_uri": f"{url}/?auth_callback=1"}
    http_request("POST", f"{url}/api/onboarding/integration", token=access, body=redirect)
    token = websocket_command(
        url,
        access,
        "auth/long_lived_access_token",
        client_name="needlecare-tests",
        lifespan=TOKEN_LIFESPAN_DAYS,
    )
    return str(token)


def setup_mqtt(client: HomeAssistantClient, host: str, port: int) -> str:
    """Create the MQTT entry, turn discovery on and wait until HA is ready; its entry id.

    Each wait is bounded by MQTT_TIMEOUT; an entry already there is an error, since
    the options flow would then change nothing and HA would not reconnect.
    """
    if client.config_entries("mqtt"):
        raise HomeAssistantError("MQTT is already set up in this Home Assistant")
    births = _BirthWatcher(host, port)
    try:
        entry_id = _create_entry(client, host, port)
        births.wait_for_births(1)  # the first connection, before its reload
        _set_options(client, entry_id, host, port)
        births.wait_for_births(2)
    finally:
        births.close()
    wait_for(lambda: _entry_loaded(client), MQTT_TIMEOUT, "the MQTT entry to load")
    return entry_id


def _mqtt_answers(host: str, port: int) -> dict[str, Any]:
    """Every MQTT field the tests set, by name; a form gets those it asks for."""
    return {
        "broker": host,
        "port": port,
        "discovery": True,
        "discovery_prefix": DISCOVERY_PREFIX,
        "birth_enable": True,
        "birth_topic": STATUS_TOPIC,
        "birth_payload": "online",
        "will_enable": True,
        "will_topic": STATUS_TOPIC,
        "will_payload": "offline",
    }


def _create_entry(client: HomeAssistantClient, host: str, port: int) -> str:
    flow = client.rest("POST", _FLOW, {"handler": "mqtt", "show_advanced_options": False})
    result = drive_flow(client, _FLOW, flow, _mqtt_answers(host, port))
    return str(result["result"]["entry_id"])


def _set_options(client: HomeAssistantClient, entry_id: str, host: str, port: int) -> None:
    flow = client.rest("POST", _OPTIONS_FLOW, {"handler": entry_id})
    drive_flow(client, _OPTIONS_FLOW, flow, _mqtt_answers(host, port))


def drive_flow(
    client: HomeAssistantClient, base: str, result: dict[str, Any], answers: dict[str, Any]
) -> dict[str, Any]:
    """Answer a config or options flow until it creates its entry; the final result.

    Each form is sent the answers its ``data_schema`` names (fields left out keep
    their defaults); a menu takes its ``broker``-like manual option. A form that
    comes back with errors, or a flow that ends any other way, is an error.
    """
    for _ in range(_MAX_STEPS):
        kind = result.get("type")
        if kind == "create_entry":
            return result
        path = f"{base}/{result['flow_id']}"
        if kind == "menu":
            options = list(result.get("menu_options", []))
            manual = next((o for o in options if o in answers or o == "broker"), None)
            if manual is None:
                raise HomeAssistantError(f"no manual choice in the menu {result}")
            result = _submit(client, path, {"next_step_id": manual})
            continue
        if kind != "form" or result.get("errors"):
            raise HomeAssistantError(f"config flow gave {result}")
        asked = [field["name"] for field in result.get("data_schema", [])]
        result = _submit(client, path, {name: answers[name] for name in asked if name in answers})
    raise HomeAssistantError(f"config flow did not finish in {_MAX_STEPS} steps: {result}")


def _submit(client: HomeAssistantClient, path: str, data: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = client.rest("POST", path, data)
    return result


def _entry_loaded(client: HomeAssistantClient) -> bool:
    return [entry["state"] for entry in client.config_entries("mqtt")] == ["loaded"]


class _BirthWatcher:
    """Counts HA's birth messages on the broker, from before the entry exists."""

    def __init__(self, host: str, port: int) -> None:
        paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_client_id("ha-birth"))
        self._recorder = Recorder()
        self._connection = MqttConnection(paho, self._recorder)
        self._connection.connect(host, port, clean_start=True, session_expiry=None)
        outcome = self._connection.wait_for_outcome()
        if outcome != "Success":
            raise HomeAssistantError(f"watching {host}:{port} for HA's birth: {outcome}")
        self._connection.subscribe(STATUS_TOPIC, qos=1)

    def wait_for_births(self, count: int) -> None:
        def births() -> bool:
            return sum(m.payload == b"online" for m in self._recorder.messages) >= count

        wait_for(births, MQTT_TIMEOUT, f"birth message {count} on {STATUS_TOPIC}")

    def close(self) -> None:
        self._connection.close()
