"""Reminder and outbox tables, sharing the journal's single writer connection."""

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from needlecare.domain.outbox import OutboxItem, OutboxStatus
from needlecare.domain.protocol import Channel, Escalation, Severity
from needlecare.domain.reminders import Reminder, ReminderStatus

Run = Callable[..., sqlite3.Cursor]
ToDb = Callable[[datetime], str]
FromDb = Callable[[str], datetime]

_REMINDER_FIELDS = (
    "id", "session_id", "profile", "kind", "title", "message", "severity", "channels",
    "needs_ack", "escalation", "status", "due_at", "planned_at", "created_at", "expires_at",
    "delivered_at", "acked_at", "escalation_level", "next_check_at", "rounds",
)  # fmt: skip
_REMINDER_COLUMNS = ", ".join(_REMINDER_FIELDS)
# One statement for every save: built once, so each save only binds its values.
_SAVE_REMINDER = (
    f"INSERT INTO reminders ({_REMINDER_COLUMNS})"  # noqa: S608 - fixed names
    f" VALUES ({', '.join(f':{name}' for name in _REMINDER_FIELDS)})"
    " ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _REMINDER_FIELDS if name != "id")
)
_OUTBOX_FIELDS = (
    "id", "key", "channel", "target", "payload", "reminder_id", "profile", "not_before",
    "created_at", "status", "attempts", "last_error", "sent_at",
)  # fmt: skip
_OUTBOX_COLUMNS = ", ".join(_OUTBOX_FIELDS)


