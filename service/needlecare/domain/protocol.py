"""The care protocol (PRODUCT §1) as data, and the config's overrides of it.

The built-in default encodes the source article's rules; the ``protocol:`` section
of the config overrides any part of it by name, with its own layer for
professional sessions. Everything is plain data, so planning stays a pure function
of (session, protocol, now).
"""

import re
from collections.abc import Iterable, Mapping
from datetime import time, timedelta
from typing import Any, Final, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from needlecare.domain.protocol_defaults import DEFAULT_INGREDIENTS, default_steps
from needlecare.domain.protocol_steps import (
    DERIVED_TIMING,
    GUARD_STEPS,
    PLAN_STEPS,
    STEP_NAMES,
    UNTIMED_STEPS,
    Channel,
    Channels,
    Escalation,
    Severity,
    Step,
    check_timing,
    check_wall_time,
    reject_unquoted_time,
    seconds_from_text,
)
from needlecare.i18n import LocalText, LocalTitle

__all__ = [
    "GUARD_STEPS",
    "PLAN_STEPS",
    "STEP_NAMES",
    "CareProtocol",
    "Channel",
    "Escalation",
    "ProtocolConfig",
    "ProtocolError",
    "ProtocolOverride",
    "Severity",
    "Step",
    "StepOverride",
    "build_protocols",
    "default_protocol",
    "ingredient_classes",
]

SETTINGS: Final = ("home", "professional")
_M = TypeVar("_M", bound=BaseModel)


