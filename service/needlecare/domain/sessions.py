"""A treatment session as the journal keeps it: its status, its id, whether it treated.

The rules that make sessions from events are in :mod:`needlecare.domain.session_rules`;
this module needs no payload model, so the store and the config load without them.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

Setting = Literal["home", "professional"]


class SessionStatus(StrEnum):
    """Where a session stands."""

    OPEN = "open"
    COMPLETED = "completed"
    END_INFERRED = "end_inferred"
    ABORTED = "aborted"
    NO_NEEDLING = "no_needling"  # ended before any real needling: plans nothing
    VOIDED = "voided"  # logged by mistake: kept in the journal, ignored by the plan


# A session that needled for less than this did not treat the skin (a false start).
MIN_NEEDLING = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Session:
    """One treatment session; ``started_at`` is None when only its end was seen."""

    id: str
    profile: str
    device_id: str | None
    setting: Setting
    status: SessionStatus
    started_at: datetime | None
    ended_at: datetime | None
    last_seen_at: datetime
    source: str = "device"
    needle_depth_mm: float | None = None
    zones: tuple[str, ...] = ()
    session_ref: str | None = None
    passes: int | None = None
    duration_s: int | None = None

    @property
    def is_open(self) -> bool:
        return self.status is SessionStatus.OPEN


def session_id_for(event_id: str) -> str:
    """A stable id derived from the event that created the session.

    Replaying the same events always yields the same ids, which later keeps
    plans built from a session idempotent.
    """
    return "ses_" + hashlib.sha256(event_id.encode()).hexdigest()[:16]


def needs_aftercare(session: Session) -> bool:
    """Whether the skin was treated: aborted sessions count unless nothing was needled."""
    if session.status is SessionStatus.ABORTED:
        return session.duration_s is None or session.duration_s > 0
    return session.status in (SessionStatus.COMPLETED, SessionStatus.END_INFERRED)
