"""The configuration models: one per YAML section, unknown keys rejected.

The models only validate. Layering the file and the environment is the job of
:func:`needlecare.config.loading.load_config`.
"""

from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from needlecare.config._types import (
    ClientId,
    HttpUrlText,
    TimeZoneName,
    TopicRoot,
    error_at,
    located_error,
    reject_unquoted_time,
)
from needlecare.domain.protocol import ProtocolConfig
from needlecare.domain.protocol_steps import Channel
from needlecare.domain.sessions import MIN_NEEDLING
from needlecare.domain.slugs import Slug
from needlecare.i18n import LanguageTag

ENV_PREFIX = "NEEDLECARE_"
ENV_NESTED_DELIMITER = "__"
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
# Where the SecretStr fields live; error reports mask whatever the input held there.
SECRET_PATHS: Final = (("mqtt", "password"), ("homeassistant", "token"), ("web", "token"))


class TlsConfig(BaseModel):
    """TLS towards the broker; absent means plain TCP."""

    model_config = ConfigDict(extra="forbid")

    ca_file: Path | None = Field(
        default=None, description="CA bundle to verify the broker with; None uses the system store."
    )
    cert_file: Path | None = Field(
        default=None, description="Client certificate (PEM), for brokers that require one."
    )
    key_file: Path | None = Field(default=None, description="Private key for cert_file (PEM).")

    @model_validator(mode="after")
    def _check_client_pair(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise PydanticCustomError("tls_pair", "cert_file and key_file must be given together")
        return self


class MqttConfig(BaseModel):
    """Section ``mqtt``: the broker connection and our topic roots."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", description="Broker host name or address.")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker TCP port.")
    username: str | None = Field(
        default=None, description="Broker user; None connects anonymously."
    )
    password: SecretStr | None = Field(
        default=None, description="Broker password; needs username. Best set from the environment."
    )
    tls: TlsConfig | None = Field(default=None, description="TLS settings; None for plain TCP.")
    base_topic: TopicRoot = Field(
        default="needlecare", description="Root of every topic the daemon reads or writes."
    )
    discovery_prefix: TopicRoot = Field(
        default="homeassistant", description="Home Assistant MQTT discovery prefix."
    )
    client_id: ClientId = Field(
        default="needlecare",
        description="MQTT client id; stable, so the broker can resume our session.",
    )
    keepalive_s: int = Field(default=60, ge=5, le=3600, description="MQTT keepalive in seconds.")
    max_payload_bytes: int = Field(
        default=65536,
        ge=256,
        le=1048576,
        description="Inbound payloads larger than this are rejected unparsed.",
    )
    session_expiry_s: int = Field(
        default=604800,
        ge=0,
        description="How long the broker keeps our session and queued events while we are down.",
    )
    receive_maximum: int = Field(
        default=100,
        ge=1,
        le=65535,
        description="MQTT 5 in-flight window the broker may use towards us.",
    )

    @model_validator(mode="after")
    def _check_password_has_user(self) -> Self:
        if self.password is not None and self.username is None:
            error = error_at(
                ("password",),
                self.password,
                "password_without_username",
                ("a password needs a username"),
            )
            raise located_error(type(self).__name__, [error])
        return self


class StoreConfig(BaseModel):
    """Section ``store``: the SQLite database, the source of truth."""

    model_config = ConfigDict(extra="forbid")

    path: Path = Field(default=Path("needlecare.db"), description="SQLite database file.")
    backup_before_migrate: bool = Field(
        default=True, description="Copy the database aside before applying a migration."
    )


class RetentionConfig(BaseModel):
    """Section ``retention``: what the store forgets, so it stops growing.

    The journal (sessions, skin checks, products, reminders and their outcomes) is
    kept forever; see docs/RELIABILITY.md.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Purge old rows in small batches.")
    events_days: int = Field(
        default=400, ge=1, description="Raw inbound events older than this many days are purged."
    )
    dead_letters_max: int = Field(
        default=10_000,
        ge=1,
        description="Dead letters kept at most (the newest); the rest are counted.",
    )
    dead_letters_days: int = Field(
        default=90, ge=1, description="Dead letters older than this many days are purged."
    )
    outbox_days: int = Field(
        default=3,
        ge=1,
        description="Sent or cancelled deliveries older than this many days are purged.",
    )
    batch_rows: int = Field(
        default=500, ge=10, le=10_000, description="Rows deleted per table in one purge step."
    )
    interval_s: int = Field(
        default=3600,
        ge=1,
        description="Seconds between purge rounds when nothing is left to purge.",
    )
    heartbeat_hold_s: float = Field(
        default=120.0,
        ge=0,
        le=600,
        description="A heartbeat that changes nothing else waits up to this long to share "
        "a commit (acknowledged only after it); 0 commits each at once.",
    )


ServiceName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+\.[a-z0-9_]+$")]
EntityId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+\.[a-z0-9_]+$")]


class HomeAssistantConfig(BaseModel):
    """Section ``homeassistant``: the REST API used to deliver reminders."""

    model_config = ConfigDict(extra="forbid")

    url: HttpUrlText = Field(description="Base URL, e.g. http://homeassistant.local:8123.")
    token: SecretStr | None = Field(
        default=None,
        description="Long-lived access token; normally from NEEDLECARE_HOMEASSISTANT__TOKEN.",
    )
    verify_ssl: bool = Field(default=True, description="Verify the server's TLS certificate.")
    timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="Seconds to wait for one API call."
    )
    snooze_minutes: int = Field(
        default=30, ge=1, le=1440, description="How long the phone's Snooze button snoozes."
    )
    calendar_entity: EntityId | None = Field(
        default=None,
        description="A calendar (e.g. a Local Calendar, calendar.needlecare) that gets each "
        "next-session window as an event.",
    )
    todo_entity: EntityId | None = Field(
        default=None,
        description="A to-do list (e.g. a Local To-do, todo.aftercare) that gets the aftercare "
        "steps a person does (soothe, serum, end of the actives pause) as items "
        "with due dates; checking one off acknowledges its reminder.",
    )


