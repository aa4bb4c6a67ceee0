"""The single wake-up on a real APScheduler: armed no later than needed, never lost."""

# Asserts are written `expected == actual` (STYLE.md), which SIM300 calls Yoda conditions.

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from needlecare_integrations.scheduler import Waker

pytestmark = pytest.mark.integration

HOUR = timedelta(hours=1)


@pytest.fixture
def woken() -> threading.Event:
    return threading.Event()


@pytest.fixture
def waker(woken: threading.Event) -> Iterator[Waker]:
    started = Waker(woken.set)
    started.start()
    yield started
    started.stop()


def utc_now() -> datetime:
    # APScheduler fires on the real clock, so these tests read it too.
    return datetime.now(UTC)  # noqa: TID251


class TestWaker:
    def test_a_later_time_keeps_the_earlier_wake_up(self, waker: Waker) -> None:
        base = utc_now()
        waker.arm(base + HOUR)
        waker.arm(base + 2 * HOUR)
        assert base + HOUR == waker.armed
        waker.arm(None)  # nothing due any more: the early wake-up finds that out
        assert base + HOUR == waker.armed
        waker.arm(base + HOUR / 2)
        assert base + HOUR / 2 == waker.armed

    def test_it_fires_then_can_be_armed_again(self, waker: Waker, woken: threading.Event) -> None:
        base = utc_now()
        waker.arm(base + HOUR)
        waker.arm(base - timedelta(seconds=5))  # already past: fires at once
        assert woken.wait(5)
        assert waker.armed is None
        waker.arm(base + 2 * HOUR)
        assert base + 2 * HOUR == waker.armed
