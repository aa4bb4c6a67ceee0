"""Reconnect delays: exponential, jittered, capped near a minute."""

import math
from collections.abc import Callable


def backoff_delay(
    attempt: int, *, rand: Callable[[], float], base: float = 0.5, cap: float = 60.0
) -> float:
    """Seconds to wait before reconnect ``attempt`` (0 for the first retry).

    Half the delay is fixed and half random ("equal jitter"): clients that lost
    the broker together do not all come back in the same instant.
    """
    ceiling = min(cap, math.ldexp(base, min(attempt, 16)))
    return ceiling / 2 + rand() * ceiling / 2
