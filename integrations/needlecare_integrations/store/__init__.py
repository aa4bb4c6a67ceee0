"""SQLite, the single source of truth."""

from needlecare_integrations.store.checkpointer import SAFETY_NET_PAGES, Checkpointer
from needlecare_integrations.store.migrations import SCHEMA_VERSION, migrate
from needlecare_integrations.store.sqlite import SqliteStore, StoreError

__all__ = [
    "SAFETY_NET_PAGES",
    "SCHEMA_VERSION",
    "Checkpointer",
    "SqliteStore",
    "StoreError",
    "migrate",
]
