"""Reconnect delays: exponential, jittered, capped near a minute."""

import pytest

from needlecare_integrations.backoff import backoff_delay


class TestBackoff:
    @pytest.mark.parametrize(
        ("attempt", "low", "high"), [(0, 0.25, 0.5), (1, 0.5, 1.0), (4, 4.0, 8.0)]
    )
    def test_doubles_within_the_jitter(self, attempt: int, low: float, high: float) -> None:
        """Each attempt waits between half and all of base * 2**attempt."""
        assert (low, high) == (
            backoff_delay(attempt, rand=lambda: 0.0),
            backoff_delay(attempt, rand=lambda: 1.0),
        )

    def test_capped_near_a_minute(self) -> None:
        """However many attempts, never more than the cap."""
        assert 60.0 == backoff_delay(10_000, rand=lambda: 1.0)
        assert 30.0 == backoff_delay(10_000, rand=lambda: 0.0)
