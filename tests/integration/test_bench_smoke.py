"""The reminder-scale bench at a tiny size, so it cannot rot; no timing is asserted."""

# Asserts are written `expected == actual` (STYLE.md), which SIM300 calls Yoda conditions.

import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SIZE = 1000


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    """``bench.reminder_scale``, importable however pytest was started (the root is no package)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT))
        yield importlib.import_module("bench.reminder_scale")


@pytest.fixture(scope="module")
def report(bench: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The JSON report of one run at N=1000, APScheduler comparison included (run once)."""
    tmp_path = tmp_path_factory.mktemp("bench")
    out = tmp_path / "results" / "reminder_scale.json"
    argv = ["--sizes", str(SIZE), "--apscheduler-max", str(SIZE)]
    exit_code = bench.main([*argv, "--out", str(out), "--workdir", str(tmp_path / "work")])
    assert 0 == exit_code
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


class TestReminderScaleBench:
    def test_report_has_every_section(self, report: dict[str, Any]) -> None:
        """The JSON holds the machine, the import floor and each figure for the size run."""
        assert [SIZE] == report["sizes"]
        assert {"nproc", "python", "sqlite", "apscheduler", "mosquitto"} <= set(report["machine"])
        assert {"seconds", "rss_mib"} == set(report["import_floor"])
        (result,) = report["results"]
        assert {"size", "seed_s", "file_mib", "daemon", "store", "apscheduler"} == set(result)
        assert {
            "started_s",
            "connected_s",
            "rss_mib",
            "rss_peak_mib",
            "notified",
            "lateness_ms",
            "exit_code",
        } == set(result["daemon"])
        for key in ("open_ms", "next_due_at_us", "due_next_us", "due_now_us"):
            assert {"median", "p99"} == set(result["store"][key])
        assert {"add_s", "rss_growth_mib"} <= set(result["apscheduler"])

    def test_daemon_delivers_the_known_reminder_among_many(self, report: dict[str, Any]) -> None:
        """Among N pending, the daemon armed the earliest: it reached the mirror, stored as sent."""
        (result,) = report["results"]
        assert True is result["daemon"]["notified"]
        assert 0 == result["daemon"]["exit_code"]
        assert "sent" == result["store"]["known_status"]

    def test_store_queries_see_the_seeded_reminders(self, report: dict[str, Any]) -> None:
        """The next due reminder is found at its time, and nothing is due now."""
        store = report["results"][0]["store"]
        assert (1, 0) == (store["due_next_rows"], store["due_now_rows"])

    def test_apscheduler_holds_one_job_per_reminder(self, report: dict[str, Any]) -> None:
        """The comparison really added a job for every reminder."""
        assert SIZE == report["results"][0]["apscheduler"]["jobs"]
