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

import os
import signal
import time

import pytest
from faultkit import (
    Publisher,
    event_ids_in,
    ingest_config,
    mqtt_story,
    report,
    session_starts,
    tcp_peers,
)

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


class TestRestartBeforeTheConnack:
    def test_a_restart_while_the_daemon_waits_for_its_connack_loses_nothing(
        self, mosquitto: MosquittoBroker, daemon_factory: DaemonFactory
    ) -> None:
        """The daemon's CONNECT reaches a broker that is stopped, and restarted, before answering.

        The broker comes back frozen (SIGSTOP): the kernel accepts the daemon's
        reconnect and its CONNECT waits unread. Then that broker is restarted. The
        daemon must see the connection drop, reconnect, and get every event once.
        """
        daemon = daemon_factory(mosquitto, **ingest_config()).start()
        publisher = Publisher(mosquitto)
        first = session_starts(300, "connack")
        publisher.publish_all(first)
        wait_until(lambda: daemon.count("events") >= 300, what="the first part")
        mosquitto.stop()
        # Three refused reconnects: the daemon's next try is 2-4 s away, time
        # enough to start the broker and freeze it before the daemon is back.
        refused = daemon.log_count("mqtt_connect_failed")
        wait_until(lambda: daemon.log_count("mqtt_connect_failed") >= refused + 3, what="refusals")
        mosquitto.start()
        pid = mosquitto.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            before = tcp_peers(mosquitto.port)
            wait_until(
                lambda: len(tcp_peers(mosquitto.port) - before) >= 2,
                what="the daemon and the publisher connecting to the frozen broker",
            )
            assert 1 == daemon.log_count("mqtt_connected"), "answered before the freeze"
            os.kill(pid, signal.SIGTERM)
        finally:
            os.kill(pid, signal.SIGCONT)
        mosquitto.restart()  # waits for the frozen one to exit, then starts
        second = session_starts(300, "connack", first=300)
        publisher.publish_all(second)
        publisher.wait_all_acked()
        publisher.close()
        wait_until(
            lambda: daemon.count("events") >= 600,
            timeout=120,
            what=lambda: f"{daemon.count('events')} of 600 recorded; {mqtt_story(daemon)}",
        )
        ids = event_ids_in(daemon.read)
        assert (600, {key for _, _, key in first + second}) == (len(ids), set(ids))
        assert 0 == daemon.log_count("daemon_failed")
