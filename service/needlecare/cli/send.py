"""Sending commands to the running daemon through the broker.

The daemon is the only writer of the store, so ack, snooze, log-session and
void-session go to it as MQTT commands. Such a command is only worth sending
when a daemon holds the store's lock: with none running, nothing is sure to
pick it up (the broker keeps it only while it still has the daemon's session),
so the command line refuses instead of promising. Once sent, it waits until the
daemon has recorded the command's event, and says what came of it; when that
does not happen in time it says so and exits non-zero.
"""

import json
import time
from collections.abc import Callable
from typing import Any

import click

from needlecare.config import NeedlecareConfig
from needlecare.domain.topics import Topics
from needlecare_integrations.mqtt.oneshot import PublishError, publish_all
from needlecare_integrations.store import SqliteStore, StoreError
from needlecare_integrations.store.lock import StoreLockError, holder_pid, is_held, lock_path

NOT_CONFIRMED = 3
STORE_UNUSABLE = 4
NOT_SENT = 5
NO_DAEMON = 7

Outcome = Callable[[SqliteStore], str]


def send_command(
    config: NeedlecareConfig,
    profile: str,
    command: dict[str, Any],
    *,
    wait: float,
    outcome: Outcome,
    check_with: str,
) -> int:
    """Publish ``command`` to a running daemon and wait until it has recorded it.

    ``outcome`` reads the store after the daemon recorded the command and says
    what came of it; ``check_with`` is the command that shows the result, named
    when the daemon did not confirm in time. Returns the exit code: 0 recorded,
    3 sent but not confirmed, 4 store unusable, 5 not sent, 7 no daemon running.
    """
    action = str(command["action"])
    store_path = config.store.path
    try:
        running = is_held(store_path)
    except StoreLockError as error:
        click.echo(f"error: {error}", err=True)
        return STORE_UNUSABLE
    if not running:
        click.echo(
            f"error: no needlecare daemon is running on the store {store_path} (nobody holds"
            f" {lock_path(store_path)}), so nothing would record this {action}; nothing was sent."
            " Start the daemon (needlecare run) and try again.",
            err=True,
        )
        return NO_DAEMON
    topics = Topics(config.mqtt.base_topic, config.mqtt.discovery_prefix)
    try:
        publish_all(config.mqtt, [(topics.command(profile), json.dumps(command).encode())])
    except PublishError as error:
        click.echo(f"error: {error}; nothing was sent", err=True)
        return NOT_SENT
    event_id = str(command["event_id"])
    store = _recorded(config, event_id, wait)
    if store is None:
        pid = holder_pid(store_path)
        daemon = f"the daemon (pid {pid})" if pid is not None else "no daemon"
        click.echo(
            f"error: the {action} reached the broker, but {daemon} has not recorded it within"
            f" {wait:g} s (event {event_id}). The daemon records it later only if it is still"
            " running and the broker still holds its session; check with"
            f" `needlecare {check_with}` before sending it again.",
            err=True,
        )
        return NOT_CONFIRMED
    try:
        click.echo(outcome(store))
    finally:
        store.close()
    return 0


def _recorded(config: NeedlecareConfig, event_id: str, wait: float) -> SqliteStore | None:
    """A read-only store once it holds ``event_id``; None when ``wait`` runs out first."""
    deadline = time.monotonic() + wait
    while True:
        try:
            store = SqliteStore.open_read_only(config.store.path)
        except StoreError:
            store = None  # the daemon may not have created the file yet
        if store is not None:
            if store.has_event(event_id):
                return store
            store.close()
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)
