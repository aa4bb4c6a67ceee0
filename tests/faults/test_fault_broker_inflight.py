"""The broker-restart stall, on purpose: a restart while many messages are in flight.

docs/RELIABILITY.md recorded one CI run where the daemon reconnected after a clean
Mosquitto restart and then received nothing for 60 s. The suspect: Mosquitto 2.0.11
lets the daemon's in-flight window grow far past its receive maximum once acks flow,
saves those messages as in flight, and after the restart holds them in flight on the
resumed session. Here the daemon is frozen (SIGSTOP) in the middle of a burst, so
that hundreds of messages sit unacknowledged in the broker's in-flight list when it
restarts; then the daemon runs on and must get every message, once. (With 1,500
events the daemon sometimes had everything in its socket buffer before the freeze and
nothing was left in flight; 3,000 left hundreds.)
"""

import signal
import time

import pytest
from faultkit import Publisher, event_ids_in, ingest_config, report, session_starts

from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonFactory, wait_until

pytestmark = pytest.mark.integration

EVENTS = 3_000


class TestRestartWithMessagesInFlight:
    @pytest.mark.parametrize("receive_maximum", [20, 100])
    def test_a_restart_with_the_window_overfull_stalls_nothing(
        self, mosquitto: MosquittoBroker, daemon_factory: DaemonFactory, receive_maximum: int
    ) -> None:
        """Frozen mid-burst, broker restarted, thawed: all events arrive, each once."""
        config = ingest_config()
        config["mqtt"] = {"receive_maximum": receive_maximum}
        daemon = daemon_factory(mosquitto, **config).start()
        messages = session_starts(EVENTS, f"inflight{receive_maximum}")
        publisher = Publisher(mosquitto)
        for topic, payload, key in messages:
            publisher.publish(topic, payload, key)
        wait_until(lambda: daemon.count("events") >= 200, timeout=60, what="the burst started")
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGSTOP)
        try:
            publisher.wait_all_acked()
            frozen_at = daemon.count("events")
            mosquitto.restart()
        finally:
            daemon.process.send_signal(signal.SIGCONT)
        publisher.close()
        thawed = time.monotonic()
        # The messages already in its socket buffer may all land before the reconnect.
        wait_until(lambda: daemon.log_count("mqtt_connected") >= 2, what="the reconnect")
        wait_until(
            lambda: daemon.count("events") >= EVENTS,
            timeout=120,
            what=lambda: f"every event: {daemon.count('events')} of {EVENTS} recorded",
        )
        ids = event_ids_in(daemon.read)
        assert (EVENTS, {key for _, _, key in messages}) == (len(ids), set(ids))
        report(
            "broker_restart_in_flight",
            receive_maximum=receive_maximum,
            recorded_before_the_freeze=frozen_at,
            seconds_to_catch_up=round(time.monotonic() - thawed, 2),
            duplicates_seen=daemon.log_count("event_duplicate"),
        )
