"""The benches at tiny sizes, so they cannot rot; no timing is asserted."""

# Asserts are written `expected == actual` (STYLE.md), which SIM300 calls Yoda conditions.

import importlib
import json
from collections.abc import Callable, Iterator
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


# -- the benches of docs/PERFORMANCE.md, each at a tiny size ------------------------------------

INGEST_EVENTS = 300
INGEST_BLOCK = 50
LATENCY_SESSIONS = 20


@pytest.fixture(scope="module")
def benches() -> Iterator[Callable[[str], ModuleType]]:
    """Imports ``bench.<name>`` with the repository root on sys.path."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT))
        yield lambda name: importlib.import_module(f"bench.{name}")


def _run_main(module: ModuleType, out: Path, argv: list[str]) -> dict[str, Any]:
    exit_code = module.main([*argv, "--out", str(out), "--workdir", str(out.parent / "work")])
    assert 0 == exit_code
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


@pytest.fixture(scope="module")
def ingest_report(
    benches: Callable[[str], ModuleType], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One ingest run: 300 events, 6 sessions on 3 devices, each scenario once."""
    out = tmp_path_factory.mktemp("ingest") / "ingest.json"
    argv = ["--events", str(INGEST_EVENTS), "--block", str(INGEST_BLOCK), "--devices", "3"]
    return _run_main(benches("ingest"), out, [*argv, "--repeat", "1"])


