"""One daemon per store: an OS file lock beside the SQLite file.

``needlecare run`` takes an exclusive ``flock`` on ``<store>.lock`` (the store's
path plus ``.lock``) before it touches the broker and holds it for as long as
the process lives; the kernel lets go of it when the process ends, however it
ends, so a crash never leaves a stale lock behind. The holder writes its pid
into the file, for the message a second daemon prints.

Other commands ask ``is_held``/``holder_pid`` to learn whether a daemon is
running on a store (and refuse to act behind its back, or say that nothing
would pick their command up). The file itself is never deleted: removing a lock
file that another process has open is how two processes end up holding "the"
lock at once.
"""

import contextlib
import errno
import fcntl
import os
from pathlib import Path
from types import TracebackType

__all__ = ["StoreLock", "StoreLockError", "StoreLockedError", "holder_pid", "is_held", "lock_path"]

_READ_ONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}


def lock_path(store: Path) -> Path:
    """The lock file of the store at ``store``: the same path plus ``.lock``."""
    return store.with_name(store.name + ".lock")


class StoreLockError(RuntimeError):
    """The lock file cannot be created or opened at all."""


class StoreLockedError(RuntimeError):
    """Another process holds the store's lock."""

    def __init__(self, store: Path, pid: int | None) -> None:
        self.store = store
        self.lock = lock_path(store)
        self.pid = pid
        who = f"pid {pid}" if pid is not None else "a process whose pid is not known yet"
        super().__init__(
            f"another needlecare daemon ({who}) holds the lock {self.lock}"
            f" on the store {store}; only one daemon may run per store"
        )


class StoreLock:
    """The exclusive lock on one store, for the lifetime of a daemon.

    Use as a context manager, or call ``acquire``/``release``.
    """

    def __init__(self, store: Path) -> None:
        self.store = store
        self.path = lock_path(store)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "StoreLock":
        """Take the lock at once, or raise ``StoreLockedError`` naming the holder."""
        if self._fd is not None:
            return self
        fd, writable = _open(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLockedError(self.store, _read_pid(self.path)) from None
        if writable:
            _write_pid(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Let go of the lock (the process ending does the same)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # no pid of a process that no longer holds it
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> "StoreLock":
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def is_held(store: Path) -> bool:
    """Whether a process (this one included) holds the lock of ``store`` now."""
    try:
        fd = os.open(lock_path(store), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False  # no daemon ever ran on this store
    except OSError as error:
        raise StoreLockError(f"cannot read the lock {lock_path(store)}: {error}") from error
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the shared lock taken just to look
    return False


def holder_pid(store: Path) -> int | None:
    """The pid of the process holding the lock of ``store``, or None when nobody does.

    None as well while a holder has taken the lock but not yet written its pid.
    """
    return _read_pid(lock_path(store)) if is_held(store) else None


def _open(path: Path) -> tuple[int, bool]:
    """The lock file, created if need be; falls back to read-only on a read-only file system.

    ``flock`` works on a descriptor opened for reading, so a daemon started on a
    store that is (for now) read-only still keeps a second daemon out.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644), True
    except OSError as error:
        if error.errno in _READ_ONLY_ERRNOS and path.exists():
            try:
                return os.open(path, os.O_RDONLY | os.O_CLOEXEC), False
            except OSError as again:
                error = again
        raise StoreLockError(f"cannot create the lock {path}: {error}") from error


def _write_pid(fd: int) -> None:
    with contextlib.suppress(OSError):  # the pid is for messages; the lock is what counts
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
