"""Adapters to the systems outside Needlecare; their types stay in here."""
