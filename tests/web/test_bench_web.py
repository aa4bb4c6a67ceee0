"""bench.web at a tiny size: it runs, both daemons start, every figure is in the report."""

import importlib
import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_bench_web_reports_every_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Latency percentiles for both routes and RSS with the web app off and on (no targets)."""
    monkeypatch.syspath_prepend(str(ROOT))
    bench = importlib.import_module("bench.web")
    out = tmp_path / "web.json"
    argv = ["--sessions", "40", "--requests", "5", "--out", str(out)]
    bench.main([*argv, "--workdir", str(tmp_path / "work")])
    report = json.loads(out.read_text())
    for route in ("/api/v1/reminders", "/api/v1/sessions"):
        assert 5 == report[route]["n"]
    assert report["rss_web_off_mib"] > 0
    assert report["rss_web_on_mib"] > 0
    assert {"extra_rss_mib", "target_met", "machine"} <= set(report)
