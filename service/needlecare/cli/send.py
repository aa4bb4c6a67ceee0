"""Sending commands to the running daemon through the broker."""

import json
import time
from typing import Any

import click

from needlecare.config import NeedlecareConfig
from needlecare.domain.topics import Topics
from needlecare_integrations.mqtt.oneshot import PublishError, publish_all
from needlecare_integrations.store import SqliteStore, StoreError

NOT_CONFIRMED = 3


def send_command(
    config: NeedlecareConfig, profile: str, command: dict[str, Any], *, wait: float
) -> int:
    """Publish ``command`` and wait until the daemon has recorded it.

    Returns the exit code: 0 recorded, 3 sent but not (yet) recorded, 5 not sent.
    """
    topics = Topics(config.mqtt.base_topic, config.mqtt.discovery_prefix)
    payload = json.dumps(command).encode()
    try:
        publish_all(config.mqtt, [(topics.command(profile), payload)])
    except PublishError as error:
        click.echo(f"error: {error}", err=True)
        return 5
    event_id = str(command["event_id"])
    if _recorded(config, event_id, wait):
        click.echo(f"recorded: {command['action']} for {profile} (event {event_id})")
        return 0
    click.echo(
        f"sent, but the daemon has not recorded event {event_id} within {wait:g} s;"
        " it will when it runs (the broker keeps the command).",
        err=True,
    )
    return NOT_CONFIRMED


def _recorded(config: NeedlecareConfig, event_id: str, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while True:
        try:
            store = SqliteStore.open_read_only(config.store.path)
            try:
                if store.has_event(event_id):
                    return True
            finally:
                store.close()
        except StoreError:
            pass  # the daemon may not have created the file yet
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
