"""The ``needlecare`` command line."""
