"""SQLite, the single source of truth."""

from needlecare_integrations.store.checkpointer import Checkpointer
from needlecare_integrations.store.migrations import SCHEMA_VERSION, migrate
from needlecare_integrations.store.sqlite import SqliteStore, StoreError

__all__ = [
    "SCHEMA_VERSION",
    "Checkpointer",
    "SqliteStore",
    "StoreError",
    "migrate",
]
