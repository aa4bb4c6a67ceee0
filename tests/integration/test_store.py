"""The SQLite journal on real files: migrations, backups, writes, reads and failures."""

# Asserts are written `expected == actual` (STYLE.md), which SIM300 calls Yoda conditions.

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from needlecare.app.ports import StoreUnavailableError
from needlecare.domain.records import (
    DeadLetter,
    DeviceSeen,
    EventRecord,
    ProductRecord,
    SkinCheckRecord,
)
from needlecare.domain.sessions import Session, SessionStatus
from needlecare_integrations.store import SCHEMA_VERSION, SqliteStore, StoreError, migrate
from needlecare_integrations.store.sqlite import from_db, to_db

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 1, 19, 5, 7, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
V1 = (1, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);")
V2 = (2, "ALTER TABLE notes ADD COLUMN tag TEXT;")
TABLES = ("events", "sessions", "dead_letters")


# -- builders ------------------------------------------------------------------


def event(event_id: str, minute: int = 0, *, profile: str | None = "alice") -> EventRecord:
    return EventRecord(
        event_id=event_id,
        source="device",
        source_id="pen1",
        type="session_started",
        profile=profile,
        occurred_at=NOW + timedelta(minutes=minute),
        received_at=NOW + timedelta(minutes=minute, seconds=1),
        payload=f'{{"event_id": "{event_id}"}}',
    )


def session(
    session_id: str,
    *,
    device_id: str | None = "pen1",
    profile: str = "alice",
    status: SessionStatus = SessionStatus.OPEN,
    minute: int = 0,
) -> Session:
    started = NOW + timedelta(minutes=minute)
    return Session(
        id=session_id,
        profile=profile,
        device_id=device_id,
        setting="home",
        status=status,
        started_at=started,
        ended_at=None if status is SessionStatus.OPEN else started + timedelta(minutes=15),
        last_seen_at=started,
        needle_depth_mm=0.5,
        zones=("forehead", "cheeks"),
        session_ref="ref-" + session_id,
    )


def skin_check(event_id: str, profile: str, minute: int) -> SkinCheckRecord:
    return SkinCheckRecord(
        event_id=event_id,
        profile=profile,
        checked_at=NOW + timedelta(minutes=minute),
        redness=2,
        note=None,
    )


def dead_letter(topic: str = "needlecare/device/pen1/event") -> DeadLetter:
    return DeadLetter(
        received_at=NOW, topic=topic, payload_excerpt="{not json", payload_size=9, reason="bad"
    )


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.bak-*"))


