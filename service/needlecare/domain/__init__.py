"""The pure domain: no I/O, and the time is always passed in."""
