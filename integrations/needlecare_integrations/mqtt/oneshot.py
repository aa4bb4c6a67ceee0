"""Short-lived publishing for the command line (log-session, simulate, ...)."""

import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from needlecare.config import MqttConfig
from needlecare_integrations.mqtt.credentials import apply_credentials


class PublishError(RuntimeError):
    """The broker could not be reached or did not confirm a publish."""


def publish_all(
    config: MqttConfig, messages: Iterable[tuple[str, bytes]], *, timeout: float = 10.0
) -> int:
    """Publish each (topic, payload) with QoS 1 and wait for the broker's PUBACKs."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{config.client_id}-cli-{uuid.uuid4().hex[:8]}",
        protocol=paho.MQTTv5,
    )
    apply_credentials(client, config)
    connack: list[Any] = []
    answered = threading.Event()

    def on_connect(*args: Any) -> None:
        connack.append(args[3])
        answered.set()

    client.on_connect = on_connect
    with _running(client, config, keepalive=30):
        if not answered.wait(timeout) or connack[0].is_failure:
            reason = connack[0] if connack else "no answer"
            msg = f"the broker at {config.host}:{config.port} refused us: {reason}"
            raise PublishError(msg)
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(timeout=timeout)
            if not info.is_published():
                msg = "the broker did not confirm the publish"
                raise PublishError(msg)
        return len(infos)


def read_retained(config: MqttConfig, topic: str, *, timeout: float = 3.0) -> str | None:
    """The retained payload on ``topic`` as text; None if none arrives within ``timeout``.

    Raises PublishError when the broker cannot be reached.
    """
    got: list[str] = []
    done = threading.Event()
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"{config.client_id}-cli-{uuid.uuid4().hex[:8]}"
    )
    apply_credentials(client, config)

    def on_message(_client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        got.append(msg.payload.decode(errors="replace"))
        done.set()

    client.on_connect = lambda c, *_: c.subscribe(topic)
    client.on_message = on_message
    with _running(client, config, keepalive=10):
        done.wait(timeout)
    return got[0] if got else None


@contextmanager
def _running(client: paho.Client, config: MqttConfig, *, keepalive: int) -> Iterator[None]:
    """Connected with paho's loop running for the block; disconnected after it."""
    try:
        client.connect(config.host, config.port, keepalive=keepalive)
    except OSError as error:
        msg = f"cannot reach the broker at {config.host}:{config.port}: {error}"
        raise PublishError(msg) from error
    client.loop_start()
    try:
        yield
    finally:
        client.disconnect()
        client.loop_stop()