class VoiceConfig(BaseModel):
    """How a profile's voice announcements are made in Home Assistant."""

    model_config = ConfigDict(extra="forbid")

    service: ServiceName = Field(
        description="Service to call: tts.speak, script.announce, notify.alexa_media_echo..."
    )
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="Fixed service data, e.g. {entity_id: tts.piper, media_player_entity_id: ...}.",
    )
    message_field: str = Field(
        default="message", min_length=1, description="Data key that receives the spoken text."
    )
    only_when_home: bool = Field(
        default=True,
        description="With the profile's person entity set: speak only while it is 'home'.",
    )


class QuietHours(BaseModel):
    """Local wall-clock window in which reminders wait; may cross midnight."""

    model_config = ConfigDict(extra="forbid")

    start: time = Field(default=time(22, 0), description='Start of quiet time, "HH:MM" local.')
    end: time = Field(default=time(7, 0), description='End of quiet time, "HH:MM" local.')
    defer: list[Channel] = Field(
        default_factory=lambda: [Channel.VOICE],
        description="Channels that wait until quiet hours end (the others deliver at once).",
    )

    @field_validator("start", "end", mode="before")
    @classmethod
    def _reject_numbers(cls, value: object) -> object:
        return reject_unquoted_time(value)

    @model_validator(mode="after")
    def _check_not_empty(self) -> Self:
        if self.start == self.end:
            raise PydanticCustomError(
                "quiet_hours_empty", "quiet hours need a start and an end that differ"
            )
        return self