class ReminderTable:
    """Reminders: upserted whole, found by due time, profile or session."""

    def __init__(self, run: Run, to_db: ToDb, from_db: FromDb) -> None:
        self._run = run
        self._to_db = to_db
        self._from_db = from_db

    def _opt(self, moment: datetime | None) -> str | None:
        return None if moment is None else self._to_db(moment)

    def save(self, reminder: Reminder) -> None:
        same = reminder.planned_at == reminder.due_at
        values: dict[str, Any] = {
            "id": reminder.id,
            "session_id": reminder.session_id,
            "profile": reminder.profile,
            "kind": reminder.kind,
            "title": reminder.title,
            "message": reminder.message,
            "severity": reminder.severity.value,
            "channels": _channels_text(reminder.channels),
            "needs_ack": int(reminder.needs_ack),
            "escalation": _escalation_text(reminder.escalation),
            "status": reminder.status.value,
            "due_at": self._to_db(reminder.due_at),
            # The first due time: not repeated while it is the due time (schema 6).
            "planned_at": None if same else self._to_db(reminder.planned_at),
            "created_at": self._to_db(reminder.created_at),
            "expires_at": self._opt(reminder.expires_at),
            "delivered_at": self._opt(reminder.delivered_at),
            "acked_at": self._opt(reminder.acked_at),
            "escalation_level": reminder.escalation_level,
            "next_check_at": self._opt(reminder.next_check_at),
            "rounds": reminder.rounds,
        }
        self._run(_SAVE_REMINDER, values)

    def get(self, reminder_id: str) -> Reminder | None:
        rows = self._select("WHERE id = ?", (reminder_id,))
        return rows[0] if rows else None

    def due(self, now: datetime, limit: int = 500) -> list[Reminder]:
        """Waiting reminders whose time has come, earliest first."""
        return self._select(
            "WHERE status IN ('pending', 'snoozed') AND due_at <= ? ORDER BY due_at LIMIT ?",
            (self._to_db(now), limit),
        )

    def escalations_due(self, now: datetime) -> list[Reminder]:
        return self._select(
            "WHERE next_check_at IS NOT NULL AND next_check_at <= ? ORDER BY next_check_at",
            (self._to_db(now),),
        )

    def next_due_at(self) -> datetime | None:
        return self._min("SELECT min(due_at) FROM reminders WHERE status IN ('pending', 'snoozed')")

    def next_check_at(self) -> datetime | None:
        return self._min("SELECT min(next_check_at) FROM reminders WHERE next_check_at IS NOT NULL")

    def next_expiry_after(self, now: datetime) -> datetime | None:
        return self._min(
            "SELECT min(expires_at) FROM reminders WHERE status IN ('sent', 'late')"
            " AND expires_at > ?",
            (self._to_db(now),),
        )

    def expired_between(self, since: datetime, until: datetime) -> list[Reminder]:
        """Shown prompts that vanished by themselves in (since, until]."""
        return self._select(
            "WHERE status IN ('sent', 'late') AND expires_at > ? AND expires_at <= ?",
            (self._to_db(since), self._to_db(until)),
        )

    def delivered(
        self, profile: str, now: datetime, kinds: Sequence[str] | None = None
    ) -> list[Reminder]:
        """Delivered, unanswered and not expired: the profile's open prompts (of ``kinds``)."""
        # Two seeks on reminders_expiry (the unexpired prompts of every profile, and
        # those without an expiry) instead of one OR, which would read every prompt
        # ever shown.
        only = "" if kinds is None else f" AND kind IN ({', '.join('?' for _ in kinds)})"
        return self._select(
            "WHERE seq IN (SELECT seq FROM reminders WHERE profile = ?"  # noqa: S608 - only "?"s
            " AND status IN ('sent', 'late') AND expires_at > ? UNION ALL"
            " SELECT seq FROM reminders WHERE profile = ?"
            f" AND status IN ('sent', 'late') AND expires_at IS NULL){only} ORDER BY seq",
            (profile, self._to_db(now), profile, *(kinds or ())),
        )

    def waiting_for_profile(self, profile: str) -> list[Reminder]:
        return self._select(
            "WHERE profile = ? AND status IN ('pending', 'snoozed') ORDER BY due_at", (profile,)
        )

    def for_session(self, session_id: str) -> list[Reminder]:
        return self._select("WHERE session_id = ? ORDER BY seq", (session_id,))

    def listing(self, profile: str | None, status: str | None) -> list[Reminder]:
        return self._select(
            "WHERE (:profile IS NULL OR profile = :profile)"
            " AND (:status IS NULL OR status = :status) ORDER BY due_at, seq",
            {"profile": profile, "status": status},
        )

    def recent(self, profile: str | None, status: str | None, limit: int) -> list[Reminder]:
        """The ``limit`` most recently planned reminders, in due order.

        Walks the table backwards by seq and stops at ``limit``: no sort of the
        whole history, which listing() needs for its due order.
        """
        found = self._select(
            "WHERE (:profile IS NULL OR profile = :profile)"
            " AND (:status IS NULL OR status = :status) ORDER BY seq DESC LIMIT :limit",
            {"profile": profile, "status": status, "limit": limit},
        )
        return sorted(found, key=lambda reminder: reminder.due_at)

    def _min(self, sql: str, params: tuple[Any, ...] = ()) -> datetime | None:
        value = self._run(sql, params).fetchone()[0]
        return None if value is None else self._from_db(value)

    def _select(self, where: str, params: tuple[Any, ...] | dict[str, Any]) -> list[Reminder]:
        rows = self._run(f"SELECT {_REMINDER_COLUMNS} FROM reminders {where}", params)  # noqa: S608
        return [self._reminder(row) for row in rows]

    def _reminder(self, row: sqlite3.Row) -> Reminder:
        # By position, in _REMINDER_FIELDS' order: a Row's lookup by name compares
        # the name with each column's in turn.
        (
            reminder_id, session_id, profile, kind, title, message, severity, channels,
            needs_ack, escalation, status, due_at, planned_at, created_at, expires_at,
            delivered_at, acked_at, escalation_level, next_check_at, rounds,
        ) = row  # fmt: skip
        from_db = self._from_db
        due = from_db(due_at)
        return Reminder(
            id=reminder_id,
            session_id=session_id,
            profile=profile,
            kind=kind,
            title=title,
            message=message,
            severity=Severity(severity),
            channels=_channels(channels),
            needs_ack=bool(needs_ack),
            escalation=_escalation(escalation),
            status=ReminderStatus(status),
            due_at=due,
            planned_at=due if planned_at is None else from_db(planned_at),
            created_at=from_db(created_at),
            expires_at=None if expires_at is None else from_db(expires_at),
            delivered_at=None if delivered_at is None else from_db(delivered_at),
            acked_at=None if acked_at is None else from_db(acked_at),
            escalation_level=escalation_level,
            next_check_at=None if next_check_at is None else from_db(next_check_at),
            rounds=rounds,
        )


# A handful of protocol steps give every reminder's channels and ladder: their stored
# text is decoded (and written) once each, not once per row.
@lru_cache(maxsize=256)
def _channels(text: str) -> tuple[Channel, ...]:
    return tuple(Channel(c) for c in json.loads(text))


@lru_cache(maxsize=256)
def _channels_text(channels: tuple[Channel, ...]) -> str:
    return json.dumps([c.value for c in channels])


@lru_cache(maxsize=256)
def _escalation(text: str) -> tuple[Escalation, ...]:
    return tuple(
        Escalation(
            after=timedelta(seconds=e["after_s"]), channels=tuple(Channel(c) for c in e["channels"])
        )
        for e in json.loads(text)
    )


