"""Feeds the Home Assistant part of the outbox to the worker, one item at a time, in order.

While Home Assistant is unreachable the head item is retried with backoff and
nothing overtakes it, so prompts arrive in the order they were made once it is
back. A refused token stops Home Assistant deliveries (they stay queued) until
the daemon is restarted with a working one: no hot retry loop.
"""

from datetime import datetime, timedelta
from typing import Protocol

from needlecare.app.aftercare import Aftercare
from needlecare.app.ha_calls import HA_CHANNELS, HaCall, ha_call
from needlecare.app.ports import StoreUnavailableError
from needlecare.logs import get_logger

log = get_logger(__name__)

_SCAN = 20  # items looked at per step: enough to skip quiet-hours holds, cheap to load


class HaExecutor(Protocol):
    def submit(self, item_id: int, call: HaCall) -> None: ...


class HaOutbox:
    """Core-thread side of Home Assistant delivery."""

    def __init__(self, care: Aftercare, worker: HaExecutor) -> None:
        self._care = care
        self._worker = worker
        self._busy: int | None = None
        self.disabled: str | None = None

    def pump(self, now: datetime) -> None:
        if self._busy is not None or self.disabled or self._blocked(now):
            return
        try:
            with self._care.store.transaction():
                self._submit_next(now)
        except StoreUnavailableError as error:
            log.error("store_write_failed", error=str(error))

    def _submit_next(self, now: datetime) -> None:
        """Hand the oldest item that may go now to the worker (inside a transaction)."""
        store, cfg = self._care.store, self._care.config
        while True:
            ready = self._care.release(now, HA_CHANNELS, limit=_SCAN)
            if not ready:
                # Either nothing is due, or every item looked at was held back by quiet
                # hours or dropped as expired: then look at the next ones.
                if not store.outbox.ready(now, HA_CHANNELS, 1):
                    return
                continue
            item = ready[0]
            assert item.id is not None  # noqa: S101 - stored items always have one
            call = ha_call(
                channel=item.channel,
                payload=item.payload,
                profile=cfg.profiles[item.profile or ""],
                send_id=item.id,
                snooze_minutes=cfg.homeassistant.snooze_minutes if cfg.homeassistant else 30,
            )
            if call is None:
                store.outbox.cancel(item.id)  # the channel is not set up (any more)
                continue
            self._busy = item.id
            self._worker.submit(item.id, call)
            return

    def _blocked_until(self) -> datetime | None:
        """While the oldest failed item waits for its retry, everything waits.

        Read from the store, so the order survives a restart of the daemon.
        """
        head = self._care.store.outbox.oldest_retry(HA_CHANNELS)
        return None if head is None else head.not_before

    def _blocked(self, now: datetime) -> bool:
        until = self._blocked_until()
        return until is not None and now < until

    def finished(
        self, item_id: int, outcome: str, error: str | None, retry_after_s: float, now: datetime
    ) -> None:
        """Record the worker's result, then send the next item."""
        store = self._care.store
        self._busy = None
        with store.transaction():
            if outcome == "sent":
                store.outbox.mark_sent(item_id, now)
            elif outcome == "retry":
                retry_at = now + timedelta(seconds=retry_after_s)
                store.outbox.mark_failed(item_id, error or "", retry_at=retry_at)
                log.warning(
                    "homeassistant_unavailable",
                    outbox_id=item_id,
                    error=error,
                    retry_in_s=round(retry_after_s, 1),
                )
            elif outcome == "auth":
                store.outbox.mark_failed(item_id, error or "", retry_at=now)
                self.disabled = error or "unauthorized"
                log.error("homeassistant_auth_failed", error=self.disabled)
            else:  # failed for good, or skipped: do not hold up the rest
                store.outbox.mark_failed(item_id, error or outcome, retry_at=None)
                log.warning(
                    "homeassistant_delivery_dropped",
                    outbox_id=item_id,
                    outcome=outcome,
                    error=error,
                )
        self.pump(now)

    def next_wake(self) -> datetime | None:
        if self.disabled or self._busy is not None:
            return None
        return self._blocked_until() or self._care.store.outbox.next_not_before(HA_CHANNELS)
