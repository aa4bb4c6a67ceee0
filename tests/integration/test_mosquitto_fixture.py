"""The Mosquitto fixtures and MosquittoBroker, against a real mosquitto."""

import socket
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from needlecare_integrations.broker import (
    BrokerError,
    BrokerTls,
    MosquittoBroker,
    port_in_use,
)
from support.mosquitto import (
    AuthBroker,
    MqttClientFactory,
    MqttConnection,
    Received,
    TlsBroker,
    free_port,
    unique_client_id,
    unique_topic,
)

pytestmark = pytest.mark.integration

SESSION_EXPIRY = 300


class TestMosquittoBroker:
    """Starting, stopping and failing to start the broker process."""

    def test_start_returns_with_the_port_open(self, tmp_path: Path) -> None:
        """start() returns only once the listener accepts connections."""
        broker = MosquittoBroker(data_dir=tmp_path, port=free_port())
        with broker:
            expected = (True, True)
            assert expected == (broker.is_running, port_in_use(broker.host, broker.port))

    def test_stop_frees_the_port(self, tmp_path: Path) -> None:
        """Leaving the context stops the process and frees its port."""
        with MosquittoBroker(data_dir=tmp_path, port=free_port()) as broker:
            pass
        expected = (False, False)
        assert expected == (broker.is_running, port_in_use(broker.host, broker.port))

    def test_config_removes_the_defaults_that_lose_data(self, tmp_path: Path) -> None:
        """The generated configuration raises the queue limits and autosaves each second."""
        config = MosquittoBroker(data_dir=tmp_path, port=1883).render_config().splitlines()
        expected = {
            "max_queued_messages 1000000",
            "max_queued_bytes 0",
            "autosave_interval 1",
            "set_tcp_nodelay true",
            "allow_anonymous true",
            "listener 1883 127.0.0.1",
        }
        assert set() == expected - set(config)

    def test_port_in_use_is_refused(self, tmp_path: Path) -> None:
        """Another listener on the port is reported instead of being mistaken for ours."""
        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            other.listen()
            port = other.getsockname()[1]
            broker = MosquittoBroker(data_dir=tmp_path, port=port)
            with pytest.raises(BrokerError, match="already in use"):
                broker.start()

    def test_exit_at_start_up_is_reported_with_the_log(self, tmp_path: Path) -> None:
        """A broker that exits at start-up raises BrokerError quoting mosquitto's log."""
        missing = tmp_path / "missing.pem"
        tls = BrokerTls(ca_file=missing, cert_file=missing, key_file=missing, port=free_port())
        broker = MosquittoBroker(data_dir=tmp_path, port=free_port(), tls=tls)
        with pytest.raises(BrokerError, match="exited with code") as error:
            broker.start()
        assert "missing.pem" in str(error.value)

    def test_missing_executable_is_reported(self, tmp_path: Path) -> None:
        """A missing mosquitto binary gives a BrokerError that says how to install it."""
        broker = MosquittoBroker(
            data_dir=tmp_path, port=free_port(), executable=str(tmp_path / "nope")
        )
        with pytest.raises(BrokerError, match="apt-get install mosquitto"):
            broker.start()


class TestMosquittoFixture:
    """The anonymous, persistent broker that most integration tests use."""

    def test_qos1_round_trip(
        self, mosquitto: MosquittoBroker, mqtt_client_factory: MqttClientFactory
    ) -> None:
        """A QoS 1 message reaches a QoS 1 subscriber on another connection."""
        topic = unique_topic()
        subscriber = mqtt_client_factory(mosquitto)
        subscriber.subscribe(topic, qos=1)
        mqtt_client_factory(mosquitto).publish(topic, b"hello", qos=1)
        expected = [Received(topic, b"hello", qos=1, retain=False)]
        assert expected == subscriber.received.wait_for_count(1)

    def test_retained_message_survives_restart(
        self, mosquitto: MosquittoBroker, mqtt_client_factory: MqttClientFactory
    ) -> None:
        """A retained message is delivered after a restart (SIGTERM saves persistence)."""
        topic = unique_topic()
        publisher = mqtt_client_factory(mosquitto)
        publisher.publish(topic, b"state", retain=True)
        publisher.close()
        mosquitto.restart()
        subscriber = mqtt_client_factory(mosquitto)
        subscriber.subscribe(topic)
        expected = [Received(topic, b"state", qos=1, retain=True)]
        assert expected == subscriber.received.wait_for_count(1)

    def test_offline_subscriber_receives_queued_messages(
        self, mosquitto: MosquittoBroker, mqtt_client_factory: MqttClientFactory
    ) -> None:
        """Messages published while a persistent session is offline arrive on reconnect."""
        topic, client_id = unique_topic(), unique_client_id("subscriber")
        _subscribe_then_go_offline(mqtt_client_factory, mosquitto, client_id, topic)
        _publish_numbered(mqtt_client_factory(mosquitto), topic, count=3)
        subscriber = _resume(mqtt_client_factory, mosquitto, client_id)
        expected = (True, _numbered(topic, count=3))
        assert expected == (subscriber.session_present, subscriber.received.wait_for_count(3))

    def test_queued_messages_survive_a_killed_broker(
        self, mosquitto: MosquittoBroker, mqtt_client_factory: MqttClientFactory
    ) -> None:
        """Session and queued messages survive SIGKILL once the broker has autosaved.

        With ``autosave_interval 1`` Mosquitto saves every 2 s, not 1 s (it waits for
        *more* than one whole second), so a fixed 1.5 s sleep would fail about one run
        in four; waiting for the persistence file to be rewritten is bounded and exact.
        """
        topic, client_id = unique_topic(), unique_client_id("subscriber")
        _subscribe_then_go_offline(mqtt_client_factory, mosquitto, client_id, topic)
        _publish_numbered(mqtt_client_factory(mosquitto), topic, count=3)
        mosquitto.wait_for_save()
        mosquitto.kill()
        mosquitto.start()
        subscriber = _resume(mqtt_client_factory, mosquitto, client_id)
        expected = (True, _numbered(topic, count=3))
        assert expected == (subscriber.session_present, subscriber.received.wait_for_count(3))


