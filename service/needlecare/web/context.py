"""What every request handler needs, built once per server."""

from collections.abc import Callable
from dataclasses import dataclass

from needlecare.clock import Clock
from needlecare.config import NeedlecareConfig
from needlecare.web.commands import CommandSender
from needlecare.web.events import ChangeFeed
from needlecare.web.reads import Reads


@dataclass
class WebContext:
    config: NeedlecareConfig
    clock: Clock
    reads: Reads
    commands: CommandSender
    feed: ChangeFeed
    mqtt_connected: Callable[[], bool]
