"""Retained MQTT topics as projections of the database: each profile's state and prompt.

They are recomputed after every change and at each local midnight, published
only when they differ from what was last published, and all published again
after every (re)connect, so the broker can never hold the only copy.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from needlecare.app.aftercare import Aftercare
from needlecare.app.notifications import current_prompt, notification_json
from needlecare.domain.profile_state import OpenPrompt, profile_state, to_json
from needlecare.domain.topics import Topics


@dataclass
class Projections:
    """Computes the retained payloads and remembers what was last published."""

    aftercare: Aftercare
    topics: Topics
    published: dict[str, bytes] = field(default_factory=dict)

    def forget(self) -> None:
        """After a reconnect: publish everything again."""
        self.published.clear()

    def updates(self, profiles: Iterable[str], now: datetime) -> list[tuple[str, bytes]]:
        """(topic, payload) pairs that changed; empty payload clears a retained prompt."""
        changes = []
        for profile in sorted(set(profiles)):
            for topic, payload in self._payloads(profile, now):
                if self.published.get(topic) != payload:
                    changes.append((topic, payload))
        return changes

    def mark_published(self, topic: str, payload: bytes) -> None:
        self.published[topic] = payload

    def _payloads(self, profile: str, now: datetime) -> list[tuple[str, bytes]]:
        care = self.aftercare
        open_prompts = care.open_prompts(profile, now)
        last = care.store.last_treated_session(profile, exclude=None)
        protocol = care.protocol_for(last) if last else care.protocols["home"]
        state = profile_state(
            care.profile(profile),
            last,
            protocol,
            tuple(
                OpenPrompt(r.id, r.kind, r.title, r.severity, r.due_at, r.message, r.expires_at)
                for r in open_prompts
            ),
            now,
            display_name=care.config.profiles[profile].display_name,
        )
        prompt = current_prompt(open_prompts)
        return [
            (self.topics.state(profile), json.dumps(to_json(state)).encode()),
            (
                self.topics.prompt(profile),
                b"" if prompt is None else notification_json(prompt).encode(),
            ),
        ]
