"""Server-Sent Events: one event per change of a reminder, a session or a profile's state.

The core thread is the only writer and knows nothing of the web app. The feed
notices its commits by SQLite's data_version on the web app's read-only
connection (one pragma every half second, and only while someone listens),
then compares what it sees with what it saw and sends one event per difference.
(File sizes and times were tried first, but the WAL keeps its size once it is
recycled and some file systems keep times to the second: two commits in one
second could look like one.)
"""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from needlecare.cli import output
from needlecare.logs import get_logger
from needlecare.web.reads import Reads

log = get_logger(__name__)

POLL_S = 0.5
PING_S = 15.0
Snapshot = tuple[dict[str, str], dict[str, str], dict[str, str]]


def sse(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class ChangeFeed:
    """Fans changes out to every open event stream; closed on shutdown."""

    def __init__(self, reads: Reads, now: Callable[[], datetime]) -> None:
        self.reads = reads
        self.now = now
        self.queues: set[asyncio.Queue[bytes | None]] = set()
        self.closed = False
        self._task: asyncio.Task[None] | None = None

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        for queue in self.queues:
            queue.put_nowait(sse(kind, data))

    def close(self) -> None:
        """End every stream (so a page left open cannot hold shutdown)."""
        self.closed = True
        for queue in self.queues:
            queue.put_nowait(None)
        if self._task is not None:
            self._task.cancel()

    async def stream(self) -> AsyncIterator[bytes]:
        """One client's events until it leaves or the server stops."""
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        if self.closed:
            return
        self.queues.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._watch())
        try:
            yield b"retry: 2000\n: connected\n\n"
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), PING_S)
                except TimeoutError:
                    item = b": ping\n\n"
                if item is None:
                    return
                yield item
        finally:
            self.queues.discard(queue)

    async def _watch(self) -> None:
        version = self.reads.store.data_version()
        seen = self._snapshot()
        while self.queues and not self.closed:
            await asyncio.sleep(POLL_S)
            current = self.reads.store.data_version()
            if current == version:
                continue
            version = current
            try:
                seen = self._compare(seen)
            except Exception as error:  # a read racing a migration; try again next time
                log.warning("web_feed_failed", error=str(error))

    def _snapshot(self) -> Snapshot:
        now = self.now()
        states = {p: json.dumps(s, sort_keys=True) for p, s in self.reads.states(now).items()}
        return states, self.reads.live_reminders(now), self.reads.watched_sessions()

    def _compare(self, before: Snapshot) -> Snapshot:
        after = self._snapshot()
        old_states, old_reminders, old_sessions = before
        states, reminders, sessions = after
        for reminder_id in sorted(set(old_reminders) | set(reminders)):
            if old_reminders.get(reminder_id) != reminders.get(reminder_id):
                reminder = self.reads.reminder(reminder_id)
                if reminder is not None:
                    self.publish("reminder", output.reminder_row(reminder))
        for session_id in sorted(set(old_sessions) | set(sessions)):
            if old_sessions.get(session_id) != sessions.get(session_id):
                status = sessions.get(session_id)
                if status is None:  # left the watched set, e.g. voided: say what it is now
                    session = self.reads.session(session_id)
                    status = session.status.value if session is not None else None
                self.publish("session", {"id": session_id, "status": status})
        for profile, state in states.items():
            if old_states.get(profile) != state:
                self.publish("state", json.loads(state))
        return after
