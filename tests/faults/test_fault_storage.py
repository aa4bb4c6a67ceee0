"""The store's file system fills up or turns read-only while events keep arriving.

Promise (README, "How it works"): if the database cannot be written, nothing is
acknowledged, the daemon says why, retries with backoff and keeps running; the
broker keeps the messages; once the disk is writable again every event is
recorded exactly once.

These tests mount file systems, so they run as root. A failed mount fails the
test (a skip would hide a broken set-up). Linux refuses ``mount -o remount,ro`` of
a file system on which a process holds a file open for writing (EBUSY), so a
read-only store is tested in the two ways that happen for real: the file system
is already read-only when the daemon starts (after a crash or a clean stop), and
ext4 switches itself to read-only under the running daemon (``errors=remount-ro``
after an error, forced here through /sys/fs/ext4/<dev>/trigger_fs_error).
"""

import errno
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultkit import (
    Publisher,
    PublisherThread,
    event_ids_in,
    ingest_config,
    report,
    session_starts,
)

from needlecare_integrations.broker import MosquittoBroker
from needlecare_integrations.store import StoreError
from support.daemon import DaemonFactory, DaemonProcess, wait_until

pytestmark = pytest.mark.integration

FS_SIZE = "16m"  # room for the database and its WAL; the filler takes the rest
RECOVERY_WAIT = 45.0  # the daemon's retry backoff grows to 30 s


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


def must(*command: str, why: str) -> None:
    result = run(*command)
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}; {why}",
            pytrace=False,
        )


def unmount(point: Path) -> None:
    """Unmount, retrying while a process still lets go; detach lazily as a last resort."""
    for _ in range(50):
        if run("umount", str(point)).returncode == 0:
            return
        time.sleep(0.1)
    run("umount", "-l", str(point))


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of our own (list it before daemon_factory: unmounted after the kill)."""
    point = tmp_path / "small-fs"
    point.mkdir()
    must(
        "mount", "-t", "tmpfs", "-o", f"size={FS_SIZE}", "tmpfs", str(point),
        why="the disk-full tests mount a tmpfs and need root",
    )  # fmt: skip
    try:
        yield point
    finally:
        unmount(point)


@pytest.fixture
def ext4_fs(tmp_path: Path, small_fs: Path) -> Iterator[Path]:
    """An ext4 file system (errors=remount-ro) on a loop device, its image in the tmpfs."""
    for program in ("mkfs.ext4", "e2fsck", "losetup"):
        if shutil.which(program) is None:
            pytest.fail(f"{program} not found: apt-get install e2fsprogs mount", pytrace=False)
    image = small_fs / "ext4.img"
    must("truncate", "-s", "12M", str(image), why="making the image")
    must("mkfs.ext4", "-q", "-F", str(image), why="making the file system")
    point = tmp_path / "ext4"
    point.mkdir()
    must(
        "mount", "-o", "loop,errors=remount-ro", str(image), str(point),
        why="the read-only test mounts ext4 on a loop device and needs root and /dev/loop*",
    )  # fmt: skip
    try:
        yield point
    finally:
        unmount(point)


def store_daemon(factory: DaemonFactory, broker: MosquittoBroker, folder: Path) -> DaemonProcess:
    """A daemon whose SQLite store lives in ``folder``."""
    db = folder / "needlecare.db"
    daemon = factory(broker, store={"path": str(db)}, **ingest_config())
    daemon.db = db  # where count() and read() look
    return daemon


def fill(folder: Path) -> Path:
    """Write a filler file until the file system is full; returns it."""
    filler = folder / "filler"
    chunk = b"\0" * (256 * 1024)
    # Unbuffered: a buffered writer would try the rejected bytes again on close,
    # and fail there.
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
    return filler


def readable_count(daemon: DaemonProcess) -> int | None:
    """Events in the store, or None when it cannot even be read (read-only, no -shm file)."""
    try:
        return int(daemon.read(lambda s: s.count("events")))
    except StoreError:
        return None


def wait_recorded(daemon: DaemonProcess, count: int, timeout: float, why: str) -> None:
    """Wait for ``count`` events in the store; fail naming the daemon's state at the end."""
    deadline = time.monotonic() + timeout
    while daemon.count("events") < count:
        if time.monotonic() > deadline:
            last = (failures(daemon) or ["none"])[-1]
            pytest.fail(
                f"{daemon.count('events')} of {count} events recorded {timeout:g} s after {why};"
                f" daemon alive: {daemon.alive()}, store_write_failed logged"
                f" {len(failures(daemon))} times, the last: {last}",
                pytrace=False,
            )
        time.sleep(0.1)


def failures(daemon: DaemonProcess) -> list[str]:
    return [
        str(entry.get("error", ""))
        for entry in daemon.log_events()
        if entry.get("event") == "store_write_failed"
    ]


def exactly_once(daemon: DaemonProcess, messages: list[tuple[str, bytes, str]]) -> None:
    ids = event_ids_in(daemon.read)
    assert (len(messages), {key for _, _, key in messages}) == (len(ids), set(ids))
    assert len(messages) == daemon.count("sessions")


