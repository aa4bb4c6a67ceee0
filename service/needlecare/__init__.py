"""Needlecare: records microneedling sessions and plans the recovery that follows."""

__version__ = "0.1.0"
