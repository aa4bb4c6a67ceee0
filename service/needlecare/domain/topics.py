"""The MQTT topic contract (PRODUCT §2), built and parsed in one place."""

from dataclasses import dataclass
from enum import StrEnum

from needlecare.domain.slugs import is_slug


class Source(StrEnum):
    """Who sent an inbound message, from the topic it arrived on."""

    DEVICE = "device"
    MIRROR = "mirror"
    COMMAND = "command"


@dataclass(frozen=True, slots=True)
class InboundTopic:
    """A parsed inbound topic: the kind of sender and its slug."""

    source: Source
    slug: str


class TopicError(ValueError):
    """An inbound topic outside the contract, or with a bad slug."""


_INBOUND = {
    ("device", "event"): Source.DEVICE,
    ("mirror", "event"): Source.MIRROR,
    ("profile", "command"): Source.COMMAND,
}


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic Needlecare reads or writes under one base topic."""

    base: str = "needlecare"
    discovery_prefix: str = "homeassistant"

    @property
    def subscriptions(self) -> tuple[str, ...]:
        inbound = tuple(f"{self.base}/{kind}/+/{leaf}" for kind, leaf in _INBOUND)
        return (*inbound, self.birth)

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def birth(self) -> str:
        """Home Assistant's own status topic: ``online`` when it (re)starts."""
        return f"{self.discovery_prefix}/status"

    def device_event(self, device_id: str) -> str:
        return self._build("device", device_id, "event")

    def mirror_event(self, mirror_id: str) -> str:
        return self._build("mirror", mirror_id, "event")

    def command(self, profile: str) -> str:
        return self._build("profile", profile, "command")

    def mirror_notify(self, mirror_id: str) -> str:
        return self._build("mirror", mirror_id, "notify")

    def prompt(self, profile: str) -> str:
        return self._build("profile", profile, "prompt")

    def state(self, profile: str) -> str:
        return self._build("profile", profile, "state")

    def parse_inbound(self, topic: str) -> InboundTopic:
        """Split an inbound topic; raise TopicError for anything off-contract."""
        prefix = self.base + "/"
        if not topic.startswith(prefix):
            raise TopicError("topic outside the base topic")
        parts = topic[len(prefix) :].split("/")
        if len(parts) != 3 or (parts[0], parts[2]) not in _INBOUND:
            raise TopicError("not an inbound topic of the contract")
        if not is_slug(parts[1]):
            raise TopicError("bad slug in topic (allowed: [a-z0-9_-]{1,64})")
        return InboundTopic(_INBOUND[(parts[0], parts[2])], parts[1])

    def _build(self, kind: str, slug: str, leaf: str) -> str:
        # Slugs are validated on the way in; this guard keeps a bug from ever
        # publishing to a wildcard or a foreign topic.
        if not is_slug(slug):
            raise TopicError(f"refusing to build a topic from a bad slug: {slug!r}")
        return f"{self.base}/{kind}/{slug}/{leaf}"
