"""The web app's reads: a read-only store connection, as the command line uses.

Everything here runs on the web server's event-loop thread, which owns the
connection. The daemon's core thread stays the only writer.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from needlecare.app.aftercare import Aftercare
from needlecare.app.projections import Projections
from needlecare.cli import output
from needlecare.config import NeedlecareConfig
from needlecare.domain.protocol import build_protocols
from needlecare.domain.reminders import Reminder
from needlecare.domain.sessions import Session
from needlecare.domain.topics import Topics
from needlecare_integrations.store import SqliteStore


@dataclass
class Reads:
    """Read-only queries, shaped like the command line's ``--json`` output."""

    config: NeedlecareConfig
    topics: Topics
    _store: SqliteStore | None = None
    _projections: Projections | None = field(default=None, repr=False)

    @property
    def store(self) -> SqliteStore:
        if self._store is None:
            self._store = SqliteStore.open_read_only(self.config.store.path)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def states(self, now: datetime) -> dict[str, dict[str, Any]]:
        """Each profile's state JSON, exactly as the retained state topic carries it."""
        if self._projections is None:
            care = Aftercare(
                store=self.store,
                config=self.config,
                topics=self.topics,
                protocols=build_protocols(self.config.protocol),
            )
            self._projections = Projections(care, self.topics)
        self._projections.forget()
        wanted = {self.topics.state(p): p for p in self.config.profiles}
        states = {}
        for topic, payload in self._projections.updates(self.config.profiles, now):
            if topic in wanted:
                state = json.loads(payload)
                state.setdefault("display_name", self._display_name(wanted[topic]))
                states[wanted[topic]] = state
        return {p: states[p] for p in self.config.profiles if p in states}

    def _display_name(self, profile: str) -> str:
        return self.config.profiles[profile].display_name or profile

    def sessions(self, profile: str | None, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` sessions, newest first."""
        return [output.session_row(s) for s in self.store.recent_sessions(profile, limit)]

    def session(self, session_id: str) -> Session | None:
        return self.store.session(session_id)

    def reminders(
        self, profile: str | None, status: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """The ``limit`` most recently planned reminders, in due order."""
        found = self.store.reminders.recent(profile, status, limit)
        return [output.reminder_row(r) for r in found]

    def reminder(self, reminder_id: str) -> Reminder | None:
        return self.store.reminders.get(reminder_id)

    def live_reminders(self, now: datetime) -> dict[str, str]:
        """id -> status of the prompts being shown and of each profile's latest session's plan.

        What an ack, a snooze or a delivery changes. The latest session's plan is
        watched as a whole, so a prompt delivered and acknowledged between two
        looks is still reported. Other pending reminders are left out: a store may
        hold thousands, and until one is delivered no page shows it.
        """
        live: dict[str, str] = {}
        for profile in self.config.profiles:
            last = self.store.last_treated_session(profile, exclude=None)
            if last is not None:
                live |= {r.id: r.status.value for r in self.store.reminders.for_session(last.id)}
            live |= {r.id: r.status.value for r in self.store.reminders.delivered(profile, now)}
        return live

    def watched_sessions(self) -> dict[str, str]:
        """id -> status of open sessions and each profile's latest treated one."""
        watched = {s.id: s.status.value for s in self.store.open_sessions()}
        for profile in self.config.profiles:
            last = self.store.last_treated_session(profile, exclude=None)
            if last is not None:
                watched[last.id] = last.status.value
        return watched

    def dead_letters(self) -> list[dict[str, Any]]:
        """Newest first."""
        return [output.dead_letter_row(d) for d in reversed(self.store.dead_letters())]

    def skin_checks(self, profile: str | None) -> list[dict[str, Any]]:
        return [output.record(c) for c in self.store.skin_checks(profile)]

    def rejection(self, topic: str, event_id: str) -> str | None:
        """The reason the newest dead letter on ``topic`` that names ``event_id`` gives."""
        for letter in reversed(self.store.dead_letters()):
            if letter.topic == topic and event_id in letter.payload_excerpt:
                return letter.reason
        return None
