"""Benchmarks, run by hand with ``python -m bench.<name>`` from the repository root."""
