"""An inbound message as the application sees it, free of MQTT client types, and the
token that acknowledges it once it is committed."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message from the broker: where it came from, what it said, when."""

    topic: str
    payload: bytes
    received_at: datetime
    redelivered: bool = False


@dataclass(frozen=True, slots=True)
class AckToken:
    """What is needed to acknowledge one message on the connection it came from."""

    generation: int
    mid: int
    qos: int
    size: int = 0  # what the message holds in memory until acknowledged (the MQTT client's)


@dataclass(frozen=True, slots=True)
class Delivery:
    """An inbound message and the token that acknowledges it."""

    message: InboundMessage
    token: AckToken