def user_version(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _link(path: Path) -> str:
    try:
        return str(path.readlink())
    except OSError:  # closed meanwhile
        return ""


def tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {name for (name,) in rows}


# -- fixtures ------------------------------------------------------------------


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "needlecare.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore.open(db_path, now=NOW)
    yield opened
    opened.close()


@pytest.fixture
def raw(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A plain autocommit connection, as SqliteStore.open makes one, for migrate()."""
    with closing(sqlite3.connect(db_path, isolation_level=None)) as conn:
        yield conn


# -- opening and migrating -----------------------------------------------------


class TestOpen:
    def test_fresh_file_is_created_in_wal_mode_at_the_current_schema(
        self, db_path: Path, store: SqliteStore
    ) -> None:
        """A new file is journalled in WAL mode, fully migrated, and not backed up."""
        with closing(sqlite3.connect(db_path)) as conn:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        assert ("wal", SCHEMA_VERSION) == (mode, version)
        assert [] == backups(db_path)

    def test_a_savepoint_past_64_kib_opens_no_temporary_file(self, store: SqliteStore) -> None:
        """Savepoint journals stay in memory: SQLite used to put them in a new file in
        /var/tmp once past 64 KiB (a turn that planned and delivered a prompt)."""
        with store.transaction():
            for n in range(2000):
                store.add_event(event(f"e{n}", n))
        with store.transaction(), store.savepoint():  # rewrites every page of the events
            store._conn.execute("UPDATE events SET payload = payload || ' '")
            temporary = [
                link for fd in Path("/proc/self/fd").iterdir() if "etilqs_" in (link := _link(fd))
            ]
        assert [] == temporary

    def test_missing_parent_folders_are_created(self, tmp_path: Path) -> None:
        """store.path may point into folders that do not exist yet."""
        path = tmp_path / "var" / "lib" / "needlecare.db"
        SqliteStore.open(path, now=NOW).close()
        assert SCHEMA_VERSION == user_version(path)

    def test_reopening_an_up_to_date_store_changes_nothing(self, db_path: Path) -> None:
        """Opening a current store again backs nothing up and leaves the file as it was."""
        first = SqliteStore.open(db_path, now=NOW)
        first.add_event(event("e1"))
        first.close()
        before = (db_path.read_bytes(), sorted(p.name for p in db_path.parent.iterdir()))
        SqliteStore.open(db_path, now=NOW + timedelta(days=1), backup=True).close()
        after = (db_path.read_bytes(), sorted(p.name for p in db_path.parent.iterdir()))
        assert before == after
        assert [] == backups(db_path)

    def test_store_newer_than_the_code_is_refused(self, db_path: Path) -> None:
        """A file written by a later release is not opened (nor downgraded)."""
        SqliteStore.open(db_path, now=NOW).close()
        with closing(sqlite3.connect(db_path)) as conn:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        with pytest.raises(StoreError, match="newer than this release"):
            SqliteStore.open(db_path, now=NOW)
        assert SCHEMA_VERSION + 1 == user_version(db_path)


class TestMigrate:
    def test_fresh_database_is_migrated_without_a_backup(
        self, db_path: Path, raw: sqlite3.Connection
    ) -> None:
        """Every migration runs on an empty file; there is nothing to back up."""
        found = migrate(raw, db_path, backup=True, now=NOW, migrations=[V1, V2])
        assert (0, 2) == (found, user_version(db_path))
        assert [] == backups(db_path)

    def test_upgrade_backs_up_the_old_version_first(
        self, db_path: Path, raw: sqlite3.Connection
    ) -> None:
        """The backup is named after the old version and the time, and holds the old data."""
        migrate(raw, db_path, backup=True, now=NOW, migrations=[V1])
        raw.execute("INSERT INTO notes (body) VALUES ('before the upgrade')")
        found = migrate(raw, db_path, backup=True, now=NOW, migrations=[V1, V2])
        assert (1, 2) == (found, user_version(db_path))
        assert [db_path.with_name("needlecare.db.bak-v1-20260301T190507Z")] == backups(db_path)
        with closing(sqlite3.connect(backups(db_path)[0])) as copy:
            assert [("before the upgrade",)] == copy.execute("SELECT body FROM notes").fetchall()
            assert 1 == copy.execute("PRAGMA user_version").fetchone()[0]
        assert [("before the upgrade", None)] == raw.execute(
            "SELECT body, tag FROM notes"
        ).fetchall()

    def test_upgrade_without_backup_writes_no_copy(
        self, db_path: Path, raw: sqlite3.Connection
    ) -> None:
        """backup=False (store.backup_before_migrate: false) upgrades in place."""
        migrate(raw, db_path, backup=False, now=NOW, migrations=[V1])
        raw.execute("INSERT INTO notes (body) VALUES ('x')")
        migrate(raw, db_path, backup=False, now=NOW, migrations=[V1, V2])
        assert 2 == user_version(db_path)
        assert [] == backups(db_path)

    @pytest.mark.parametrize(
        "numbers", [[1, 3], [2], [1, 1], [0, 1]], ids=["gap", "no-first", "twice", "zero"]
    )
    def test_migrations_must_be_numbered_one_to_n(
        self, db_path: Path, raw: sqlite3.Connection, numbers: list[int]
    ) -> None:
        """A gap, a duplicate or a wrong start is a packaging error, caught before any SQL."""
        steps = [(n, f"CREATE TABLE t{i} (x);") for i, n in enumerate(numbers)]
        with pytest.raises(RuntimeError, match="without gaps"):
            migrate(raw, db_path, backup=True, now=NOW, migrations=steps)
        assert (0, set()) == (user_version(db_path), tables(raw))

    def test_database_newer_than_the_migrations_is_refused(
        self, db_path: Path, raw: sqlite3.Connection
    ) -> None:
        """A schema version beyond the last migration raises and is left alone."""
        migrate(raw, db_path, backup=True, now=NOW, migrations=[V1, V2])
        with pytest.raises(RuntimeError, match="schema 2, newer than this release's 1"):
            migrate(raw, db_path, backup=True, now=NOW, migrations=[V1])
        assert 2 == user_version(db_path)

    def test_failing_migration_is_undone_whole(
        self, db_path: Path, raw: sqlite3.Connection
    ) -> None:
        """Bad SQL half-way through migration 2 keeps migration 1 and nothing of 2."""
        bad = (2, "CREATE TABLE tags (name TEXT);\nTHIS IS NOT SQL;")
        with pytest.raises(sqlite3.OperationalError):
            migrate(raw, db_path, backup=False, now=NOW, migrations=[V1, bad])
        assert (False, 1, {"notes"}) == (
            raw.in_transaction,
            raw.execute("PRAGMA user_version").fetchone()[0],
            tables(raw),
        )
        with closing(sqlite3.connect(db_path)) as other:
            assert (1, {"notes"}) == (user_version(db_path), tables(other))

    def test_after_a_failed_migration_the_fixed_one_applies(
        self, db_path: Path, raw: sqlite3.Connection
    ) -> None:
        """The connection is usable again: a corrected release migrates the same file."""
        bad = (2, "CREATE TABLE tags (name TEXT);\nTHIS IS NOT SQL;")
        with pytest.raises(sqlite3.OperationalError):
            migrate(raw, db_path, backup=False, now=NOW, migrations=[V1, bad])
        found = migrate(raw, db_path, backup=False, now=NOW, migrations=[V1, V2])
        assert (1, 2) == (found, user_version(db_path))


# -- writes and reads ----------------------------------------------------------


class TestEvents:
    def test_event_id_is_stored_once(self, store: SqliteStore) -> None:
        """add_event reports a redelivered event_id as a duplicate and keeps the first."""
        first = store.add_event(event("e1"))
        again = store.add_event(replace(event("e1"), payload="{}"))
        assert (True, False) == (first, again)
        assert [event("e1")] == list(store.iter_events())
        assert (True, False) == (store.has_event("e1"), store.has_event("e2"))

    def test_iter_events_in_arrival_order(self, store: SqliteStore) -> None:
        """Events come back in the order they were stored, not by their timestamps."""
        stored = [event("late", 30), event("early", 0, profile=None), event("middle", 10)]
        for record in stored:
            store.add_event(record)
        assert stored == list(store.iter_events())


class TestSessions:
    def test_saving_the_same_id_again_updates_the_row(self, store: SqliteStore) -> None:
        """save_session is an upsert: one row, holding the values saved last."""
        opened = session("s1")
        done = replace(
            opened,
            status=SessionStatus.COMPLETED,
            ended_at=NOW + timedelta(minutes=20),
            passes=3,
            duration_s=1200,
            zones=(),
        )
        store.save_session(opened)
        store.save_session(done)
        assert (1, [done]) == (store.count("sessions"), store.sessions())

    def test_latest_session_is_the_newest_of_the_device(self, store: SqliteStore) -> None:
        """The newest session of the asked device, even after an older one is updated."""
        older = session("s1", status=SessionStatus.COMPLETED)
        newer = session("s2", minute=60)
        store.save_session(older)
        store.save_session(newer)
        store.save_session(session("other", device_id="pen2", minute=90))
        store.save_session(replace(older, passes=2))
        assert newer == store.latest_session("pen1")
        assert store.latest_session("unknown") is None

    def test_open_sessions_lists_only_open_ones(self, store: SqliteStore) -> None:
        """Completed, inferred and aborted sessions are not open."""
        for number, status in enumerate(SessionStatus):
            store.save_session(
                session(f"s-{status.value}", device_id=f"pen{number}", status=status)
            )
        assert ["s-open"] == [s.id for s in store.open_sessions()]

    def test_sessions_filtered_by_profile(self, store: SqliteStore) -> None:
        """sessions(profile) keeps one person's sessions, in the order they were recorded."""
        store.save_session(session("a1", profile="alice"))
        store.save_session(session("b1", device_id=None, profile="bob"))
        store.save_session(session("a2", profile="alice", minute=5))
        assert (["a1", "a2"], ["b1"], ["a1", "b1", "a2"]) == (
            [s.id for s in store.sessions("alice")],
            [s.id for s in store.sessions("bob")],
            [s.id for s in store.sessions()],
        )


class TestDevices:
    @staticmethod
    def device_row(db_path: Path) -> tuple[str, int | None, int | None]:
        with closing(sqlite3.connect(db_path)) as conn:
            row = conn.execute(
                "SELECT last_seen_at, battery_pct, cartridge_uses FROM devices"
                " WHERE device_id = 'pen1'"
            ).fetchone()
        return (row[0], row[1], row[2])

    def test_last_seen_only_moves_forward(self, db_path: Path, store: SqliteStore) -> None:
        """A late, older sign of life does not turn back last_seen_at."""
        store.touch_device(DeviceSeen("pen1", NOW + timedelta(minutes=10), battery_pct=80))
        store.touch_device(DeviceSeen("pen1", NOW, battery_pct=70))
        assert (to_db(NOW + timedelta(minutes=10)), 70, None) == self.device_row(db_path)

    def test_unknown_readings_keep_the_known_ones(self, db_path: Path, store: SqliteStore) -> None:
        """A message without a battery or cartridge reading keeps the stored values."""
        store.touch_device(DeviceSeen("pen1", NOW, battery_pct=80, cartridge_uses=4))
        store.touch_device(DeviceSeen("pen1", NOW + timedelta(minutes=1)))
        assert (to_db(NOW + timedelta(minutes=1)), 80, 4) == self.device_row(db_path)


class TestDeadLetters:
    @pytest.mark.parametrize(
        "topic",
        [
            "needlecare/device/pen1/event",
            "needlecare/device/pen\x00/event",
            "needlecare/device/\u202epen\U0001f489\u0301\uffff/event",
            "needlecare/device/pen1\x1b[2J\r\n/event",
        ],
        ids=["plain", "nul", "odd-unicode", "control"],
    )
    def test_dead_letters_round_trip(self, store: SqliteStore, topic: str) -> None:
        """Whatever text a rejected topic holds comes back unchanged, with an id."""
        store.add_dead_letter(dead_letter(topic))
        assert [replace(dead_letter(topic), id=1)] == store.dead_letters()

    def test_dead_letters_in_arrival_order(self, store: SqliteStore) -> None:
        """Letters are numbered and listed in the order they came in."""
        for topic in ("b", "a", "c"):
            store.add_dead_letter(dead_letter(topic))
        assert [(1, "b"), (2, "a"), (3, "c")] == [(d.id, d.topic) for d in store.dead_letters()]


class TestSkinChecks:
    def test_skin_checks_filtered_by_profile_in_time_order(self, store: SqliteStore) -> None:
        """skin_checks(profile) keeps one person's readings, oldest first."""
        store.add_skin_check(skin_check("a-late", "alice", 30))
        store.add_skin_check(skin_check("b", "bob", 10))
        store.add_skin_check(skin_check("a-early", "alice", 0))
        assert (["a-early", "a-late"], ["b"], ["a-early", "b", "a-late"]) == (
            [c.event_id for c in store.skin_checks("alice")],
            [c.event_id for c in store.skin_checks("bob")],
            [c.event_id for c in store.skin_checks()],
        )

    def test_skin_check_round_trips(self, store: SqliteStore) -> None:
        """Every field of a reading, the note included, comes back as stored."""
        check = replace(skin_check("c1", "alice", 0), redness=4, note="tight, warm 🔥")
        store.add_skin_check(check)
        assert [check] == store.skin_checks("alice")


class TestTransaction:
    def test_writes_commit_together(self, db_path: Path, store: SqliteStore) -> None:
        """Writes in a transaction are visible to other connections once it ends."""
        with store.transaction():
            store.add_event(event("e1"))
            store.save_session(session("s1"))
        other = SqliteStore.open_read_only(db_path)
        counts = [other.count(table) for table in TABLES]
        other.close()
        assert [1, 1, 0] == counts

    def test_exception_rolls_back_every_write(self, store: SqliteStore) -> None:
        """An error inside the block undoes all of its writes, then propagates."""

        def record_then_fail() -> None:
            with store.transaction():
                store.add_event(event("e1"))
                store.save_session(session("s1"))
                store.add_dead_letter(dead_letter())
                raise LookupError

        with pytest.raises(LookupError):
            record_then_fail()
        assert [0, 0, 0] == [store.count(table) for table in TABLES]
        with store.transaction():
            store.add_event(event("e2"))
        assert 1 == store.count("events")

    def test_savepoint_undoes_only_its_own_writes(self, store: SqliteStore) -> None:
        """A failing message's writes go; the batch's other writes commit."""

        def record_then_fail() -> None:
            with store.savepoint():
                store.add_event(event("undone"))
                store.save_session(session("s1"))
                raise LookupError

        with store.transaction():
            store.add_event(event("kept"))
            with pytest.raises(LookupError):
                record_then_fail()
            store.add_event(event("also-kept"))
        assert (["kept", "also-kept"], 0) == (
            [e.event_id for e in store.iter_events()],
            store.count("sessions"),
        )

    def test_savepoint_that_succeeds_keeps_its_writes(self, store: SqliteStore) -> None:
        """A savepoint without an error releases into the transaction, which commits it."""
        with store.transaction(), store.savepoint():
            store.add_event(event("e1"))
        assert 1 == store.count("events")


# -- failures ------------------------------------------------------------------

WRITES: dict[str, Callable[[SqliteStore], object]] = {
    "add_event": lambda s: s.add_event(event("e1")),
    "save_session": lambda s: s.save_session(session("s1")),
    "touch_device": lambda s: s.touch_device(DeviceSeen("pen1", NOW)),
    "add_skin_check": lambda s: s.add_skin_check(skin_check("c1", "alice", 0)),
    "add_product": lambda s: s.add_product(
        ProductRecord("p1", "alice", NOW, "serum", ("hyaluronic acid",))
    ),
    "add_dead_letter": lambda s: s.add_dead_letter(dead_letter()),
}


class TestUnavailable:
    @pytest.fixture
    def read_only(self, db_path: Path, store: SqliteStore) -> Iterator[SqliteStore]:
        """A second store on the daemon's file whose writes fail as on a read-only mount."""
        opened = SqliteStore.open_read_only(db_path)
        yield opened
        opened.close()

    @pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
    def test_failed_write_raises_store_unavailable(
        self, read_only: SqliteStore, write: Callable[[SqliteStore], object]
    ) -> None:
        """sqlite3's OperationalError becomes the port's StoreUnavailableError, chained."""
        with pytest.raises(StoreUnavailableError, match="readonly") as caught:
            write(read_only)
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)

    def test_failed_write_in_a_transaction_ends_it(
        self, read_only: SqliteStore, store: SqliteStore
    ) -> None:
        """After a failed write the transaction is rolled back; both stores keep working."""
        with pytest.raises(StoreUnavailableError), read_only.transaction():
            read_only.add_event(event("e1"))
        store.add_event(event("e2"))
        assert ["e2"] == [e.event_id for e in read_only.iter_events()]


class TestOpenReadOnly:
    def test_missing_file_says_how_to_make_one(self, db_path: Path) -> None:
        """The message names the path and how to get a store there."""
        with pytest.raises(StoreError, match="start the daemon once") as caught:
            SqliteStore.open_read_only(db_path)
        assert str(db_path) in str(caught.value)
        assert not db_path.exists()

    def test_other_schema_version_is_refused(self, db_path: Path) -> None:
        """A store this release cannot read is refused with both versions named."""
        SqliteStore.open(db_path, now=NOW).close()
        with closing(sqlite3.connect(db_path)) as conn:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        with pytest.raises(StoreError, match=f"schema {SCHEMA_VERSION + 1}, this release"):
            SqliteStore.open_read_only(db_path)

    def test_file_that_is_not_a_database_is_refused(self, db_path: Path) -> None:
        """store.path pointing at some other file is a StoreError, not a sqlite3 error."""
        db_path.write_text("store:\n  path: needlecare.db\n" * 100, encoding="utf-8")
        with pytest.raises(StoreError, match="not a database") as caught:
            SqliteStore.open_read_only(db_path)
        assert str(db_path) in str(caught.value)

    def test_reads_what_the_writer_committed(self, db_path: Path, store: SqliteStore) -> None:
        """A reader opened beside the writer (WAL) sees each commit."""
        reader = SqliteStore.open_read_only(db_path)
        store.save_session(session("s1"))
        assert [session("s1")] == reader.sessions()
        reader.close()


class TestTimes:
    def test_times_come_back_as_the_same_instant_in_utc(self, store: SqliteStore) -> None:
        """A Europe/Berlin time is stored as UTC and read back as an aware UTC datetime."""
        local = datetime(2026, 7, 1, 21, 30, tzinfo=BERLIN)
        stored = replace(session("s1"), started_at=local, last_seen_at=local)
        store.save_session(stored)
        [loaded] = store.sessions()
        assert (local, timedelta(0), datetime(2026, 7, 1, 19, 30, tzinfo=UTC)) == (
            loaded.started_at,
            loaded.last_seen_at.utcoffset(),
            loaded.last_seen_at,
        )
        assert UTC is loaded.last_seen_at.tzinfo

    @given(
        st.lists(
            st.datetimes(
                min_value=datetime(1970, 1, 2),  # noqa: DTZ001 - bounds of naive draws
                max_value=datetime(2200, 1, 1),  # noqa: DTZ001
                timezones=st.timezones(),
            ),
            min_size=2,
            max_size=2,
        )
    )
    def test_stored_text_sorts_like_the_instants(self, moments: list[datetime]) -> None:
        """SQL compares the text (max(), ORDER BY), so text order must be time order."""
        texts = [to_db(moment) for moment in moments]
        instants = [moment.timestamp() for moment in moments]
        assert (instants[0] < instants[1]) == (texts[0] < texts[1])
        assert [m.astimezone(UTC) for m in moments] == [from_db(t) for t in texts]
