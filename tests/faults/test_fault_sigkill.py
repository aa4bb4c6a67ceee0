"""SIGKILL twenty times while 20,000 events stream in: every event lands exactly once.

The daemon acknowledges a message only after the transaction recording it has
committed, so a kill at any moment either loses nothing (the broker redelivers
what was not acknowledged) or leaves a committed event that the redelivery then
finds by its id (an ``event_duplicate`` in the log).
"""

import random
import time
from collections.abc import Callable
from typing import Any

import pytest
from faultkit import Publisher, PublisherThread, event_ids_in, ingest_config, report, session_starts

from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonProcess, wait_until

pytestmark = pytest.mark.integration

EVENTS = 20_000
KILLS = 20
PUBLISH_RATE = 800.0  # per second: publishing lasts ~25 s, so kills land mid-stream
SEED = 20


class TestSigkill:
    def test_twenty_kills_mid_stream_record_every_event_exactly_once(
        self, mosquitto: MosquittoBroker, daemon_factory: Callable[..., DaemonProcess]
    ) -> None:
        """Killed 20 times at random moments, the daemon ends with each event and session once."""
        daemon = daemon_factory(mosquitto, **ingest_config()).start()
        messages = session_starts(EVENTS, "kill")
        started = time.monotonic()
        publisher = Publisher(mosquitto)
        sending = PublisherThread(publisher, messages, rate=PUBLISH_RATE).start()
        rng = random.Random(SEED)
        kill_points: list[int] = []
        for kill in range(KILLS):
            # Absolute marks over the first 90 %: every kill lands before the stream ends.
            mark = (kill + 1) * int(EVENTS * 0.9) // KILLS
            wait_until(lambda m=mark: daemon.count("events") >= m, timeout=60, what="progress")
            time.sleep(rng.uniform(0, 0.25))  # land mid-batch as well as between batches
            kill_points.append(daemon.count("events"))
            daemon.kill()
            daemon.start()
        sending.join()
        publisher.wait_all_acked()
        publisher.close()
        wait_until(lambda: daemon.count("events") >= EVENTS, timeout=120, what="every event")
        elapsed = time.monotonic() - started

        ids = event_ids_in(daemon.read)
        assert (EVENTS, {key for _, _, key in messages}) == (len(ids), set(ids))
        assert EVENTS == daemon.count("sessions")
        sessions: list[Any] = daemon.read(lambda s: s.sessions())
        assert ["pen1", "pen2"] == sorted(s.device_id for s in sessions if s.is_open)
        assert 0 == daemon.count("dead_letters")
        assert 0 == daemon.log_count("daemon_failed")
        duplicates = daemon.log_count("event_duplicate")
        assert 0 == daemon.stop()
        report(
            "sigkill",
            events=EVENTS,
            kills=len(kill_points),
            kill_points=kill_points,
            duplicates_seen=duplicates,
            seconds=round(elapsed, 1),
        )
