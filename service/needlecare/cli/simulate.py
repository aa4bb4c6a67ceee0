"""A realistic treatment, published to the broker so a newcomer can watch the daemon work."""

import json
import time
import uuid
from datetime import timedelta
from typing import Any

import click

from needlecare.clock import SystemClock
from needlecare.config import NeedlecareConfig
from needlecare.domain.topics import Topics
from needlecare_integrations.mqtt.oneshot import PublishError, publish_all


def _first(options: dict[str, Any], chosen: str | None, kind: str) -> str:
    if chosen is not None:
        return chosen
    if not options:
        msg = f"no {kind} configured: pass --{kind} or add one to the config"
        raise click.UsageError(msg)
    return next(iter(options))


def simulate_session(
    config: NeedlecareConfig, *, device: str | None, mirror: str | None, pace: float, depth: float
) -> int:
    """Publish: cleanse at the mirror, a session with heartbeats, then aftercare events."""
    device_id = _first(config.devices, device, "device")
    mirror_id = _first(config.mirrors, mirror, "mirror")
    profile = (
        config.devices[device_id].owner
        if device_id in config.devices
        else next(iter(config.profiles))
    )
    topics = Topics(config.mqtt.base_topic, config.mqtt.discovery_prefix)
    run = uuid.uuid4().hex[:8]
    start = SystemClock().now()
    ref = f"sim-{run}"

    def stamp(minutes: float) -> str:
        return (start + timedelta(minutes=minutes)).isoformat()

    dev, mir = topics.device_event(device_id), topics.mirror_event(mirror_id)
    # (minutes before now, topic, event): a 15-minute session that just ended.
    steps: list[tuple[float, str, dict[str, Any]]] = [
        (-20, mir, {"type": "cleansed", "profile": profile}),
        (
            -16,
            dev,
            {
                "type": "session_started",
                "needle_depth_mm": depth,
                "zones": ["forehead", "cheeks"],
                "session_ref": ref,
            },
        ),
        (-8, dev, {"type": "heartbeat", "battery_pct": 81, "cartridge_uses": 3}),
        (-1, dev, {"type": "session_ended", "session_ref": ref, "passes": 4, "duration_s": 900}),
        (
            0,
            mir,
            {
                "type": "skin_check",
                "profile": profile,
                "redness": 62,
                "note": "flushed, as expected",
            },
        ),
        (
            0,
            mir,
            {
                "type": "product_applied",
                "profile": profile,
                "product": "Calming serum",
                "ingredients": ["hyaluronic acid", "panthenol"],
            },
        ),
    ]
    for n, (minutes, topic, fields) in enumerate(steps):
        body = {"event_id": f"sim-{run}-{n}", "timestamp": stamp(minutes), **fields}
        try:
            publish_all(config.mqtt, [(topic, json.dumps(body).encode())])
        except PublishError as error:
            click.echo(f"error: {error}", err=True)
            return 5
        click.echo(f"published {body['type']:<16} to {topic}")
        time.sleep(pace)
    click.echo(f"done: see `needlecare sessions --profile {profile}`")
    return 0
