"""Two daemons with one mqtt.client_id on different stores: they back off instead of fighting."""

import time

import pytest

from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonFactory, DaemonProcess, wait_until

pytestmark = pytest.mark.integration

WINDOW_S = 30.0
CLIENT_ID = "needlecare-shared"


def connections(broker: MosquittoBroker) -> int:
    """How many times Mosquitto accepted a connection with the shared client id."""
    text = broker.log_path.read_text(encoding="utf-8", errors="replace")
    return text.count(f" as {CLIENT_ID} (")


def takeovers(daemon: DaemonProcess) -> list[dict[str, object]]:
    return [e for e in daemon.log_events() if e.get("event") == "mqtt_session_taken_over"]


class TestClientIdTakeover:
    def test_two_daemons_sharing_a_client_id_connect_a_few_times_a_minute(
        self, mosquitto: MosquittoBroker, daemon_factory: DaemonFactory
    ) -> None:
        """Each takeover is an error naming the client id, and each waits longer than the last.

        Without the backoff the pair reconnected within a second of every takeover, dozens
        of times a minute; with it, the pair connects at most a handful of times in half a
        minute, and both daemons keep running. Worst case with the least jitter: 6.
        """
        first = daemon_factory(mosquitto, mqtt={"client_id": CLIENT_ID}).start()
        second = daemon_factory(mosquitto, mqtt={"client_id": CLIENT_ID}).start()
        wait_until(lambda: takeovers(first), what="the first daemon to lose its session")
        before = connections(mosquitto)
        time.sleep(WINDOW_S)  # a window to count connections in, not a timing assertion
        made = connections(mosquitto) - before
        print(f"connections in the {WINDOW_S:g} s after the first takeover: {made}")
        assert made <= 7, mosquitto.log_tail(40)
        assert first.alive()
        assert second.alive()
        seen = takeovers(first) + takeovers(second)
        assert {CLIENT_ID} == {e["client_id"] for e in seen}
        assert all("same mqtt.client_id" in str(e["error"]) for e in seen)
        assert all("error" == e["level"] for e in seen)
        for daemon in (first, second):
            delays = [float(str(e["delay_s"])) for e in takeovers(daemon)]
            counts = [e["takeovers"] for e in takeovers(daemon)]
            assert list(range(1, len(counts) + 1)) == counts
            # Equal jitter: the n-th wait is at least half its ceiling, 4 s * 2**(n-1) / 2.
            assert all(d >= 2.0 * 2**n for n, d in enumerate(delays)), delays
