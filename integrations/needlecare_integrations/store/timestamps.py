"""How the store writes moments: UTC text whose order is time order.

``2027-01-04T19:00:01`` (the fraction only when there is one: ``...:01.250000``): the
offset is always UTC and so not written. Text order stays time order without a fixed
width: a whole second is a prefix of the same second with a fraction, and sorts first.
Until schema 6 every moment was written in full (``...:01.000000+00:00``, 32 characters
where 19 usually do); migration 6 rewrites those with ``compact``, and ``from_db``
reads both.
"""

from datetime import UTC, datetime


def to_db(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat()


def from_db(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def compact(text: str | None) -> str | None:
    """A stored moment in today's form (migration 6's SQL function); anything else as it is."""
    if text is None:
        return None
    try:
        moment = from_db(text)
    except ValueError:
        return text
    return to_db(moment)