@lru_cache(maxsize=256)
def _escalation_text(escalation: tuple[Escalation, ...]) -> str:
    return json.dumps(
        [
            {"after_s": e.after.total_seconds(), "channels": [c.value for c in e.channels]}
            for e in escalation
        ]
    )


class OutboxTable:
    """Deliveries waiting to be sent, in the order they were written."""

    def __init__(self, run: Run, to_db: ToDb, from_db: FromDb) -> None:
        self._run = run
        self._to_db = to_db
        self._from_db = from_db

    def add(self, item: OutboxItem) -> bool:
        """Queue a delivery; False when one with the same key exists already."""
        cursor = self._run(
            "INSERT OR IGNORE INTO outbox (key, channel, target, payload, reminder_id, profile,"
            " not_before, created_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
            (
                item.key,
                item.channel,
                item.target,
                item.payload,
                item.reminder_id,
                item.profile,
                self._to_db(item.not_before),
                self._to_db(item.created_at),
            ),
        )
        return cursor.rowcount == 1

    def ready(self, now: datetime, channels: tuple[str, ...], limit: int = 200) -> list[OutboxItem]:
        marks = ", ".join("?" for _ in channels)
        return self._select(
            f"WHERE status = 'pending' AND not_before <= ? AND channel IN ({marks})"
            " ORDER BY id LIMIT ?",
            (self._to_db(now), *channels, limit),
        )

    def oldest_retry(self, channels: tuple[str, ...]) -> OutboxItem | None:
        """The oldest pending item that has failed before: nothing may overtake it."""
        marks = ", ".join("?" for _ in channels)
        found = self._select(
            f"WHERE status = 'pending' AND attempts > 0 AND channel IN ({marks})"
            " ORDER BY id LIMIT 1",
            channels,
        )
        return found[0] if found else None

    def next_not_before(
        self, channels: tuple[str, ...], *, after: datetime | None = None
    ) -> datetime | None:
        """The earliest time a pending item may go out (only those later than ``after``)."""
        marks = ", ".join("?" for _ in channels)
        later = "" if after is None else " AND not_before > ?"
        value = self._run(
            f"SELECT min(not_before) FROM outbox WHERE status = 'pending'"  # noqa: S608
            f" AND channel IN ({marks}){later}",
            channels if after is None else (*channels, self._to_db(after)),
        ).fetchone()[0]
        return None if value is None else self._from_db(value)

    def mark_sent(self, item_id: int, now: datetime) -> None:
        self._run(
            "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1"
            " WHERE id = ? AND status = 'pending'",
            (self._to_db(now), item_id),
        )

    def mark_failed(self, item_id: int, error: str, *, retry_at: datetime | None) -> None:
        """Record a failed attempt; retry at ``retry_at``, or give up when None."""
        if retry_at is None:
            self._run(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?"
                " WHERE id = ?",
                (error, item_id),
            )
            return
        self._run(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, not_before = ?"
            " WHERE id = ?",
            (error, self._to_db(retry_at), item_id),
        )

    def postpone(self, item_id: int, not_before: datetime) -> None:
        self._run(
            "UPDATE outbox SET not_before = ? WHERE id = ? AND status = 'pending'",
            (self._to_db(not_before), item_id),
        )

    def cancel(self, item_id: int) -> None:
        self._run(
            "UPDATE outbox SET status = 'cancelled' WHERE id = ? AND status = 'pending'", (item_id,)
        )

    def cancel_for_reminder(self, reminder_id: str) -> int:
        cursor = self._run(
            "UPDATE outbox SET status = 'cancelled' WHERE reminder_id = ? AND status = 'pending'",
            (reminder_id,),
        )
        return cursor.rowcount

    def listing(self, status: str | None = None) -> list[OutboxItem]:
        return self._select(
            "WHERE (:status IS NULL OR status = :status) ORDER BY id", {"status": status}
        )

    def _select(self, where: str, params: tuple[Any, ...] | dict[str, Any]) -> list[OutboxItem]:
        rows = self._run(f"SELECT {_OUTBOX_COLUMNS} FROM outbox {where}", params)  # noqa: S608
        return [
            OutboxItem(
                id=row["id"],
                key=row["key"],
                channel=row["channel"],
                target=row["target"],
                payload=row["payload"],
                reminder_id=row["reminder_id"],
                profile=row["profile"],
                not_before=self._from_db(row["not_before"]),
                created_at=self._from_db(row["created_at"]),
                status=OutboxStatus(row["status"]),
                attempts=row["attempts"],
                last_error=row["last_error"],
                sent_at=None if row["sent_at"] is None else self._from_db(row["sent_at"]),
            )
            for row in rows
        ]
