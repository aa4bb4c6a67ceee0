"""MQTT over paho-mqtt 2.x; paho's types stay inside this package."""

from needlecare_integrations.mqtt.client import AckToken, Delivery, MqttClient, MqttFatalError

__all__ = ["AckToken", "Delivery", "MqttClient", "MqttFatalError"]
