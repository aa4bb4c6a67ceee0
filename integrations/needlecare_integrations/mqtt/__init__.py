"""MQTT over paho-mqtt 2.x; paho's types stay inside this package."""

from needlecare_integrations.mqtt.client import MqttClient, MqttFatalError

__all__ = ["MqttClient", "MqttFatalError"]
