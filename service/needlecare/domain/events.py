"""Inbound payloads: device events, mirror events and profile commands (PRODUCT §2).

Models are strict (no string-to-number coercion) and ignore unknown fields, so a
newer device firmware that adds a field keeps working while a wrong type is
rejected. ``schema_version`` lets later releases change a payload without breaking
older senders.
"""

from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from needlecare.domain.sessions import Setting
from needlecare.domain.slugs import Slug

SUPPORTED_SCHEMA_VERSION = 1

EventId = Annotated[str, Field(min_length=1, max_length=128, description="Unique per event.")]
ReminderId = Annotated[str, Field(min_length=1, max_length=128)]
ShortText = Annotated[str, Field(min_length=1, max_length=128)]
SessionId = Annotated[str, Field(min_length=1, max_length=128)]
NeedleDepth = Annotated[float, Field(ge=0.1, le=3.0, description="Needle depth in mm.")]


# Built on first use (defer_build), not at import: the daemon's start path imports
# these models before it needs them (docs/PERFORMANCE.md, Start).
_DEFERRED = ConfigDict(defer_build=True)


class _Payload(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, defer_build=True)

    timestamp: AwareDatetime | None = Field(
        default=None, description="RFC 3339 with offset; the receipt time when absent."
    )
    schema_version: int = Field(default=1, description="Payload schema version.")

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if not 1 <= value <= SUPPORTED_SCHEMA_VERSION:
            msg = f"unsupported schema_version {value} (newest known: {SUPPORTED_SCHEMA_VERSION})"
            raise ValueError(msg)
        return value


class _Event(_Payload):
    event_id: EventId


class _DeviceEvent(_Event):
    profile: Slug | None = Field(default=None, description="Defaults to the device's owner.")


class SessionStarted(_DeviceEvent):
    """The device started a treatment session."""

    type: Literal["session_started"]
    needle_depth_mm: NeedleDepth | None = None
    zones: tuple[ShortText, ...] = Field(default=(), max_length=20)
    setting: Setting = "home"
    session_ref: ShortText | None = Field(default=None, description="The device's own id.")


class SessionEnded(_DeviceEvent):
    """The device finished a session normally."""

    type: Literal["session_ended"]
    session_ref: ShortText | None = None
    passes: int | None = Field(default=None, ge=0, le=100_000)
    duration_s: int | None = Field(default=None, ge=0, le=86_400)


class SessionAborted(_DeviceEvent):
    """The device stopped a session early."""

    type: Literal["session_aborted"]
    session_ref: ShortText | None = None
    passes: int | None = Field(default=None, ge=0, le=100_000)
    duration_s: int | None = Field(default=None, ge=0, le=86_400)


class Heartbeat(_DeviceEvent):
    """The device is alive; refreshes its last-seen time."""

    type: Literal["heartbeat"]
    battery_pct: int | None = Field(default=None, ge=0, le=100)
    cartridge_uses: int | None = Field(default=None, ge=0, le=1_000_000)


DeviceEvent = Annotated[
    SessionStarted | SessionEnded | SessionAborted | Heartbeat, Field(discriminator="type")
]


class _MirrorEvent(_Event):
    profile: Slug


class Presence(_MirrorEvent):
    """The profile stands in front of the mirror."""

    type: Literal["presence"]


class Cleansed(_MirrorEvent):
    """The profile cleansed and removed makeup (the pre-session rule)."""

    type: Literal["cleansed"]


class SkinCheck(_MirrorEvent):
    """A redness reading taken at the mirror."""

    type: Literal["skin_check"]
    redness: int = Field(ge=0, le=100)
    note: str | None = Field(default=None, max_length=1000)


class ProductApplied(_MirrorEvent):
    """A product went on the skin."""

    type: Literal["product_applied"]
    product: str = Field(min_length=1, max_length=200)
    ingredients: tuple[ShortText, ...] = Field(default=(), max_length=100)


class MirrorAck(_Event):
    """Acknowledges a reminder from the mirror."""

    type: Literal["ack"]
    profile: Slug | None = None
    reminder_id: ReminderId


class MirrorSnooze(_Event):
    """Snoozes a reminder from the mirror."""

    type: Literal["snooze"]
    profile: Slug | None = None
    reminder_id: ReminderId
    minutes: int = Field(ge=1, le=1440)


MirrorEvent = Annotated[
    Presence | Cleansed | SkinCheck | ProductApplied | MirrorAck | MirrorSnooze,
    Field(discriminator="type"),
]


class _Command(_Payload):
    # Home Assistant buttons publish one fixed payload per press, so commands
    # cannot be required to carry a unique id; without one, each is new.
    event_id: EventId | None = None


class LogSession(_Command):
    """Record a session by hand, e.g. one done by a professional."""

    action: Literal["log_session"]
    setting: Setting = "home"
    needle_depth_mm: NeedleDepth | None = None
    zones: tuple[ShortText, ...] = Field(default=(), max_length=20)
    duration_s: int | None = Field(default=None, ge=0, le=86_400)


class AckCommand(_Command):
    """Acknowledge one reminder."""

    action: Literal["ack"]
    reminder_id: ReminderId


class AckAllCommand(_Command):
    """Acknowledge every open reminder of the profile."""

    action: Literal["ack_all"]


class SnoozeCommand(_Command):
    """Snooze one reminder."""

    action: Literal["snooze"]
    reminder_id: ReminderId
    minutes: int = Field(ge=1, le=1440)


class VoidSession(_Command):
    """Void a session logged by mistake: it stays in the journal and plans nothing."""

    action: Literal["void_session"]
    session_id: SessionId
    reason: ShortText | None = None


Command = Annotated[
    LogSession | AckCommand | AckAllCommand | SnoozeCommand | VoidSession,
    Field(discriminator="action"),
]

DEVICE_EVENTS: TypeAdapter[DeviceEvent] = TypeAdapter(DeviceEvent, config=_DEFERRED)
MIRROR_EVENTS: TypeAdapter[MirrorEvent] = TypeAdapter(MirrorEvent, config=_DEFERRED)
COMMANDS: TypeAdapter[Command] = TypeAdapter(Command, config=_DEFERRED)


def build_adapters() -> None:
    """Build the three validators now rather than on their first payload."""
    for adapter in (DEVICE_EVENTS, MIRROR_EVENTS, COMMANDS):
        adapter.rebuild()


def describe_validation_error(error: ValidationError, *, limit: int = 5) -> str:
    """One line naming each bad field and why, for logs and dead letters."""
    parts = []
    for item in error.errors(include_url=False)[:limit]:
        where = ".".join(str(part) for part in item["loc"]) or "payload"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - limit
    if more > 0:
        parts.append(f"... and {more} more")
    return "; ".join(parts)


def json_schemas() -> dict[str, object]:
    """The JSON Schema of every inbound payload, keyed by topic kind."""
    return {
        "device_event": DEVICE_EVENTS.json_schema(),
        "mirror_event": MIRROR_EVENTS.json_schema(),
        "command": COMMANDS.json_schema(),
    }
