"""Credentials and TLS from the config, applied to any paho client we create."""

import paho.mqtt.client as paho

from needlecare.config import MqttConfig


def apply_credentials(client: paho.Client, config: MqttConfig) -> None:
    """User name, password and TLS (CA, client certificate) as configured."""
    if config.username is not None:
        password = config.password.get_secret_value() if config.password else None
        client.username_pw_set(config.username, password)
    if config.tls is not None:
        tls = config.tls
        client.tls_set(
            ca_certs=str(tls.ca_file) if tls.ca_file else None,
            certfile=str(tls.cert_file) if tls.cert_file else None,
            keyfile=str(tls.key_file) if tls.key_file else None,
        )