class ProfileConfig(BaseModel):
    """One person whose sessions and reminders the daemon tracks."""

    model_config = ConfigDict(extra="forbid")

    timezone: TimeZoneName = Field(description="IANA time zone name, e.g. Europe/Berlin.")
    quiet_hours: QuietHours = Field(
        default_factory=QuietHours, description="When reminders must wait."
    )
    display_name: str | None = Field(default=None, description="Name shown to people.")
    notify_service: ServiceName | None = Field(
        default=None,
        description="Home Assistant notify service for the mobile channel, e.g. "
        "notify.mobile_app_alices_phone.",
    )
    voice: VoiceConfig | None = Field(
        default=None, description="Voice announcements; None turns the voice channel off."
    )
    person: EntityId | None = Field(
        default=None, description="The profile's person.* entity, for 'only when home'."
    )
    language: LanguageTag = Field(
        default="en",
        description="Language of everything this person reads or hears: a BCP 47 primary "
        "tag, one of en, de, fr, es, nl.",
    )

    @property
    def zone(self) -> ZoneInfo:
        """The validated time zone as a ZoneInfo."""
        return ZoneInfo(self.timezone)


class DeviceConfig(BaseModel):
    """One microneedling pen that reports sessions."""

    model_config = ConfigDict(extra="forbid")

    owner: Slug = Field(description="Profile the device's sessions belong to.")
    max_needle_depth_mm: float | None = Field(
        default=None, ge=0.1, le=3.0, description="Deepest setting this device allows, in mm."
    )
    name: str | None = Field(default=None, description="Name shown to people.")


class MirrorConfig(BaseModel):
    """One smart mirror that shows reminders."""

    model_config = ConfigDict(extra="forbid")

    profiles: list[Slug] = Field(
        default_factory=list, description="Profiles shown on this mirror; empty serves all."
    )


class SessionsConfig(BaseModel):
    """Section ``sessions``: how session events are grouped."""

    model_config = ConfigDict(extra="forbid")

    timeout: timedelta = Field(
        default=timedelta(hours=2),
        gt=timedelta(0),
        description="An open session without events for this long is closed. "
        "Seconds, ISO-8601 (PT2H) or HH:MM:SS.",
    )
    min_needling: timedelta = Field(
        default=MIN_NEEDLING,
        ge=timedelta(0),
        description="A session whose reported duration_s is below this is a false start: "
        "recorded as no_needling, it plans nothing and leaves the earlier plan as it was. "
        "No reported duration counts as treated. Seconds, ISO-8601 (PT1M) or HH:MM:SS.",
    )

    @field_validator("timeout", "min_needling", mode="before")
    @classmethod
    def _seconds_from_text(cls, value: object) -> object:
        # Environment values are text; "7200" means seconds, as the number 7200 does.
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        return value


class RemindersConfig(BaseModel):
    """Section ``reminders``: what happens to reminders that fall due while the daemon is down."""

    model_config = ConfigDict(extra="forbid")

    late_after: timedelta = Field(
        default=timedelta(minutes=2),
        ge=timedelta(0),
        description="A reminder delivered more than this after its time is marked late.",
    )
    grace: timedelta = Field(
        default=timedelta(hours=12),
        ge=timedelta(0),
        description="A reminder more than this overdue is not delivered but recorded as "
        "missed, and summarised once.",
    )


