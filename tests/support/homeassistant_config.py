"""The configuration directory a test Home Assistant starts from.

No ``default_config``: only what the tests use, so that nothing reaches for the
internet. The voice and mobile channels are recorded where tests can read them:
``script.announce`` turns what it was asked to say into a persistent notification
titled ``voice``, and ``notify.test_phone`` appends each message to a file.

``notify.test_phone`` is a legacy notify service (``command_line``), like the
``notify.mobile_app_*`` services Needlecare calls for actionable phone
notifications: the ``file`` platform has no YAML notify service in 2025.x, and
the entity-based ``notify.send_message`` takes no ``data`` (so no actions).
"""

import json
import shlex
from pathlib import Path
from typing import Any

import yaml

NOTIFY_SERVICE = "test_phone"
NOTIFY_FILE = "test_phone.txt"
VOICE_SCRIPT = "announce"
VOICE_TITLE = "voice"
EVENT_TITLE = "needlecare_reminder event"
TIME_ZONE = "Europe/Berlin"

# Microseconds rather than whole seconds: two announcements within one second
# would otherwise share a notification id, and the second would replace the first.
_VOICE_ID = "voice_{{ (now().timestamp() * 1000000) | int }}"

# Everything but core_config: that step would set up integrations wanting the internet.
_ONBOARDING = {
    "version": 4,
    "minor_version": 1,
    "key": "onboarding",
    "data": {"done": ["core_config"]},
}


# homeassistant_api's websocket client closes with status code 0, which HA logs as a
# warning ("Received non-Text message") on every disconnect: noise in every log tail.
_QUIET_LOGGERS = {"homeassistant.components.websocket_api.http.connection": "error"}


def configuration(port: int, config_dir: Path) -> dict[str, Any]:
    """configuration.yaml for an instance serving HTTP on 127.0.0.1:port."""
    return {
        "homeassistant": {
            "name": "Needlecare test home",
            "time_zone": TIME_ZONE,
            "latitude": 52.52,
            "longitude": 13.405,
            "elevation": 34,
            "unit_system": "metric",
            "currency": "EUR",
            "country": "DE",
        },
        "http": {"server_host": "127.0.0.1", "server_port": port},
        "api": None,
        "websocket_api": None,
        "config": None,
        "onboarding": None,
        "input_boolean": None,
        # A person with no trackers: never 'home', for the voice channel's home check.
        "person": [{"name": "Away Tester", "id": "away_tester"}],
        "script": {VOICE_SCRIPT: _voice_script()},
        "automation": [_event_recorder()],
        "command_line": [{"notify": _phone(config_dir)}],
        "logger": {"default": "warning", "logs": _QUIET_LOGGERS},
    }


def _phone(config_dir: Path) -> dict[str, Any]:
    """A legacy notify service that appends each message (on stdin) as a line."""
    path = shlex.quote(str(config_dir / NOTIFY_FILE))
    return {"name": NOTIFY_SERVICE, "command": f"cat >> {path}; echo >> {path}"}


def _event_recorder() -> dict[str, Any]:
    """An automation that records each needlecare_reminder event as a notification."""
    return {
        "id": "record_needlecare_reminder",
        "alias": "Record needlecare_reminder events",
        "mode": "queued",
        "max": 100,
        "trigger": [{"platform": "event", "event_type": "needlecare_reminder"}],
        "action": [
            {
                "service": "persistent_notification.create",
                "data": {
                    "notification_id": "{{ 'event_' ~ trigger.event.data.reminder_id }}",
                    "title": EVENT_TITLE,
                    "message": "{{ trigger.event.data.kind }} {{ trigger.event.data.profile }}",
                },
            }
        ],
    }


def _voice_script() -> dict[str, Any]:
    """A script standing in for text-to-speech: it records what it was asked to say."""
    return {
        "alias": "Announce (test voice channel)",
        "mode": "queued",  # the default, single, drops a call made while one runs
        "max": 100,
        "fields": {"message": {"description": "What to say", "example": "Time to rest"}},
        "sequence": [
            {
                "service": "persistent_notification.create",
                "data": {
                    "notification_id": _VOICE_ID,
                    "title": VOICE_TITLE,
                    "message": "{{ message }}",
                },
            }
        ],
    }


def write_config_dir(config_dir: Path, port: int) -> None:
    """Write configuration.yaml; on a new directory, also the onboarding state."""
    config_dir.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(configuration(port, config_dir), sort_keys=False)
    (config_dir / "configuration.yaml").write_text(text, encoding="utf-8")
    onboarding = config_dir / ".storage" / "onboarding"
    if not onboarding.exists():
        onboarding.parent.mkdir(exist_ok=True)
        onboarding.write_text(json.dumps(_ONBOARDING), encoding="utf-8")
