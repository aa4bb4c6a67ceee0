"""Slugs name devices, mirrors and profiles, and end up inside MQTT topics."""

import re
from typing import Annotated

from pydantic import StringConstraints

SLUG_PATTERN = r"^[a-z0-9_-]{1,64}$"
_SLUG_RE = re.compile(SLUG_PATTERN)

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]


def is_slug(value: str) -> bool:
    """Whether ``value`` may be used as one level of an MQTT topic.

    The pattern rules out MQTT wildcards, separators, ``..``, NUL and anything
    non-ASCII, so a slug can be interpolated into a topic without escaping.
    """
    return _SLUG_RE.fullmatch(value) is not None