class LoggingConfig(BaseModel):
    """Section ``logging``."""

    model_config = ConfigDict(extra="forbid")

    level: LogLevel = Field(default="INFO", description="Lowest level that is logged.")
    format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: console on a TTY, JSON otherwise."
    )

    @field_validator("level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "::1", "localhost"})


class WebConfig(BaseModel):
    """Section ``web``: the web app and JSON API served by the daemon itself."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=False, description="Serve the web app and the JSON API.")
    host: str = Field(
        default="127.0.0.1",
        description="Address to listen on; anything but loopback needs a token (or ingress).",
    )
    port: int = Field(default=8470, ge=1, le=65535, description="TCP port to listen on.")
    token: SecretStr | None = Field(
        default=None,
        description="Bearer token every route but /api/v1/health asks for; normally from "
        "NEEDLECARE_WEB__TOKEN.",
    )
    ingress: bool = Field(
        default=False,
        description="Home Assistant add-on ingress: trust the Supervisor (172.30.32.2) "
        "without the token and honour X-Ingress-Path.",
    )

    @model_validator(mode="after")
    def _check_exposed_has_token(self) -> Self:
        # With ingress, every peer but the Supervisor must show the token, so there
        # is no address the app answers unauthenticated except the Supervisor's.
        exposed = self.enabled and self.host not in LOOPBACK_HOSTS and not self.ingress
        if exposed and (self.token is None or not self.token.get_secret_value()):
            error = error_at(
                ("token",),
                None,
                "web_token_required",
                f"web.host {self.host!r} is not loopback: set web.token "
                "(NEEDLECARE_WEB__TOKEN) or listen on 127.0.0.1",
            )
            raise located_error(type(self).__name__, [error])
        return self


class NeedlecareConfig(BaseModel):
    """The whole configuration; an empty file gives a working local setup.

    A plain model: building one never reads the environment. ``load_config`` lays
    the ``NEEDLECARE_*`` variables over the file (needlecare.config.environment).
    """

    model_config = ConfigDict(extra="forbid")

    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="The MQTT broker.")
    store: StoreConfig = Field(default_factory=StoreConfig, description="The SQLite store.")
    retention: RetentionConfig = Field(
        default_factory=RetentionConfig, description="What the store forgets, and when."
    )
    homeassistant: HomeAssistantConfig | None = Field(
        default=None, description="Home Assistant REST API; None uses MQTT channels only."
    )
    profiles: dict[Slug, ProfileConfig] = Field(
        default_factory=dict, description="People, keyed by profile id."
    )
    devices: dict[Slug, DeviceConfig] = Field(
        default_factory=dict, description="Pens, keyed by device id."
    )
    mirrors: dict[Slug, MirrorConfig] = Field(
        default_factory=dict, description="Mirrors, keyed by mirror id."
    )
    sessions: SessionsConfig = Field(
        default_factory=SessionsConfig, description="Session grouping."
    )
    reminders: RemindersConfig = Field(
        default_factory=RemindersConfig, description="Late and missed reminders."
    )
    protocol: ProtocolConfig | None = Field(
        default=None,
        description="Changes to the built-in care protocol; absent uses the defaults.",
    )
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Log output.")
    web: WebConfig = Field(default_factory=WebConfig, description="The web app and JSON API.")

    @model_validator(mode="after")
    def _check_references(self) -> Self:
        errors = [*self._unknown_owners(), *self._unknown_mirror_profiles()]
        if errors:
            raise located_error(type(self).__name__, errors)
        return self

    def _unknown_owners(self) -> list[InitErrorDetails]:
        return [
            _unknown_profile(("devices", device_id, "owner"), device.owner)
            for device_id, device in self.devices.items()
            if device.owner not in self.profiles
        ]

    def _unknown_mirror_profiles(self) -> list[InitErrorDetails]:
        return [
            _unknown_profile(("mirrors", mirror_id, "profiles", index), profile)
            for mirror_id, mirror in self.mirrors.items()
            for index, profile in enumerate(mirror.profiles)
            if profile not in self.profiles
        ]

    def secret_values(self) -> list[str]:
        """Plain text of every secret that is set, for log redaction."""
        values = []
        for path in SECRET_PATHS:
            node: object = self
            for name in path:
                node = getattr(node, name, None)
            # An empty secret would make a redactor match everywhere, and hides nothing.
            if isinstance(node, SecretStr) and node.get_secret_value():
                values.append(node.get_secret_value())
        return values


def _unknown_profile(loc: tuple[str | int, ...], profile: str) -> InitErrorDetails:
    return error_at(loc, profile, "unknown_profile", f"unknown profile {profile!r}")