class TestDiskFull:
    def test_full_disk_holds_events_on_the_broker_until_space_returns(
        self, small_fs: Path, mosquitto: MosquittoBroker, daemon_factory: DaemonFactory
    ) -> None:
        """Disk full: no acks, store_write_failed, still running; space back: all recorded once."""
        daemon = store_daemon(daemon_factory, mosquitto, small_fs).start()
        messages = session_starts(1500, "full")
        publisher = Publisher(mosquitto)
        sending = PublisherThread(publisher, messages, rate=150).start()
        wait_until(lambda: daemon.count("events") >= 200, what="events before the disk fills")
        filler = fill(small_fs)
        wait_until(lambda: failures(daemon), timeout=20, what="store_write_failed")
        assert "database or disk is full" in failures(daemon)[0]
        held = daemon.count("events")
        wait_until(lambda: len(publisher.acked()) >= held + 150, what="more events sent")
        assert held == daemon.count("events"), "recorded while the disk was full"
        assert daemon.alive()
        waiting_on_broker = len(publisher.acked()) - held

        filler.unlink()
        wait_until(
            lambda: daemon.log_count("store_write_recovered") >= 1,
            timeout=RECOVERY_WAIT,
            what="store_write_recovered",
        )
        sending.join()
        publisher.wait_all_acked()
        publisher.close()
        wait_until(lambda: daemon.count("events") >= len(messages), timeout=60, what="all")
        exactly_once(daemon, messages)
        assert 0 == daemon.log_count("daemon_failed")
        report(
            "disk_full",
            events=len(messages),
            held_on_broker_while_full=waiting_on_broker,
            write_failures_logged=len(failures(daemon)),
            duplicates_seen=daemon.log_count("event_duplicate"),
        )


class TestReadOnly:
    @pytest.mark.parametrize("how", ["sigkill", "clean_stop"])
    def test_read_only_at_start_then_writable_records_everything_once(
        self, how: str, small_fs: Path, mosquitto: MosquittoBroker, daemon_factory: DaemonFactory
    ) -> None:
        """Store read-only when the daemon starts, writable later: nothing lost, nothing doubled.

        The daemon may refuse to start (exit 4, store unusable) or run and retry;
        either way it must not acknowledge, and once the store is writable the
        queued events must be recorded (after a restart, if it had exited).
        """
        daemon = store_daemon(daemon_factory, mosquitto, small_fs).start()
        publisher = Publisher(mosquitto)
        before = session_starts(200, "ro")
        publisher.publish_all(before)
        wait_until(lambda: daemon.count("events") >= 200, what="events before")
        if how == "sigkill":
            daemon.kill()  # leaves the -wal and -shm files, as a crash or power cut does
        else:
            assert 0 == daemon.stop()
        must("mount", "-o", "remount,ro", str(small_fs), why="no process writes to it now")
        queued = session_starts(300, "ro", first=200)
        publisher.publish_all(queued)
        publisher.wait_all_acked()
        daemon.start(wait_connected=False)
        wait_until(
            lambda: not daemon.alive() or failures(daemon),
            what="the daemon to exit or report store_write_failed",
        )
        assert readable_count(daemon) in (200, None), "recorded on a read-only file system"
        refused = not daemon.alive()
        if refused:
            assert 4 == daemon.wait_exit()
            assert daemon.log_count("store_unusable") >= 1
        must("mount", "-o", "remount,rw", str(small_fs), why="making the store writable again")
        if refused:
            daemon.start()
        wait_recorded(daemon, 500, RECOVERY_WAIT, "the store became writable again")
        publisher.close()
        exactly_once(daemon, before + queued)
        report(
            f"read_only_at_start_{how}",
            queued=len(queued),
            exit_code=4 if refused else None,
            write_failures_logged=len(failures(daemon)),
        )

    def test_file_system_turning_read_only_under_the_daemon(
        self, ext4_fs: Path, mosquitto: MosquittoBroker, daemon_factory: DaemonFactory
    ) -> None:
        """ext4 goes read-only mid-stream: no acks, store_write_failed, still running.

        Back to writable takes an unmount and e2fsck (the journal was aborted), so
        the daemon is stopped first; after the restart every event is there once.
        """
        daemon = store_daemon(daemon_factory, mosquitto, ext4_fs).start()
        messages = session_starts(1000, "ext4")
        publisher = Publisher(mosquitto)
        sending = PublisherThread(publisher, messages, rate=150).start()
        wait_until(lambda: daemon.count("events") >= 200, what="events before the error")
        device = Path(run("findmnt", "-no", "SOURCE", str(ext4_fs)).stdout.strip()).name
        Path(f"/sys/fs/ext4/{device}/trigger_fs_error").write_text("fault test\n")
        wait_until(lambda: failures(daemon), timeout=20, what="store_write_failed")
        held = max(daemon.count("events"), 200)
        wait_until(lambda: len(publisher.acked()) >= held + 150, what="more events sent")
        assert daemon.alive()
        assert 0 == daemon.log_count("daemon_failed")
        stop_code = daemon.stop()
        unmount(ext4_fs)
        image = ext4_fs.parent / "small-fs" / "ext4.img"
        assert run("e2fsck", "-fy", str(image)).returncode in (0, 1)  # 1: errors corrected
        must("mount", "-o", "loop,errors=remount-ro", str(image), str(ext4_fs), why="remount")
        daemon.start()
        sending.join()
        publisher.wait_all_acked()
        publisher.close()
        wait_until(lambda: daemon.count("events") >= len(messages), timeout=60, what="all")
        exactly_once(daemon, messages)
        report(
            "read_only_under_the_daemon",
            events=len(messages),
            error=failures(daemon)[0],
            recorded_before_the_error_at_least=held,
            stop_exit_code=stop_code,
            duplicates_seen=daemon.log_count("event_duplicate"),
        )
