"""Home Assistant MQTT discovery: a device per profile, plus the bridge (PRODUCT §4).

Per-entity discovery topics (``<prefix>/<component>/needlecare_<profile>/<object>/config``)
work on every Home Assistant release still in use. Entities read the retained
profile state topic, so they show the right values as soon as they are created,
and go unavailable with ``needlecare/status``.
"""

import json
from typing import Any

from needlecare import __version__
from needlecare.domain.topics import Topics

BRIDGE = "bridge"

# object id -> (component, extra config) for each profile entity
_SENSORS: dict[str, tuple[str, dict[str, Any]]] = {
    "last_session": (
        "sensor",
        {
            "name": "Last session",
            "device_class": "timestamp",
            "value_template": "{{ value_json.last_session_at or None }}",
            "icon": "mdi:needle",
        },
    ),
    "recovery_day": (
        "sensor",
        {
            "name": "Recovery day",
            "value_template": "{{ value_json.recovery_day }}",
            "state_class": "measurement",
            "icon": "mdi:calendar-heart",
        },
    ),
    "status": (
        "sensor",
        {
            "name": "Status",
            "device_class": "enum",
            "options": ["no_history", "recovering", "resting", "due", "overdue"],
            "value_template": "{{ value_json.status }}",
            "icon": "mdi:face-woman-shimmer",
        },
    ),
    "next_window_start": (
        "sensor",
        {
            "name": "Next window start",
            "device_class": "timestamp",
            "value_template": "{{ value_json.next_window_start or None }}",
        },
    ),
    "next_window_end": (
        "sensor",
        {
            "name": "Next window end",
            "device_class": "timestamp",
            "value_template": "{{ value_json.next_window_end or None }}",
        },
    ),
    "actives_restricted": (
        "binary_sensor",
        {
            "name": "Actives restricted",
            "value_template": "{{ 'ON' if value_json.restrictions else 'OFF' }}",
            "json_attributes_template": "{{ {'restrictions': value_json.restrictions} | tojson }}",
            "icon": "mdi:flask-off",
        },
    ),
    "open_prompts": (
        "sensor",
        {
            "name": "Open prompts",
            "value_template": "{{ value_json.open_prompts | length }}",
            "json_attributes_template": "{{ {'prompts': value_json.open_prompts} | tojson }}",
            "icon": "mdi:message-alert",
        },
    ),
}
_BUTTONS = {
    "log_professional_session": (
        "Log professional session",
        {"action": "log_session", "setting": "professional"},
    ),
    "acknowledge_all": ("Acknowledge all", {"action": "ack_all"}),
}


def config_topic(topics: Topics, component: str, node: str, object_id: str) -> str:
    return f"{topics.discovery_prefix}/{component}/{node}/{object_id}/config"


def profile_entities(
    topics: Topics, profile: str, display_name: str | None
) -> list[tuple[str, dict[str, Any]]]:
    """(config topic, config) for every entity of one profile."""
    node = f"needlecare_{profile}"
    device = {
        "identifiers": [node],
        "name": f"Needlecare {display_name or profile}",
        "manufacturer": "Needlecare",
        "model": "Recovery tracker",
        "sw_version": __version__,
        "via_device": f"needlecare_{BRIDGE}",
    }
    common = {"availability_topic": topics.status, "device": device}
    entities = []
    for object_id, (component, extra) in _SENSORS.items():
        config = {
            **common,
            **extra,
            "unique_id": f"{node}_{object_id}",
            "object_id": f"{node}_{object_id}",
            "state_topic": topics.state(profile),
        }
        if "json_attributes_template" in config:
            config["json_attributes_topic"] = topics.state(profile)
        entities.append((config_topic(topics, component, node, object_id), config))
    for object_id, (name, payload) in _BUTTONS.items():
        config = {
            **common,
            "name": name,
            "unique_id": f"{node}_{object_id}",
            "object_id": f"{node}_{object_id}",
            "command_topic": topics.command(profile),
            "payload_press": json.dumps(payload),
        }
        entities.append((config_topic(topics, "button", node, object_id), config))
    return entities


def bridge_entities(topics: Topics) -> list[tuple[str, dict[str, Any]]]:
    """The bridge device: connectivity bound to needlecare/status (never 'unavailable')."""
    node = f"needlecare_{BRIDGE}"
    config = {
        "name": "Connection",
        "unique_id": f"{node}_connectivity",
        "object_id": f"{node}_connectivity",
        "device_class": "connectivity",
        "state_topic": topics.status,
        "payload_on": "online",
        "payload_off": "offline",
        "device": {
            "identifiers": [node],
            "name": "Needlecare",
            "manufacturer": "Needlecare",
            "model": "Daemon",
            "sw_version": __version__,
        },
    }
    return [(config_topic(topics, "binary_sensor", node, "connectivity"), config)]


def removal_topics(topics: Topics, profile: str) -> list[str]:
    """The config topics to empty so Home Assistant removes a profile's entities."""
    return [topic for topic, _ in profile_entities(topics, profile, None)]