class CareProtocol(BaseModel):
    """Every step and parameter of the care protocol for one session setting.

    ``window_open_after``/``window_close_after`` define the next-session window
    (``too_soon``, the state's window, ``redness_advice``); the ``window_open`` and
    ``overdue`` steps' ``day``/``at`` only say when those prompts appear. The two
    are independent on purpose: "prompt at 19:00 on day 28" differs from "window
    opens exactly 28 days after the end", so changing one does not change the other.
    """

    # Built on first use (build_protocols), not when the config imports this module.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    steps: Mapping[str, Step] = Field(description="Every step, by name.")
    actives_pause: timedelta = Field(
        default=timedelta(hours=72),
        gt=timedelta(0),
        description="No restricted ingredients for this long after the session end.",
    )
    restricted_ingredients: Mapping[str, tuple[str, ...]] = Field(
        description="Restricted ingredient classes, each with its synonyms."
    )
    window_open_after: timedelta = Field(
        default=timedelta(days=28),
        gt=timedelta(0),
        description="The next-session window opens this long after the session end.",
    )
    window_close_after: timedelta = Field(
        default=timedelta(days=42),
        gt=timedelta(0),
        description="The next-session window closes this long after the session end.",
    )
    redness_threshold: int = Field(
        default=60, ge=0, le=100, description="Redness (0-100) that triggers the advice."
    )
    redness_after_day: int = Field(
        default=3, ge=0, description="Recovery day from which high redness triggers the advice."
    )
    cleanse_within: timedelta = Field(
        default=timedelta(hours=1),
        gt=timedelta(0),
        description="A cleanse this long before a session start counts.",
    )
    plan_grace: timedelta = Field(
        default=timedelta(hours=1),
        ge=timedelta(0),
        description="Steps already further in the past than this when planned are recorded "
        "as missed, never announced.",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        missing = [name for name in STEP_NAMES if name not in self.steps]
        unknown = [name for name in self.steps if name not in STEP_NAMES]
        if missing or unknown:
            msg = f"steps must be exactly {', '.join(STEP_NAMES)}"
            raise PydanticCustomError("protocol_steps", msg)
        for name, step in self.steps.items():
            check_step_slot(name, step)
        if self.window_close_after <= self.window_open_after:
            raise PydanticCustomError(
                "window_order", "window_close_after must be later than window_open_after"
            )
        return self

    def step(self, name: str) -> Step:
        """The step called ``name`` (one of :data:`STEP_NAMES`)."""
        return self.steps[name]


def check_step_slot(name: str, step: Step) -> None:
    """A step fits its name: the right kind and the timing form its slot allows."""
    if step.kind != name:
        msg = f"steps.{name}: kind must be {name!r}"
        raise PydanticCustomError("step_kind", msg)
    if name in DERIVED_TIMING and step.timed:
        msg = f"steps.{name}: its time follows actives_pause; set that instead"
        raise PydanticCustomError("step_timing", msg)
    if name in GUARD_STEPS and step.timed:
        msg = f"steps.{name}: is due when its trigger arrives; it takes no offset, day or at"
        raise PydanticCustomError("step_timing", msg)
    if name not in UNTIMED_STEPS and not step.timed:
        msg = f"steps.{name}: needs offset, or day and at"
        raise PydanticCustomError("step_timing", msg)


def ingredient_classes(ingredients: Iterable[str], protocol: CareProtocol) -> tuple[str, ...]:
    """The restricted classes that any of ``ingredients`` belongs to, in protocol order.

    A synonym matches case-insensitively where a word starts, so "Retinol 0.3%"
    and "AHA/BHA" match while "Sahara extract" does not match "aha".
    """
    texts = [text.casefold() for text in ingredients]
    return tuple(
        name
        for name, synonyms in protocol.restricted_ingredients.items()
        if any(_mentions(text, synonym) for text in texts for synonym in synonyms)
    )


def _mentions(text: str, synonym: str) -> bool:
    word = synonym.casefold().strip()
    return bool(word) and re.search(r"(?<![a-z0-9])" + re.escape(word), text) is not None


def default_protocol() -> CareProtocol:
    """The built-in protocol, taken from the source article (PRODUCT §1)."""
    return CareProtocol(steps=default_steps(), restricted_ingredients=dict(DEFAULT_INGREDIENTS))


class ProtocolError(ValueError):
    """A set of overrides that yields an invalid protocol; the message names the field."""


# Fields an override may set to null; for the others null would only mean "invalid".
_NULLABLE: Final = frozenset({"offset", "day", "at", "expires_after"})


class StepOverride(BaseModel):
    """Changes to one step; fields left out keep the base value.

    Setting ``offset`` replaces a ``day``/``at`` timing and vice versa, so a step can
    switch timing form, but one override cannot give both.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool | None = Field(default=None, description="False drops the step.")
    offset: timedelta | None = Field(
        default=None, ge=timedelta(0), description="Due this long after the session end."
    )
    day: int | None = Field(
        default=None, ge=0, le=366, description="Days after the session end's local date."
    )
    at: time | None = Field(default=None, description='Local time of day with day, "HH:MM".')
    title: LocalTitle | None = Field(
        default=None, description="Headline: one text, or one per language ({en: .., de: ..})."
    )
    message: LocalText | None = Field(
        default=None, description="Body, with placeholders; one text, or one per language."
    )
    severity: Severity | None = Field(default=None, description="info, warning or critical.")
    channels: Channels | None = Field(default=None, min_length=1, description="Delivery channels.")
    needs_ack: bool | None = Field(default=None, description="Whether it waits for an ack.")
    escalation: tuple[Escalation, ...] | None = Field(
        default=None, description="Replaces the escalation stages; [] turns escalation off."
    )
    expires_after: timedelta | None = Field(
        default=None, gt=timedelta(0), description="Vanishes by itself after this; null: never."
    )

    _unquoted_at = field_validator("at", mode="before")(reject_unquoted_time)
    _wall_at = field_validator("at")(check_wall_time)
    _seconds = field_validator("offset", "expires_after", mode="before")(seconds_from_text)

    @field_validator(
        "enabled", "title", "message", "severity", "channels", "needs_ack", "escalation"
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Runs only for values given explicitly: defaults are not validated.
        if value is None:
            raise PydanticCustomError("not_nullable", "may not be null")
        return value

    @model_validator(mode="after")
    def _one_timing(self) -> Self:
        given = self.model_fields_set
        if "offset" in given and given & {"day", "at"}:
            check_timing(self.offset, self.day, self.at)
        return self

    def changes(self) -> dict[str, Any]:
        """The fields to replace in the base step, timing forms kept exclusive."""
        changes = self.model_dump(exclude_unset=True)
        if "offset" in changes:
            changes.setdefault("day", None)
            changes.setdefault("at", None)
        elif changes.keys() & {"day", "at"}:
            changes["offset"] = None
        return changes


class ProtocolOverride(BaseModel):
    """Changes to the protocol's parameters and steps; fields left out keep the base."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    actives_pause: timedelta | None = Field(
        default=None, gt=timedelta(0), description="Restriction after a session, e.g. PT72H."
    )
    restricted_ingredients: dict[str, tuple[str, ...]] | None = Field(
        default=None,
        description="Ingredient classes with their synonyms; replaces the named classes, "
        "keeps the others; an empty list turns a class off.",
    )
    window_open_after: timedelta | None = Field(
        default=None, gt=timedelta(0), description="Next-session window opens, e.g. P28D."
    )
    window_close_after: timedelta | None = Field(
        default=None, gt=timedelta(0), description="Next-session window closes, e.g. P42D."
    )
    redness_threshold: int | None = Field(
        default=None, ge=0, le=100, description="Redness (0-100) that triggers the advice."
    )
    redness_after_day: int | None = Field(
        default=None, ge=0, description="Recovery day from which redness triggers the advice."
    )
    cleanse_within: timedelta | None = Field(
        default=None, gt=timedelta(0), description="How recent a cleanse must be, e.g. PT1H."
    )
    plan_grace: timedelta | None = Field(
        default=None, ge=timedelta(0), description="Steps further in the past are not planned."
    )
    steps: dict[str, StepOverride] = Field(
        default_factory=dict, description="Step changes by step name."
    )

    _seconds = field_validator(
        "actives_pause",
        "window_open_after",
        "window_close_after",
        "cleanse_within",
        "plan_grace",
        mode="before",
    )(seconds_from_text)

    @field_validator(
        "actives_pause",
        "window_open_after",
        "window_close_after",
        "redness_threshold",
        "redness_after_day",
        "cleanse_within",
        "plan_grace",
        "restricted_ingredients",
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise PydanticCustomError("not_nullable", "may not be null")
        return value

    @field_validator("steps")
    @classmethod
    def _known_steps(cls, value: dict[str, StepOverride]) -> dict[str, StepOverride]:
        unknown = sorted(name for name in value if name not in STEP_NAMES)
        if unknown:
            msg = f"unknown step {', '.join(map(repr, unknown))}; known: {', '.join(STEP_NAMES)}"
            raise PydanticCustomError("unknown_step", msg)
        return value


class ProtocolConfig(ProtocolOverride):
    """Section ``protocol``: overrides for every session, plus a professional layer."""

    professional: ProtocolOverride | None = Field(
        default=None,
        description="Applied on top of the rest for sessions with setting: professional.",
    )

    @model_validator(mode="after")
    def _builds(self) -> Self:
        # Cross-field rules (window order, timing forms) only show on the merged result.
        try:
            build_protocols(self)
        except ProtocolError as error:
            raise PydanticCustomError("protocol_invalid", str(error)) from None
        return self


def build_protocols(config: ProtocolConfig | None) -> dict[str, CareProtocol]:
    """The protocol per session setting: the default, then ``config``, then its
    ``professional`` layer for professional sessions.

    Raises :class:`ProtocolError` naming the field when the result is invalid.
    """
    home = default_protocol()
    if config is not None:
        home = apply_override(home, config)
    professional = home
    if config is not None and config.professional is not None:
        professional = apply_override(home, config.professional, where="professional.")
    return {"home": home, "professional": professional}


def apply_override(
    base: CareProtocol, override: ProtocolOverride, *, where: str = ""
) -> CareProtocol:
    """``base`` with ``override`` on top; :class:`ProtocolError` if that is invalid."""
    steps = dict(base.steps)
    for name, change in override.steps.items():
        merged = {**dict(steps[name]), **change.changes()}
        steps[name] = _validated(Step, merged, f"{where}steps.{name}.")
    params = override.model_dump(
        exclude_unset=True, exclude={"steps", "restricted_ingredients", "professional"}
    )
    ingredients = {**base.restricted_ingredients, **(override.restricted_ingredients or {})}
    fields = {**dict(base), **params, "steps": steps, "restricted_ingredients": ingredients}
    return _validated(CareProtocol, fields, where)


def _validated(model: type[_M], data: dict[str, Any], where: str) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        path = (where + ".".join(str(part) for part in first["loc"])).rstrip(".")
        message = first["msg"]
        raise ProtocolError(f"{path}: {message}" if path else message) from None
