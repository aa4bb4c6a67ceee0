"""Request bodies of the JSON API, with the examples the OpenAPI document shows."""

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from needlecare.domain.slugs import Slug


class NewSession(BaseModel):
    """A session to log by hand, e.g. one at a dermatologist's."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"profile": "alice", "setting": "professional", "needle_depth_mm": 1.0},
                {"profile": "alice", "setting": "home", "timestamp": "2026-01-05T20:15:00+01:00"},
            ]
        },
    )

    profile: Slug = Field(description="Whose session it was.")
    setting: Literal["home", "professional"] = Field(
        default="home", description="Where it was done."
    )
    timestamp: AwareDatetime | None = Field(
        default=None, description="When it ended (RFC 3339 with offset); default now."
    )
    needle_depth_mm: float | None = Field(
        default=None, ge=0.1, le=3.0, description="Needle depth in mm."
    )


class VoidRequest(BaseModel):
    """Why a session is voided (optional)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "logged twice"}]}
    )

    reason: str | None = Field(default=None, min_length=1, max_length=128)


class SnoozeRequest(BaseModel):
    """How long to snooze."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"minutes": 30}]})

    minutes: int = Field(ge=1, le=1440, description="Deliver again in this many minutes.")


class Created(BaseModel):
    id: str = Field(description="The new session's id.")
    event_id: str = Field(description="The journal entry of the command.")


class Voided(BaseModel):
    id: str
    status: str
    event_id: str


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    mqtt: Literal["connected", "disconnected"]
    store: Literal["ok", "unavailable"]
    homeassistant: Literal["configured", "not_configured"]
    version: str


class ConfigCheck(BaseModel):
    ok: bool
    summary: str
    warnings: list[str]


__all__ = [
    "ConfigCheck",
    "Created",
    "Health",
    "NewSession",
    "SnoozeRequest",
    "VoidRequest",
    "Voided",
]
