"""Discovery and the Home Assistant outbox, seen from the broker (no Home Assistant needed)."""

import json

import pytest

from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonFactory, wait_until
from support.mosquitto import MqttClientFactory, free_port

pytestmark = pytest.mark.integration

ALICE_STATUS = "homeassistant/sensor/needlecare_alice/status/config"
BOB_STATUS = "homeassistant/sensor/needlecare_bob/status/config"


def retained_configs(factory: MqttClientFactory, broker: MosquittoBroker) -> dict[str, bytes]:
    """Every retained discovery config on the broker right now."""
    client = factory(broker)
    client.subscribe("homeassistant/#")
    client.subscribe("probe/end")
    client.publish("probe/end", b"x")
    got = client.received.wait_for(lambda got: any(m.topic == "probe/end" for m in got))
    return {m.topic: m.payload for m in got if m.topic.startswith("homeassistant/") and m.payload}


class TestDiscovery:
    def test_configs_are_retained_and_come_back_on_the_birth_message(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """Discovery is published at start; after the broker lost it, HA's birth restores it."""
        daemon = daemon_factory(mosquitto).start()
        wait_until(lambda: daemon.log_count("discovery_published") >= 1, what="discovery")
        configs = retained_configs(mqtt_client_factory, mosquitto)
        assert 2 * 9 + 1 + 4 + 2 * 2 == len(configs)  # profiles; bridge, its health, devices
        status = json.loads(configs[ALICE_STATUS])
        assert "needlecare/profile/alice/state" == status["state_topic"]
        client = mqtt_client_factory(mosquitto)
        for topic in configs:
            client.publish(topic, b"", retain=True)  # a broker that lost its memory
        assert {} == retained_configs(mqtt_client_factory, mosquitto)
        client.publish("homeassistant/status", b"online")
        wait_until(lambda: daemon.log_count("homeassistant_birth") == 1, what="the birth message")
        wait_until(
            lambda: len(retained_configs(mqtt_client_factory, mosquitto)) == len(configs),
            what="discovery again",
        )
        assert 0 == daemon.count("dead_letters")

    def test_a_profile_that_left_the_config_is_removed(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """Bob's entities get empty retained configs once bob is gone from the config."""
        daemon = daemon_factory(mosquitto).start()
        wait_until(lambda: BOB_STATUS in retained_configs(mqtt_client_factory, mosquitto))
        assert 0 == daemon.stop()
        del daemon.config["profiles"]["bob"]
        del daemon.config["devices"]["pen2"]
        daemon.write_config()
        daemon.start()
        wait_until(lambda: daemon.log_count("discovery_removed") == 1, what="bob removed")
        configs = retained_configs(mqtt_client_factory, mosquitto)
        assert (True, False) == (ALICE_STATUS in configs, BOB_STATUS in configs)


class TestHomeAssistantAway:
    def test_prompts_wait_in_the_outbox_while_home_assistant_is_unreachable(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """HA down: the mirror still gets the prompt; HA's share waits, with the reason shown."""
        daemon = daemon_factory(
            mosquitto,
            homeassistant={"url": f"http://127.0.0.1:{free_port()}", "token": "t0ken-xyz"},
        ).start()
        watcher = mqtt_client_factory(mosquitto)
        watcher.subscribe("needlecare/mirror/hallway/notify")
        client = mqtt_client_factory(mosquitto)
        client.publish(
            "needlecare/device/pen1/event", b'{"event_id": "s", "type": "session_started"}'
        )
        client.publish(
            "needlecare/device/pen1/event", b'{"event_id": "e", "type": "session_ended"}'
        )
        watcher.received.wait_for(lambda got: len(got) >= 1)
        wait_until(lambda: daemon.log_count("homeassistant_unavailable") >= 1, what="a failed try")
        waiting = json.loads(daemon.cli("outbox", "--json").stdout)
        channels = {item["channel"] for item in waiting}
        assert {"dashboard", "event"} <= channels
        head = min(waiting, key=lambda item: item["id"])
        assert head["attempts"] >= 1
        assert head["last_error"]
        assert "t0ken-xyz" not in daemon.log_text()
