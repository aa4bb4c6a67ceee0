"""An inbound message as the application sees it, free of MQTT client types."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message from the broker: where it came from, what it said, when."""

    topic: str
    payload: bytes
    received_at: datetime
    redelivered: bool = False
