"""``needlecare status``: what the daemon is doing, from the broker and the database."""

import threading
import uuid
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from needlecare.cli.output import table
from needlecare.clock import SystemClock
from needlecare.config import NeedlecareConfig
from needlecare.domain.topics import Topics
from needlecare_integrations.store import SqliteStore

RECENT = 5


def broker_status(config: NeedlecareConfig, timeout: float = 3.0) -> str:
    """The daemon's retained status (online/offline), or why it could not be read."""
    cfg = config.mqtt
    topics = Topics(cfg.base_topic, cfg.discovery_prefix)
    got: list[str] = []
    done = threading.Event()
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"{cfg.client_id}-status-{uuid.uuid4().hex[:6]}"
    )
    if cfg.username is not None:
        client.username_pw_set(
            cfg.username, cfg.password.get_secret_value() if cfg.password else None
        )
    if cfg.tls is not None:
        client.tls_set(
            ca_certs=str(cfg.tls.ca_file) if cfg.tls.ca_file else None,
            certfile=str(cfg.tls.cert_file) if cfg.tls.cert_file else None,
            keyfile=str(cfg.tls.key_file) if cfg.tls.key_file else None,
        )

    def on_message(_client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        got.append(msg.payload.decode(errors="replace"))
        done.set()

    client.on_connect = lambda c, *_: c.subscribe(topics.status)
    client.on_message = on_message
    try:
        client.connect(cfg.host, cfg.port, keepalive=10)
    except OSError as error:
        return f"broker unreachable ({error})"
    client.loop_start()
    try:
        done.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return got[0] if got else "unknown (no retained status: has the daemon ever run?)"


def collect_status(config: NeedlecareConfig, store: SqliteStore) -> dict[str, Any]:
    now = SystemClock().now()
    pending = store.reminders.listing(None, "pending") + store.reminders.listing(None, "snoozed")
    waiting = store.outbox.listing("pending")
    by_channel: dict[str, int] = {}
    for item in waiting:
        by_channel[item.channel] = by_channel.get(item.channel, 0) + 1
    errors = [item.last_error for item in waiting if item.last_error]
    next_due = min((r.due_at for r in pending), default=None)
    events = store.recent_events(RECENT)
    return {
        "daemon": broker_status(config),
        "broker": f"{config.mqtt.host}:{config.mqtt.port}",
        "store": str(config.store.path),
        "reminders_waiting": len(pending),
        "next_reminder_at": next_due.isoformat() if next_due else None,
        "open_sessions": len(store.open_sessions()),
        "outbox_waiting": by_channel,
        "outbox_last_error": errors[-1] if errors else None,
        "dead_letters": store.count("dead_letters"),
        "recent_events": [
            {"at": e.occurred_at.isoformat(), "type": e.type, "source": f"{e.source}/{e.source_id}"}
            for e in events
        ],
        "checked_at": now.isoformat(),
    }


def render_status(report: dict[str, Any]) -> str:
    backlog = ", ".join(f"{k}: {v}" for k, v in report["outbox_waiting"].items()) or "empty"
    lines = [
        f"daemon        {report['daemon']}",
        f"broker        {report['broker']}",
        f"store         {report['store']}",
        f"reminders     {report['reminders_waiting']} waiting,"
        f" next at {report['next_reminder_at'] or '-'}",
        f"sessions      {report['open_sessions']} open",
        f"outbox        {backlog}",
    ]
    if report["outbox_last_error"]:
        lines.append(f"last error    {report['outbox_last_error']}")
    lines += [f"dead letters  {report['dead_letters']}", "", "latest events:"]
    rows = [(e["at"], e["type"], e["source"]) for e in report["recent_events"]]
    lines.append(table(("at", "type", "source"), rows))
    return "\n".join(lines)
