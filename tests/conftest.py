"""Fixtures for every test suite: a real Mosquitto, paho clients, TLS certificates.

tests/ is not a package: pytest puts this directory on sys.path, so the shared code
is importable as ``support``.
"""

pytest_plugins = (
    "support.certs",
    "support.mosquitto",
    "support.daemon",
    "support.homeassistant",
    "support.deploy",
)
