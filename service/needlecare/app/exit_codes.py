"""Process exit codes of ``needlecare run``: a module of its own, so a way out imports no core."""


class ExitCode:
    OK = 0
    CONFIG = 1
    BROKER_REFUSED = 3
    STORE = 4
    STORE_LOCKED = 6  # another daemon holds the store's lock
