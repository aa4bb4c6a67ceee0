"""The command line with a German and an English profile: the .ics export is worded in
each profile's language; ``--json`` keeps its keys and machine values, while the
reminders' ``title`` and ``message`` carry the profile's language."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from needlecare.app.dispatch import profile_context
from needlecare.cli.main import cli
from needlecare.config import load_config
from needlecare.domain import planning
from needlecare.domain.protocol import default_protocol
from needlecare.domain.reminders import from_plan
from needlecare.domain.sessions import Session, SessionStatus
from needlecare_integrations.store import SqliteStore

pytestmark = pytest.mark.integration

END = datetime(2026, 3, 27, 19, 0, tzinfo=UTC)


def session(profile: str) -> Session:
    return Session(
        id=f"ses_{profile}",
        profile=profile,
        device_id=None,
        setting="home",
        status=SessionStatus.COMPLETED,
        started_at=END - timedelta(minutes=20),
        ended_at=END,
        last_seen_at=END,
        source="manual",
    )


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """A store where Alice (German) and Bob (English) each have a session and its plan."""
    path = tmp_path / "needlecare.yaml"
    path.write_text(
        f'store: {{path: "{tmp_path / "needlecare.db"}"}}\n'
        "profiles:\n"
        "  alice: {timezone: Europe/Berlin, language: de}\n"
        "  bob: {timezone: Europe/Berlin}\n",
        encoding="utf-8",
    )
    config = load_config(path, environ={})
    store = SqliteStore.open(tmp_path / "needlecare.db", now=END)
    try:
        for profile in ("alice", "bob"):
            store.save_session(session(profile))
            ctx = profile_context(config, profile)
            for planned in planning.plan_session(session(profile), default_protocol(), ctx, END):
                store.reminders.save(from_plan(planned, END))
    finally:
        store.close()
    return path


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert 0 == result.exit_code, result.output
    return result.output


def test_ics_export_in_each_profile_language(config_path: Path) -> None:
    """SUMMARY and DESCRIPTION of each window in its profile's language."""
    ics = run("calendar", "-c", str(config_path)).replace("\r\n ", "")
    assert "SUMMARY:Microneedling-Zeitfenster (alice)" in ics
    assert "DESCRIPTION:Nächste Behandlung zu Hause zwischen diesen Daten." in ics
    assert "SUMMARY:Microneedling window (bob)" in ics


def test_reminders_json_keeps_keys_and_machine_values(config_path: Path) -> None:
    """Same keys, kinds and statuses for both; Alice's titles are German."""
    rows: list[dict[str, Any]] = json.loads(run("reminders", "--json", "-c", str(config_path)))
    alice = {r["kind"]: r for r in rows if r["profile"] == "alice"}
    bob = {r["kind"]: r for r in rows if r["profile"] == "bob"}
    assert sorted(alice) == sorted(bob)
    for kind, row in alice.items():
        assert sorted(row) == sorted(bob[kind])
        assert (row["status"], row["channels"]) == (bob[kind]["status"], bob[kind]["channels"])
    assert "Beruhige deine Haut" == alice["soothe"]["title"]
    assert "Soothe your skin" == bob["soothe"]["title"]
    assert alice["actives_pause"]["message"].startswith("Keine Retinoide oder Peelings bis ")
