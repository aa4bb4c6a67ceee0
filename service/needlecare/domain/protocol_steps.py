"""The building blocks of the care protocol: channels, severities and steps.

Kept apart from :mod:`needlecare.domain.protocol` so the built-in defaults can be
written as data without an import cycle.
"""

from datetime import time, timedelta
from enum import StrEnum
from typing import Final, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from needlecare.i18n import LocalText, LocalTitle

PLAN_STEPS: Final = (
    "soothe",
    "serum_window",
    "actives_pause",
    "actives_resume",
    "window_open",
    "overdue",
)
GUARD_STEPS: Final = (
    "too_soon",
    "depth_limit",
    "restricted_product",
    "redness_advice",
    "cleanse_first",
    "missed_summary",
)
STEP_NAMES: Final = PLAN_STEPS + GUARD_STEPS
# Due at the end of the actives pause, so its time follows ``actives_pause``.
DERIVED_TIMING: Final = frozenset({"actives_resume"})
UNTIMED_STEPS: Final = frozenset(GUARD_STEPS) | DERIVED_TIMING


class Channel(StrEnum):
    """Where a prompt is delivered (PRODUCT §3)."""

    DASHBOARD = "dashboard"
    MIRROR = "mirror"
    MOBILE = "mobile"
    VOICE = "voice"


class Severity(StrEnum):
    """How urgent a prompt is; the notification JSON carries it as is."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


Channels = tuple[Channel, ...]


def reject_unquoted_time(value: object) -> object:
    """Refuse numbers where a wall-clock time is expected.

    YAML 1.1 reads an unquoted ``09:00`` as the base-60 number 540, which pydantic
    would take as seconds after midnight: 00:09, silently.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise PydanticCustomError("time_unquoted", 'write the time in quotes, like "19:00"')
    return value


def seconds_from_text(value: object) -> object:
    """Read a digits-only string as seconds, as the number would be.

    Environment overrides are always text, and pydantic reads "7200" as a malformed
    ISO duration rather than 7200 seconds.
    """
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def check_wall_time(value: time | None) -> time | None:
    """A local time of day carries no offset: the profile's time zone supplies it."""
    if value is not None and value.tzinfo is not None:
        raise PydanticCustomError("time_with_offset", "give a local time without an offset")
    return value


def check_timing(offset: timedelta | None, day: int | None, at: time | None) -> None:
    """At most one timing form: ``offset``, or ``day`` together with ``at``."""
    if offset is not None and (day is not None or at is not None):
        raise PydanticCustomError("timing_conflict", "give either offset or day and at, not both")
    if (day is None) != (at is None):
        raise PydanticCustomError("timing_incomplete", "day and at must be given together")


class Escalation(BaseModel):
    """Re-deliver an unacknowledged prompt on more channels after a while."""

    # Built on first use: the config's overrides embed these models' schemas, and
    # the steps themselves are validated once a protocol is built, after the start.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    after: timedelta = Field(
        gt=timedelta(0), description="Time since the first delivery, e.g. PT30M."
    )
    channels: Channels = Field(min_length=1, description="Channels added at this stage.")


class Step(BaseModel):
    """One prompt of the protocol: when it is due, what it says, where it goes.

    Timing is ``offset`` after the session end, or ``day`` days after the session
    end's local date at local time ``at``. Guards and ``actives_resume`` have neither:
    guards are due when their trigger arrives, ``actives_resume`` when the pause ends.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    kind: str = Field(description="The step name; notifications carry it as `kind`.")
    enabled: bool = Field(default=True, description="False drops the step entirely.")
    offset: timedelta | None = Field(
        default=None, ge=timedelta(0), description="Due this long after the session end."
    )
    day: int | None = Field(
        default=None, ge=0, le=366, description="Days after the session end's local date."
    )
    at: time | None = Field(default=None, description='Local time of day with day, "HH:MM".')
    title: LocalTitle = Field(
        description="Short headline: one text, or one per language ({en: ..., de: ...})."
    )
    message: LocalText = Field(
        description="Body; placeholders like {until} or {window_start} are filled in. "
        "One text, or one per language.",
    )
    severity: Severity = Field(default=Severity.INFO, description="info, warning or critical.")
    channels: Channels = Field(min_length=1, description="Where the prompt is delivered.")
    needs_ack: bool = Field(default=False, description="Whether it waits for acknowledgement.")
    escalation: tuple[Escalation, ...] = Field(
        default=(), description="Extra channels while unacknowledged, by time since delivery."
    )
    expires_after: timedelta | None = Field(
        default=None,
        gt=timedelta(0),
        description="The prompt vanishes by itself after this (the mirror `timer`).",
    )
    source: str = Field(default="", description="The care rule this step implements.")

    _unquoted_at = field_validator("at", mode="before")(reject_unquoted_time)
    _wall_at = field_validator("at")(check_wall_time)

    @field_validator("escalation")
    @classmethod
    def _in_order(cls, value: tuple[Escalation, ...]) -> tuple[Escalation, ...]:
        return tuple(sorted(value, key=lambda stage: stage.after))

    @model_validator(mode="after")
    def _one_timing(self) -> Self:
        check_timing(self.offset, self.day, self.at)
        return self

    @property
    def timed(self) -> bool:
        """Whether the step carries its own time (offset or day and at)."""
        return self.offset is not None or self.day is not None
