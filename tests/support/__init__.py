"""Helpers and fixtures shared by the tests; tests/conftest.py loads the fixtures."""
