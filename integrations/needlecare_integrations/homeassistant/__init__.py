"""Home Assistant over its REST and websocket APIs (HomeAssistant-API package).

The package is imported lazily, inside the worker threads: it costs about half a
second and tens of MB, which a daemon without Home Assistant should not pay.
"""

from needlecare_integrations.homeassistant.listener import ActionListener
from needlecare_integrations.homeassistant.todo import TodoListener
from needlecare_integrations.homeassistant.worker import HaOutcome, HaResult, HaWorker

__all__ = ["ActionListener", "HaOutcome", "HaResult", "HaWorker", "TodoListener"]
