"""Home Assistant MQTT discovery: a device per profile, plus the bridge (PRODUCT §4).

Per-entity discovery topics (``<prefix>/<component>/needlecare_<profile>/<object>/config``)
work on every Home Assistant release still in use. Entities read retained state
topics, so they show the right values as soon as they are created, and go
unavailable with ``needlecare/status``.

Entity ids never come from names (which follow the profile's display name and
language): every config carries the id twice, as ``object_id`` (read by releases
before 2026.4; deprecated from 2025.10) and as ``default_entity_id``, the full
``<component>.<slug>`` that releases from 2025.10 on read instead. Both carry the
same slug, so the id is the same on every release. ``unique_id`` keys the entity
registry, and ``origin`` tells Home Assistant which software sent the config.
"""

import json
from collections.abc import Iterable
from typing import Any

from needlecare import __version__
from needlecare.domain.topics import Topics
from needlecare.i18n import N_, translator

BRIDGE = "bridge"
ORIGIN_NAME = "Needlecare"
SUPPORT_URL = "https://github.com/needlecare/needlecare/blob/main/docs/homeassistant.md"
DIAGNOSTIC = "diagnostic"

Config = dict[str, Any]

_EPOCH = "1970-01-01T00:00:00+00:00"
_SET_WHEN = "_set_when"  # an expression; removed by _bind_availability


def _timestamp(expression: str) -> Config:
    """A timestamp sensor whose value may be null: unavailable while it is.

    Not ``None`` as the state: 2025.x shows that as unknown, but 2024.3 logs an
    "Invalid state message" warning for every such message. The entity is instead
    unavailable while the value is null (a second availability on the state topic),
    and the state shown meanwhile is never read.
    """
    return {
        "device_class": "timestamp",
        "value_template": f"{{{{ {expression} or '{_EPOCH}' }}}}",
        _SET_WHEN: expression,
    }


def _bind_availability(config: Config, status_topic: str) -> None:
    """Availability: the daemon's status, and for nullable timestamps the value too."""
    expression = config.pop(_SET_WHEN, None)
    if expression is None:
        return
    del config["availability_topic"]
    config["availability"] = [
        {"topic": status_topic},
        {
            "topic": config["state_topic"],
            "value_template": f"{{{{ 'online' if {expression} else 'offline' }}}}",
        },
    ]
    config["availability_mode"] = "all"


# object id -> (component, extra config) for each profile entity
_SENSORS: dict[str, tuple[str, Config]] = {
    "last_session": (
        "sensor",
        {
            "name": N_("Last session"),
            **_timestamp("value_json.last_session_at"),
            "icon": "mdi:needle",
        },
    ),
    "recovery_day": (
        "sensor",
        {
            "name": N_("Recovery day"),
            "value_template": "{{ value_json.recovery_day }}",
            "state_class": "measurement",
            "icon": "mdi:calendar-heart",
        },
    ),
    "status": (
        "sensor",
        {
            "name": N_("Status"),
            "device_class": "enum",
            "options": ["no_history", "recovering", "resting", "due", "overdue"],
            "value_template": "{{ value_json.status }}",
            "icon": "mdi:face-woman-shimmer",
        },
    ),
    "next_window_start": (
        "sensor",
        {
            "name": N_("Next window start"),
            **_timestamp("value_json.next_window_start"),
        },
    ),
    "next_window_end": (
        "sensor",
        {
            "name": N_("Next window end"),
            **_timestamp("value_json.next_window_end"),
        },
    ),
    "actives_restricted": (
        "binary_sensor",
        {
            "name": N_("Actives restricted"),
            "value_template": "{{ 'ON' if value_json.restrictions else 'OFF' }}",
            "json_attributes_template": "{{ {'restrictions': value_json.restrictions} | tojson }}",
            "icon": "mdi:flask-off",
        },
    ),
    "open_prompts": (
        "sensor",
        {
            "name": N_("Open prompts"),
            "value_template": "{{ value_json.open_prompts | length }}",
            "json_attributes_template": "{{ {'prompts': value_json.open_prompts} | tojson }}",
            "icon": "mdi:message-alert",
        },
    ),
}
_BUTTONS = {
    "log_professional_session": (
        N_("Log professional session"),
        {"action": "log_session", "setting": "professional"},
    ),
    "acknowledge_all": (N_("Acknowledge all"), {"action": "ack_all"}),
}
# The bridge's diagnostic sensors, read from the retained health topic (health.py).
_HEALTH: dict[str, Config] = {
    "dead_letters": {
        "name": "Dead letters",
        "value_template": "{{ value_json.dead_letters }}",
        "json_attributes_template": (
            "{{ {'latest_reason': value_json.latest_dead_letter} | tojson }}"
        ),
        "icon": "mdi:email-alert",
    },
    "outbox_backlog": {
        "name": "Outbox backlog",
        "value_template": "{{ value_json.outbox_backlog }}",
        "icon": "mdi:tray-full",
    },
    "last_event": {
        "name": "Last event",
        **_timestamp("value_json.last_event_at"),
    },
    "version": {
        "name": "Version",
        "value_template": "{{ value_json.version }}",
        "icon": "mdi:tag",
    },
}


def entity_slug(slug: str) -> str:
    """A topic slug (``[a-z0-9_-]``) as Home Assistant writes it in entity ids."""
    return slug.replace("-", "_")


