"""``needlecare run``: logging, an optional trial broker, signals, exit codes.

Only what the way to ``online`` needs is imported here; the core loop's modules
load once the connection is under way (:mod:`needlecare.app.daemon`).
"""

import os
import pwd
from contextlib import ExitStack
from pathlib import Path

from needlecare.app.daemon import Daemon
from needlecare.app.exit_codes import ExitCode
from needlecare.clock import SystemClock
from needlecare.config import NeedlecareConfig
from needlecare.logs import early_lines, get_logger
from needlecare_integrations.store import StoreError
from needlecare_integrations.store.lock import StoreLock, StoreLockedError, StoreLockError

log = get_logger(__name__)

TRIAL_BROKER_USER = "mosquitto"  # created by Debian's mosquitto package


def run_daemon(config: NeedlecareConfig, *, with_broker: bool = False) -> int:
    """Run until stopped; returns the process exit code.

    Logging is configured once the daemon is online, or on an earlier way out; the
    lines logged until then are held and written then (:func:`early_lines`).
    """
    settings = config.logging
    with (
        early_lines(level=settings.level, fmt=settings.format, secrets=config.secret_values()),
        ExitStack() as stack,
    ):
        # Before anything touches the broker: a second daemon on this store would
        # take the first one's MQTT session and write behind its back.
        code = _lock_store(config, stack)
        if code is not None:
            return code
        if with_broker and not _start_trial_broker(config, stack):
            return ExitCode.BROKER_REFUSED
        daemon = Daemon(config=config, clock=SystemClock())
        daemon.install_signal_handlers()
        try:
            return daemon.run()
        except StoreError as error:
            log.error("store_unusable", error=str(error))
            return ExitCode.STORE
    return ExitCode.OK


def _lock_store(config: NeedlecareConfig, stack: ExitStack) -> int | None:
    """Hold the store's lock until ``stack`` closes; an exit code when it cannot."""
    store = config.store.path.absolute()
    try:
        stack.enter_context(StoreLock(store))
    except StoreLockedError as error:
        log.error(
            "store_locked", error=str(error), store=str(store), lock=str(error.lock), pid=error.pid
        )
        return ExitCode.STORE_LOCKED
    except StoreLockError as error:
        log.error("store_unusable", error=str(error))
        return ExitCode.STORE
    return None


def _unprivileged(data_dir: Path) -> str | None:
    """The user a trial broker started as root drops to: Debian's "mosquitto", if any.

    None (stay as we are) when not root, or when that user could not reach
    ``data_dir`` (a checkout under /root): the broker would not start at all.
    """
    if os.geteuid() != 0:
        return None
    reachable = all(parent.stat().st_mode & 0o001 for parent in data_dir.absolute().parents)
    if not reachable:
        log.warning("trial_broker_as_root", reason="its folder is not reachable by other users")
        return None
    try:
        pwd.getpwnam(TRIAL_BROKER_USER)
    except KeyError:
        return "nobody"
    return TRIAL_BROKER_USER


def _start_trial_broker(config: NeedlecareConfig, stack: ExitStack) -> bool:
    # Only a trial (--broker) needs it; a plain start does without the module.
    from needlecare_integrations.broker import (  # noqa: PLC0415
        BrokerError,
        MosquittoBroker,
        port_in_use,
    )

    host, port = config.mqtt.host, config.mqtt.port
    if port_in_use(host, port):
        log.info("trial_broker_skipped", reason="a broker already listens", host=host, port=port)
        return True
    # Beside the store, so queued events survive a restart of the trial too.
    data_dir = config.store.path.with_name(config.store.path.stem + "-broker")
    broker = MosquittoBroker(
        data_dir=data_dir,
        host=host,
        port=port,
        run_as=_unprivileged(data_dir),
        save_on_changes=True,
    )
    try:
        broker.start()
    except (BrokerError, OSError) as error:
        log.error("trial_broker_failed", error=str(error))
        return False
    stack.callback(broker.stop)
    log.info("trial_broker_started", host=host, port=port, data_dir=str(data_dir))
    return True
