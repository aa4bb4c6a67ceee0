"""``needlecare status``: what the daemon is doing, from the broker and the database."""

from datetime import datetime, tzinfo
from typing import Any

from needlecare.cli.output import cell, table
from needlecare.clock import SystemClock
from needlecare.config import NeedlecareConfig
from needlecare.domain.topics import Topics
from needlecare_integrations.mqtt.oneshot import PublishError, read_retained
from needlecare_integrations.store import SqliteStore
from needlecare_integrations.store.lock import StoreLockError, holder_pid

RECENT = 5


def broker_status(config: NeedlecareConfig) -> str:
    """The daemon's retained status (online/offline), or why it could not be read."""
    topics = Topics(config.mqtt.base_topic, config.mqtt.discovery_prefix)
    try:
        status = read_retained(config.mqtt, topics.status)
    except PublishError as error:
        return f"broker unreachable ({error})"
    return status or "unknown (no retained status: has the daemon ever run?)"


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
        "daemon_pid": _daemon_pid(config),
        "broker": f"{config.mqtt.host}:{config.mqtt.port}",
        "store": str(config.store.path),
        "reminders_waiting": len(pending),
        "next_reminder_at": next_due.isoformat() if next_due else None,
        "open_sessions": len(store.open_sessions()),
        "outbox_waiting": by_channel,
        "outbox_last_error": errors[-1] if errors else None,
        "dead_letters": store.count("dead_letters"),
        "dead_letters_dropped": store.retention.dropped_dead_letters(),
        "recent_events": [
            {"at": e.occurred_at.isoformat(), "type": e.type, "source": f"{e.source}/{e.source_id}"}
            for e in events
        ],
        "checked_at": now.isoformat(),
    }


def _daemon_pid(config: NeedlecareConfig) -> int | None:
    """The pid of the daemon holding this store's lock; None when none (or unreadable)."""
    try:
        return holder_pid(config.store.path)
    except StoreLockError:
        return None


def render_status(report: dict[str, Any], zone: tzinfo) -> str:
    """The report for people: times in ``zone``, in the style of every other table."""
    backlog = ", ".join(f"{k}: {v}" for k, v in report["outbox_waiting"].items()) or "empty"
    pid = report.get("daemon_pid")
    running = f"running here as pid {pid}" if pid is not None else "not running on this store"
    lines = [
        f"daemon        {report['daemon']} ({running})",
        f"broker        {report['broker']}",
        f"store         {report['store']}",
        f"reminders     {report['reminders_waiting']} waiting,"
        f" next at {_local(report['next_reminder_at'], zone)}",
        f"sessions      {report['open_sessions']} open",
        f"outbox        {backlog}",
    ]
    if report["outbox_last_error"]:
        lines.append(f"last error    {report['outbox_last_error']}")
    dropped = report["dead_letters_dropped"]
    letters = f"{report['dead_letters']}" + (f" (and {dropped} dropped)" if dropped else "")
    lines += [f"dead letters  {letters}", "", "latest events:"]
    rows = [(_local(e["at"], zone), e["type"], e["source"]) for e in report["recent_events"]]
    lines.append(table(("at", "type", "source"), rows))
    return "\n".join(lines)


def _local(text: str | None, zone: tzinfo) -> str:
    return "-" if text is None else cell(datetime.fromisoformat(text).astimezone(zone))