def origin() -> Config:
    """The ``origin`` block: which software sent a discovery config."""
    return {"name": ORIGIN_NAME, "sw_version": __version__, "support_url": SUPPORT_URL}


def identity(component: str, node: str, object_id: str) -> Config:
    """``unique_id``, ``object_id``, ``default_entity_id`` and ``origin`` of one entity."""
    slug = entity_slug(f"{node}_{object_id}")
    return {
        "unique_id": f"{node}_{object_id}",
        "object_id": slug,
        "default_entity_id": f"{component}.{slug}",
        "origin": origin(),
    }


def config_topic(topics: Topics, component: str, node: str, object_id: str) -> str:
    return f"{topics.discovery_prefix}/{component}/{node}/{object_id}/config"


def health_topic(topics: Topics) -> str:
    """The bridge's retained health JSON (dead letters, backlog, devices...)."""
    return f"{topics.base}/{BRIDGE}/health"


def profile_entities(
    topics: Topics, profile: str, display_name: str | None, *, language: str = "en"
) -> list[tuple[str, Config]]:
    """(config topic, config) for every entity of one profile; names in ``language``."""
    tr = translator(language)
    node = f"needlecare_{profile}"
    device = {
        "identifiers": [node],
        "name": tr.gettext("Needlecare {name}", name=display_name or profile),
        "manufacturer": "Needlecare",
        "model": tr.gettext("Recovery tracker"),
        "sw_version": __version__,
        "via_device": f"needlecare_{BRIDGE}",
    }
    common = {"availability_topic": topics.status, "device": device}
    entities = []
    for object_id, (component, extra) in _SENSORS.items():
        config = {
            **common,
            **extra,
            **identity(component, node, object_id),
            "name": tr.gettext(extra["name"]),
            "state_topic": topics.state(profile),
        }
        if "json_attributes_template" in config:
            config["json_attributes_topic"] = topics.state(profile)
        _bind_availability(config, topics.status)
        entities.append((config_topic(topics, component, node, object_id), config))
    for object_id, (name, payload) in _BUTTONS.items():
        config = {
            **common,
            "name": tr.gettext(name),
            **identity("button", node, object_id),
            "command_topic": topics.command(profile),
            "payload_press": json.dumps(payload),
        }
        entities.append((config_topic(topics, "button", node, object_id), config))
    return entities


def _bridge_device() -> Config:
    return {
        "identifiers": [f"needlecare_{BRIDGE}"],
        "name": "Needlecare",
        "manufacturer": "Needlecare",
        "model": "Daemon",
        "sw_version": __version__,
    }


def bridge_entities(topics: Topics, devices: Iterable[str] = ()) -> list[tuple[str, Config]]:
    """The bridge device: connectivity bound to needlecare/status, and its diagnostics.

    Connectivity has no availability (it is never 'unavailable', it is off); the
    diagnostic sensors go unavailable with the daemon, like the profiles' entities.
    """
    node = f"needlecare_{BRIDGE}"
    connectivity = {
        "name": "Connection",
        **identity("binary_sensor", node, "connectivity"),
        "device_class": "connectivity",
        "state_topic": topics.status,
        "payload_on": "online",
        "payload_off": "offline",
        "device": _bridge_device(),
    }
    entities = [(config_topic(topics, "binary_sensor", node, "connectivity"), connectivity)]
    for object_id, extra in _HEALTH.items():
        entities.append(_diagnostic(topics, object_id, extra))
    for device in sorted(devices):
        entities += device_entities(topics, device)
    return entities


def device_entities(topics: Topics, device: str) -> list[tuple[str, Config]]:
    """A device's last heartbeat and battery, as diagnostics of the bridge."""
    lookup = f"(value_json.devices.get('{device}') or {{}})"
    heartbeat = {
        "name": f"{device} last heartbeat",
        **_timestamp(f"{lookup}.get('last_heartbeat')"),
    }
    battery = {
        "name": f"{device} battery",
        "device_class": "battery",
        "unit_of_measurement": "%",
        "state_class": "measurement",
        "value_template": f"{{{{ {lookup}.get('battery_pct') }}}}",
    }
    return [
        _diagnostic(topics, f"{device}_last_heartbeat", heartbeat),
        _diagnostic(topics, f"{device}_battery", battery),
    ]


def _diagnostic(topics: Topics, object_id: str, extra: Config) -> tuple[str, Config]:
    node = f"needlecare_{BRIDGE}"
    config = {
        **extra,
        **identity("sensor", node, object_id),
        "entity_category": DIAGNOSTIC,
        "availability_topic": topics.status,
        "state_topic": health_topic(topics),
        "device": _bridge_device(),
    }
    if "json_attributes_template" in config:
        config["json_attributes_topic"] = health_topic(topics)
    _bind_availability(config, topics.status)
    return config_topic(topics, "sensor", node, object_id), config


def removal_topics(topics: Topics, profile: str) -> list[str]:
    """The config topics to empty so Home Assistant removes a profile's entities."""
    return [topic for topic, _ in profile_entities(topics, profile, None)]


def device_removal_topics(topics: Topics, device: str) -> list[str]:
    """The config topics to empty so Home Assistant removes a device's diagnostics."""
    return [topic for topic, _ in device_entities(topics, device)]