class TestMosquittoAuthFixture:
    """The broker that accepts only the needlecare account."""

    @pytest.mark.parametrize("protocol", [mqtt.MQTTv5, mqtt.MQTTv311])
    def test_bad_password_is_refused(
        self,
        mosquitto_auth: AuthBroker,
        mqtt_client_factory: MqttClientFactory,
        protocol: MQTTProtocolVersion,
    ) -> None:
        """A wrong password gets CONNACK "Not authorized" (Mosquitto 2.0's word for it)."""
        connection = mqtt_client_factory(
            mosquitto_auth.broker,
            protocol=protocol,
            username=mosquitto_auth.username,
            password="wrong",
            check=False,
        )
        expected = "Not authorized"
        assert expected == connection.outcome

    def test_anonymous_client_is_refused(
        self, mosquitto_auth: AuthBroker, mqtt_client_factory: MqttClientFactory
    ) -> None:
        """A client without credentials gets CONNACK "Not authorized"."""
        connection = mqtt_client_factory(mosquitto_auth.broker, check=False)
        expected = "Not authorized"
        assert expected == connection.outcome

    def test_good_password_is_accepted(
        self, mosquitto_auth: AuthBroker, mqtt_client_factory: MqttClientFactory
    ) -> None:
        """The account's user name and password get a successful CONNACK."""
        connection = mqtt_client_factory(
            mosquitto_auth.broker,
            username=mosquitto_auth.username,
            password=mosquitto_auth.password,
        )
        expected = "Success"
        assert expected == connection.outcome


class TestMosquittoTlsFixture:
    """The broker with a TLS listener that requires a certificate from the test CA."""

    def test_client_certificate_is_accepted(
        self, mosquitto_tls: TlsBroker, mqtt_client_factory: MqttClientFactory
    ) -> None:
        """A client with the CA and its certificate connects and publishes over TLS."""
        topic = unique_topic()
        subscriber = mqtt_client_factory(mosquitto_tls.broker)
        subscriber.subscribe(topic)
        publisher = mqtt_client_factory(
            mosquitto_tls.broker, port=mosquitto_tls.tls_port, tls=mosquitto_tls.client_tls()
        )
        publisher.publish(topic, b"over tls")
        expected = [Received(topic, b"over tls", qos=1, retain=False)]
        assert expected == subscriber.received.wait_for_count(1)

    def test_client_without_certificate_is_refused(
        self, mosquitto_tls: TlsBroker, mqtt_client_factory: MqttClientFactory
    ) -> None:
        """Without a client certificate the TLS session ends before any CONNACK."""
        connection = mqtt_client_factory(
            mosquitto_tls.broker,
            port=mosquitto_tls.tls_port,
            tls=mosquitto_tls.client_tls(with_certificate=False),
            check=False,
        )
        refusals = ("disconnected before CONNACK", "connection failed")
        assert connection.outcome.startswith(refusals), connection.outcome


def _subscribe_then_go_offline(
    factory: MqttClientFactory, broker: MosquittoBroker, client_id: str, topic: str
) -> None:
    subscriber = factory(
        broker, client_id=client_id, clean_start=False, session_expiry=SESSION_EXPIRY
    )
    subscriber.subscribe(topic, qos=1)
    subscriber.close()


def _resume(factory: MqttClientFactory, broker: MosquittoBroker, client_id: str) -> MqttConnection:
    return factory(broker, client_id=client_id, clean_start=False, session_expiry=SESSION_EXPIRY)


def _publish_numbered(publisher: MqttConnection, topic: str, count: int) -> None:
    for number in range(count):
        publisher.publish(topic, str(number).encode())


def _numbered(topic: str, count: int) -> list[Received]:
    return [Received(topic, str(n).encode(), qos=1, retain=False) for n in range(count)]
