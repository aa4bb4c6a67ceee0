"""Short-lived publishing for the command line (log-session, simulate, ...)."""

import threading
import uuid
from collections.abc import Iterable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from needlecare.config import MqttConfig


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
    if config.username is not None:
        password = config.password.get_secret_value() if config.password else None
        client.username_pw_set(config.username, password)
    if config.tls is not None:
        client.tls_set(
            ca_certs=str(config.tls.ca_file) if config.tls.ca_file else None,
            certfile=str(config.tls.cert_file) if config.tls.cert_file else None,
            keyfile=str(config.tls.key_file) if config.tls.key_file else None,
        )
    connack: list[Any] = []
    answered = threading.Event()

    def on_connect(*args: Any) -> None:
        connack.append(args[3])
        answered.set()

    client.on_connect = on_connect
    try:
        client.connect(config.host, config.port, keepalive=30)
    except OSError as error:
        msg = f"cannot reach the broker at {config.host}:{config.port}: {error}"
        raise PublishError(msg) from error
    client.loop_start()
    try:
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
    finally:
        client.disconnect()
        client.loop_stop()
