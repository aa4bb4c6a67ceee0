"""Ingress: the Supervisor is trusted by its TCP peer address alone, never by a header.

The daemon runs in a network namespace of its own (``unshare -rn``), where
172.30.32.2 is a local address, so a client can connect from it for real.
"""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

PROBE = Path(__file__).with_name("ingress_probe.py")
BROWSER_PROBE = Path(__file__).with_name("ingress_browser_probe.py")


def in_namespace(probe: Path, workdir: Path) -> dict[str, Any]:
    """Run ``probe`` in a new network namespace where 172.30.32.2 is local; its JSON."""
    script = (
        "ip link set lo up && ip addr add 172.30.32.2/32 dev lo && "
        f'exec "{sys.executable}" "{probe}" "{workdir}"'
    )
    result = subprocess.run(
        ["unshare", "-rn", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert 0 == result.returncode, result.stderr[-3000:]
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return in_namespace(PROBE, tmp_path_factory.mktemp("ingress"))


class TestIngress:
    def test_supervisor_needs_no_token(self, seen: dict[str, Any]) -> None:
        """Requests from 172.30.32.2 are let in without the token."""
        assert 200 == seen["supervisor_api"]["status"]
        assert 200 == seen["no_token_supervisor"]["status"]

    def test_ingress_path_prefixes_every_link(self, seen: dict[str, Any]) -> None:
        """The page's <base> (every link and asset is relative to it) is X-Ingress-Path."""
        assert "/api/hassio_ingress/Xy12-ab/" == seen["supervisor_page"]["base"]

    def test_odd_ingress_path_is_ignored(self, seen: dict[str, Any]) -> None:
        """A prefix that is not a plain path never reaches the page."""
        assert "/" == seen["supervisor_bad_prefix"]["base"]

    def test_forwarded_headers_from_localhost_are_not_believed(self, seen: dict[str, Any]) -> None:
        """X-Forwarded-For / Forwarded naming the Supervisor, sent from 127.0.0.1: 401."""
        assert 401 == seen["local_forged"]["status"]
        assert 401 == seen["no_token_local_forged"]["status"]

    def test_others_need_the_token(self, seen: dict[str, Any]) -> None:
        """Any other peer needs the token; without one configured, only health answers."""
        assert 200 == seen["local_token_page"]["status"]
        assert 401 == seen["no_token_local"]["status"]
        assert 200 == seen["no_token_health"]["status"]

    def test_ingress_path_only_from_the_supervisor(self, seen: dict[str, Any]) -> None:
        """X-Ingress-Path from anyone else does not change the links."""
        assert "/" == seen["local_token_page"]["base"]


class TestIngressInABrowser:
    def test_the_app_works_under_the_ingress_prefix(self, tmp_path: Path) -> None:
        """Chromium behind a Supervisor-like proxy: every request under the prefix, Done works."""
        found = in_namespace(BROWSER_PROBE, tmp_path)
        entry = found["base"]
        assert entry.endswith("/api/hassio_ingress/Zq81-probe/")
        assert 2 == found["cards"]
        assert [] == [url for url in found["requests"] if not url.startswith(entry)]
        assert [] == found["outside"]
        assert [] == found["errors"]
        assert 201 == found["logged"]
        assert found["acked"] >= 1
        assert any(url.endswith("/api/v1/events") for url in found["requests"])