@pytest.fixture(scope="module")
def latency_report(
    benches: Callable[[str], ModuleType], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One latency run: 20 sessions over 3 profiles, in 2 rounds."""
    out = tmp_path_factory.mktemp("latency") / "latency.json"
    argv = ["--sessions", str(LATENCY_SESSIONS), "--profiles", "3", "--rounds", "2"]
    return _run_main(benches("latency"), out, [*argv, "--warmup", "2"])


@pytest.fixture(scope="module")
def idle_report(
    benches: Callable[[str], ModuleType], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One idle run: 1000 pending reminders, 3 s."""
    out = tmp_path_factory.mktemp("idle") / "idle.json"
    return _run_main(benches("idle"), out, ["--pending", "1000", "--idle", "3"])


class TestIngestBench:
    def test_every_scenario_is_reported(self, ingest_report: dict[str, Any]) -> None:
        """Drain and live, bare and needlecare, each with a rate and a ratio per mode."""
        scenarios = {(r["mode"], r["subscriber"]) for r in ingest_report["results"]}
        assert {(m, s) for m in ("drain", "live") for s in ("bare", "needlecare")} == scenarios
        assert {"drain", "live", "drain_from_start"} == set(ingest_report["ratios"])
        assert all(r["msgs_per_s"] > 0 for r in ingest_report["results"])
        assert {"nproc", "python", "mosquitto", "workdir_fs"} <= set(ingest_report["machine"])

    def test_the_daemon_stores_every_event_once(self, ingest_report: dict[str, Any]) -> None:
        """Every session event once, a heartbeat row per device and day; no dead letter."""
        sessions = INGEST_EVENTS // INGEST_BLOCK
        for result in ingest_report["results"]:
            if result["subscriber"] != "needlecare":
                continue
            check = result["check"]
            assert 2 * sessions == check["events"]
            assert 1 <= check["heartbeat_day_rows"] <= 2 * 3
            assert check["events"] + check["heartbeat_day_rows"] == check["distinct_events"]
            assert {"completed": sessions} == check["sessions"]
            assert (0, 0) == (check["dead_letters"], check["redelivered_duplicates"])
            assert 0 == result["exit_code"]

    def test_the_bare_subscriber_gets_every_message_once(
        self, ingest_report: dict[str, Any]
    ) -> None:
        """Persistent session and QoS 1: nothing lost, nothing twice."""
        for result in ingest_report["results"]:
            if result["subscriber"] == "bare":
                assert (INGEST_EVENTS, 0, 0) == (
                    result["unique"],
                    result["lost"],
                    result["duplicates"],
                )


class TestLatencyBench:
    def test_each_session_gets_exactly_one_soothe(self, latency_report: dict[str, Any]) -> None:
        """The protocol override leaves one prompt per session, and it arrives once."""
        assert {"min": 1, "max": 1} == latency_report["soothe_per_session"]
        assert {"soothe"} == set(latency_report["notification_kinds"])
        assert {"needlecare": 0, "FULL": 0, "NORMAL": 0} == latency_report["timeouts"]

    def test_every_series_has_every_sample(self, latency_report: dict[str, Any]) -> None:
        """The daemon's two series and both bare ones, each with every measured round trip."""
        series = latency_report["series_ms"]
        assert {
            "needlecare_from_publish",
            "needlecare_from_puback",
            "bare_full",
            "bare_normal",
        } == set(series)
        assert {LATENCY_SESSIONS} == {figures["n"] for figures in series.values()}
        assert {"FULL": LATENCY_SESSIONS + 2, "NORMAL": LATENCY_SESSIONS + 2} == latency_report[
            "bare_handled"
        ]

    def test_the_daemon_log_splits_the_latency(self, latency_report: dict[str, Any]) -> None:
        """Every session's end is found in the log as recorded and its soothe as delivered."""
        stages = latency_report["breakdown_ms"]
        assert {"to_recorded", "to_delivered", "to_receipt"} == set(stages)
        assert {LATENCY_SESSIONS} == {figures["n"] for figures in stages.values()}


class TestIdleBench:
    def test_every_thread_is_sampled(self, idle_report: dict[str, Any]) -> None:
        """The core loop's thread and the MQTT thread are there, each with its switches."""
        names = {thread["name"] for thread in idle_report["threads"]}
        if "py-spy" in idle_report["thread_names_from"]:
            assert {"MainThread", "mqtt"} <= names
        assert all(thread["voluntary"] >= 0 for thread in idle_report["threads"])

    def test_memory_and_exit_are_reported(self, idle_report: dict[str, Any]) -> None:
        """RSS is measured while connected, and the daemon stops cleanly afterwards."""
        assert 0 < idle_report["rss_mib"] <= idle_report["rss_peak_mib"]
        assert 0 == idle_report["exit_code"]


class TestRunAllTargets:
    def test_targets_name_each_figure(
        self,
        benches: Callable[[str], ModuleType],
        ingest_report: dict[str, Any],
        latency_report: dict[str, Any],
        idle_report: dict[str, Any],
    ) -> None:
        """run_all's summary has a verdict for each target of the three reports."""
        reports = {"ingest": ingest_report, "latency": latency_report, "idle": idle_report}
        rows = benches("run_all").targets(reports)
        assert 6 == len(rows)  # ingest drain, live, drain from start; latency; idle twice
        assert all({"target", "value", "met"} == set(row) for row in rows)


@pytest.mark.e2e
class TestHaDeliveryBench:
    def test_burst_and_sequential_prompts_reach_home_assistant(
        self,
        benches: Callable[[str], ModuleType],
        homeassistant: Any,
        tmp_path: Path,
    ) -> None:
        """Against the session's Home Assistant: 5 prompts at once, then 3 one at a time."""
        module = benches("ha_delivery")
        report = module.run(burst=5, sequential=3, hass=homeassistant, workdir=tmp_path)
        assert 5 == report["burst"]["sessions"]
        assert 5 == report["burst"]["delay_ms"]["n"]
        assert 3 == report["sequential_ms"]["n"]
        assert {"to_delivered", "to_announced"} == set(report["sequential_split_ms"])
        assert 0 == report["exit_code"]
        assert "burst:" in module.render(report)


class TestYearsOnASmallBoardBenches:
    """writes, startup, year and flood at tiny sizes (no figure is judged here)."""

    def test_year_sends_each_reminder_once(
        self, benches: Callable[[str], ModuleType], tmp_path: Path
    ) -> None:
        report = _run_main(
            benches("year"), tmp_path / "year.json", ["--days", "3", "--measure-days", "1"]
        )
        assert (3, 0, 0) == (
            report["days"],
            report["reminders_sent_twice"],
            report["reminders_waiting_past_due"],
        )
        assert report["reminders_sent"] > 0
        assert report["write_bytes_per_day"] > 0

    def test_flood_is_dead_lettered_and_capped(
        self, benches: Callable[[str], ModuleType], tmp_path: Path
    ) -> None:
        report = _run_main(benches("flood"), tmp_path / "flood.json", ["--payloads", "300"])
        assert 300 == report["dead_letters_kept"] + report["dead_letters_dropped"]
        assert report["stopped_cleanly"]

    def test_startup_pairs_the_daemon_with_bare_paho(
        self, benches: Callable[[str], ModuleType], tmp_path: Path
    ) -> None:
        report = _run_main(benches("startup"), tmp_path / "startup.json", ["--rounds", "1"])
        assert (1, 1) == (len(report["bare_s"]), len(report["needlecare_s"]))
        assert report["ratio"] > 0

    def test_writes_measures_every_scenario(
        self, benches: Callable[[str], ModuleType], tmp_path: Path
    ) -> None:
        argv = ["--beats", "2", "--beat-every", "0.5", "--hold", "1", "--events", "200"]
        argv += ["--mix", "300", "--live", "10", "--rate", "50"]
        report = _run_main(benches("writes"), tmp_path / "writes.json", argv)
        names = [r["scenario"] for r in report["results"]]
        assert [
            "heartbeats-held", "heartbeats-each", "events-drain", "mix-drain", "events-live"
        ] == names  # fmt: skip
        assert all(r["exit_code"] == 0 and r["write_bytes"] >= 0 for r in report["results"])
