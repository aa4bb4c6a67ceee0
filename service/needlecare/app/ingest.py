"""From an inbound message to committed facts: validate, route, record.

A batch of messages is written in one transaction (a group commit) and only
then acknowledged by the caller. Each message gets its own savepoint, so a
message that trips over a bug is dead-lettered alone and the rest still land.
"""

import json
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from needlecare.app.aftercare import Aftercare
from needlecare.app.inbound import InboundMessage
from needlecare.app.ports import JournalStore, StoreUnavailableError
from needlecare.config import NeedlecareConfig
from needlecare.domain import session_rules as rules
from needlecare.domain.events import (
    COMMANDS,
    DEVICE_EVENTS,
    MIRROR_EVENTS,
    AckAllCommand,
    AckCommand,
    Heartbeat,
    LogSession,
    MirrorAck,
    MirrorSnooze,
    Presence,
    ProductApplied,
    SessionStarted,
    SkinCheck,
    SnoozeCommand,
    VoidSession,
    describe_validation_error,
)
from needlecare.domain.records import (
    DeadLetter,
    DeviceSeen,
    EventRecord,
    ProductRecord,
    SkinCheckRecord,
    excerpt,
)
from needlecare.domain.sessions import Session, SessionStatus
from needlecare.domain.topics import InboundTopic, Source, TopicError, Topics
from needlecare.logs import get_logger

log = get_logger(__name__)


class RejectedError(Exception):
    """A message that breaks the contract; becomes a dead letter."""


class _BugError(Exception):
    """A message failed for a reason of ours: replay the batch one savepoint each."""


def _merge_seen(old: DeviceSeen | None, new: DeviceSeen) -> DeviceSeen:
    """The later sighting, keeping readings the later one did not report."""
    if old is None:
        return new
    latest, other = (new, old) if new.last_seen_at >= old.last_seen_at else (old, new)
    return DeviceSeen(
        new.device_id,
        latest.last_seen_at,
        latest.battery_pct if latest.battery_pct is not None else other.battery_pct,
        latest.cartridge_uses if latest.cartridge_uses is not None else other.cartridge_uses,
    )


_PARSERS: dict[Source, TypeAdapter[Any]] = {
    Source.DEVICE: DEVICE_EVENTS,
    Source.MIRROR: MIRROR_EVENTS,
    Source.COMMAND: COMMANDS,
}


class Ingest:
    """Records inbound messages in the journal."""

    def __init__(
        self,
        *,
        store: JournalStore,
        config: NeedlecareConfig,
        topics: Topics,
        aftercare: Aftercare,
    ) -> None:
        self._store = store
        self._config = config
        self._topics = topics
        self._care = aftercare
        self._now = datetime.min.replace(tzinfo=UTC)
        # Within and across batches the core thread is the only writer, so the
        # newest session per device can be kept here; forget() drops it whenever
        # a transaction did not commit.
        self._seen: dict[str, DeviceSeen] = {}
        self._latest: dict[str, Session | None] = {}
        self._refreshed: dict[str, Session] = {}
        # The UTC day whose heartbeat is kept as an event, per device (one row a day).
        self._beat_days: dict[str, date] = {}
        # The newest beat per device not yet folded into its open session (see _beat).
        self._beats: dict[str, datetime] = {}
        # Parsed inbound topics: a handful of devices send thousands of messages each.
        self._topics_seen: dict[str, InboundTopic] = {}
        self._dead_lettered = 0

    def handle(self, messages: Sequence[InboundMessage], now: datetime) -> None:
        """Record a batch in one transaction; raises StoreUnavailableError if it cannot."""
        try:
            with self._store.transaction():
                self.record(messages, now)
        except BaseException:
            self.forget()
            raise

    def record(self, messages: Sequence[InboundMessage], now: datetime) -> None:
        """Record a batch inside the caller's transaction.

        The fast path records the whole batch under one savepoint. Only if a
        message trips over a bug is the batch rolled back and replayed with a
        savepoint per message, so that one message is dead-lettered and the
        others still land.
        """
        self._now = now
        try:
            with self._store.savepoint():
                for message in messages:
                    self._handle_one(message, isolate=False)
                self._flush_devices()
        except _BugError:
            self.forget()
            for message in messages:
                self._handle_one(message, isolate=True)
            self._flush_devices()

    def _handle_one(self, message: InboundMessage, *, isolate: bool) -> None:
        try:
            if isolate:
                with self._store.savepoint():
                    self._record(message)
            else:
                self._record(message)
        except RejectedError as error:
            # Rejected before anything was written for it: no rollback needed.
            self._dead_letter(message, str(error))
        except StoreUnavailableError:
            raise
        except Exception as error:
            if not isolate:
                raise _BugError from error
            log.exception("message_failed", topic=message.topic, error=str(error))
            self._dead_letter(message, f"internal error: {type(error).__name__}: {error}")

    def _flush_devices(self) -> None:
        """Last-seen times, one write per device and session per batch instead of per event."""
        self._settle_beats()
        for seen in self._seen.values():
            self._store.touch_device(seen)
        for session in self._refreshed.values():
            self._store.save_session(session)
        self._seen.clear()
        self._refreshed.clear()

    def forget(self) -> None:
        """Drop what was cached from a transaction that may not have committed."""
        self._seen.clear()
        self._latest.clear()
        self._refreshed.clear()
        self._beat_days.clear()
        self._beats.clear()

    def _record(self, message: InboundMessage) -> None:
        limit = self._config.mqtt.max_payload_bytes
        if len(message.payload) > limit:
            msg = f"payload of {len(message.payload)} bytes exceeds the {limit}-byte cap"
            raise RejectedError(msg)
        where = self._where(message.topic)
        try:
            payload = _PARSERS[where.source].validate_json(message.payload)
        except ValidationError as error:
            raise RejectedError(describe_validation_error(error)) from error
        _check_timestamp(payload, message.received_at)
        profile = self._profile_for(where, payload)
        if isinstance(payload, Heartbeat):
            at = (payload.timestamp or message.received_at).astimezone(UTC)
            if profile is None:
                return  # cannot happen: a device's events always have one (_profile_for)
            if not self._first_beat_of_day(where.slug, profile, at):
                # Only the device's state moves (last seen, battery, cartridge, an open
                # session's last seen): no event row, see docs/RELIABILITY.md (retention).
                self._beat(where.slug, payload, at)
                return
        record = _event_record(message, where, payload, profile)
        if not self._store.add_event(record):
            log.info("event_duplicate", event_id=record.event_id, topic=message.topic)
            return
        self._apply(where, payload, record)

    def _where(self, topic: str) -> InboundTopic:
        where = self._topics_seen.get(topic)
        if where is None:
            try:
                where = self._topics.parse_inbound(topic)
            except TopicError as error:
                raise RejectedError(str(error)) from error
            if len(self._topics_seen) >= _TOPICS_KEPT:
                self._topics_seen.clear()  # a sender trying topic after topic
            self._topics_seen[topic] = where
        return where

    def _first_beat_of_day(self, device_id: str, profile: str, at: datetime) -> bool:
        """Whether a heartbeat at ``at`` is the device's first of its UTC day (kept as an event)."""
        day = at.date()
        if self._beat_days.get(device_id) == day:
            return False
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        kept = self._store.has_heartbeat_between(
            profile, device_id, start, start + timedelta(days=1)
        )
        if self._beat_days.get(device_id, day) <= day:
            self._beat_days[device_id] = day
        return not kept

    def plain_heartbeat(self, message: InboundMessage) -> bool:
        """A cheap look (no validation): a heartbeat that will add no event row, so may wait.

        That is a device's beat on a UTC day whose row is already kept; the first
        beat of a day, and anything that is not plainly such a beat, is recorded at once.
        """
        if len(message.payload) > 4096:
            return False
        try:
            where = self._topics.parse_inbound(message.topic)
            body = json.loads(message.payload)
        except (TopicError, ValueError):
            return False
        if where.source is not Source.DEVICE or not isinstance(body, dict):
            return False
        day = message.received_at.astimezone(UTC).date()
        if body.get("type") != "heartbeat" or self._beat_days.get(where.slug) != day:
            return False
        stamp = body.get("timestamp")
        return stamp is None or (
            isinstance(stamp, str) and stamp.startswith(day.isoformat()) and stamp.endswith("Z")
        )

    def take_dead_lettered(self) -> int:
        """Dead letters written since the last call (retention watches for floods)."""
        count, self._dead_lettered = self._dead_lettered, 0
        return count

    def _profile_for(self, where: InboundTopic, payload: BaseModel) -> str | None:
        cfg = self._config
        named: str | None = getattr(payload, "profile", None)
        if where.source is Source.DEVICE:
            device = cfg.devices.get(where.slug)
            if device is None and cfg.devices:
                raise RejectedError(f"unknown device {where.slug!r} (not in devices:)")
            named = named or (device.owner if device else None)
            if named is None:
                msg = f"device {where.slug!r} has no owner in the config, and no profile given"
                raise RejectedError(msg)
        elif where.source is Source.MIRROR:
            if cfg.mirrors and where.slug not in cfg.mirrors:
                raise RejectedError(f"unknown mirror {where.slug!r} (not in mirrors:)")
        else:
            named = where.slug
        if named is not None and named not in cfg.profiles:
            raise RejectedError(f"unknown profile {named!r} (not in profiles:)")
        return named

    def _apply(self, where: InboundTopic, payload: BaseModel, record: EventRecord) -> None:
        if where.source is Source.DEVICE:
            self._apply_device(where.slug, payload, record)
        elif where.source is Source.MIRROR:
            self._apply_mirror(where.slug, payload, record)
        elif record.profile is not None:
            self._apply_command(record.profile, payload, record)

    def _apply_mirror(self, mirror_id: str, payload: BaseModel, record: EventRecord) -> None:
        at, now, event_id = record.occurred_at, self._now, record.event_id
        if isinstance(payload, SkinCheck):
            self._store.add_skin_check(
                SkinCheckRecord(event_id, payload.profile, at, payload.redness, payload.note)
            )
            self._care.skin_checked(
                event_id=event_id, profile=payload.profile, redness=payload.redness, at=at, now=now
            )
        elif isinstance(payload, ProductApplied):
            self._store.add_product(
                ProductRecord(event_id, payload.profile, at, payload.product, payload.ingredients)
            )
            self._care.product_applied(
                event_id=event_id,
                profile=payload.profile,
                product=payload.product,
                ingredients=payload.ingredients,
                at=at,
                now=now,
            )
        elif isinstance(payload, Presence):
            self._care.presence(
                event_id=event_id, profile=payload.profile, mirror_id=mirror_id, now=now
            )
        elif isinstance(payload, MirrorAck):
            self._care.acknowledge(payload.reminder_id, now, profile=payload.profile)
        elif isinstance(payload, MirrorSnooze):
            self._care.snooze(payload.reminder_id, payload.minutes, now, profile=payload.profile)

    def _apply_command(self, profile: str, payload: BaseModel, record: EventRecord) -> None:
        now = self._now
        if isinstance(payload, LogSession):
            session = rules.logged_session(
                payload,
                event_id=record.event_id,
                profile=profile,
                at=record.occurred_at,
                min_needling=self._config.sessions.min_needling,
            )
            self._store.save_session(session)
            log.info("session_recorded", session_id=session.id, profile=profile, source="manual")
            self._care.session_saved(session, now)
        elif isinstance(payload, AckCommand):
            self._care.acknowledge(payload.reminder_id, now, profile=profile)
        elif isinstance(payload, AckAllCommand):
            self._care.acknowledge_all(profile, now)
        elif isinstance(payload, SnoozeCommand):
            self._care.snooze(payload.reminder_id, payload.minutes, now, profile=profile)
        elif isinstance(payload, VoidSession):
            self._void(profile, payload)

    def _void(self, profile: str, command: VoidSession) -> None:
        # A heartbeat's last-seen refresh may still be waiting for the batch's end.
        self._settle_beats()
        session = self._refreshed.get(command.session_id) or self._store.session(command.session_id)
        if session is None or session.profile != profile:
            log.warning("session_unknown", session_id=command.session_id, profile=profile)
            return
        if session.status is SessionStatus.VOIDED:
            log.info("session_already_voided", session_id=session.id)
            return
        voided = replace(session, status=SessionStatus.VOIDED)
        self._store.save_session(voided)
        self._refreshed.pop(session.id, None)
        latest = self._latest.get(session.device_id or "")
        if session.device_id is not None and latest is not None and latest.id == session.id:
            self._latest[session.device_id] = voided
        log.info("session_voided", session_id=session.id, profile=profile, reason=command.reason)
        self._care.session_voided(voided, self._now)

    def _beat(self, device_id: str, beat: Heartbeat, at: datetime) -> None:
        """A heartbeat that adds no event row: remember its time and readings.

        An open session's last-seen moves only to the newest beat, so the beats of a
        batch are folded into the session once (``_settle_beats``) rather than one
        session copy each: most of a drain is heartbeats.
        """
        if self._beats.get(device_id, at) <= at:
            self._beats[device_id] = at
        self._seen[device_id] = _merge_seen(
            self._seen.get(device_id),
            DeviceSeen(device_id, at, beat.battery_pct, beat.cartridge_uses),
        )

    def _settle_beats(self, device_id: str | None = None) -> None:
        """Fold the held beat times (of one device, or all) into the devices' open sessions."""
        devices = list(self._beats) if device_id is None else [device_id]
        for device in devices:
            at = self._beats.pop(device, None)
            if at is None:
                continue
            latest = self._latest_session(device)
            if latest is None or not latest.is_open or latest.last_seen_at >= at:
                continue
            # Only last_seen moved: written once at the end of the batch.
            seen = replace(latest, last_seen_at=at)
            self._latest[device] = self._refreshed[seen.id] = seen

    def _latest_session(self, device_id: str) -> Session | None:
        if device_id in self._latest:
            return self._latest[device_id]
        return self._store.latest_session(device_id)

    def _apply_device(self, device_id: str, payload: BaseModel, record: EventRecord) -> None:
        if not isinstance(payload, rules.DeviceSessionEvent) or record.profile is None:
            return
        self._settle_beats(device_id)
        ctx = rules.DeviceContext(
            device_id,
            record.profile,
            record.occurred_at,
            min_needling=self._config.sessions.min_needling,
        )
        latest = self._latest_session(device_id)
        for session in rules.apply_device_event(payload, ctx, latest):
            self._latest[device_id] = session
            if isinstance(payload, Heartbeat):
                # Only last_seen moved: written once at the end of the batch.
                self._refreshed[session.id] = session
                continue
            self._store.save_session(session)
            self._refreshed.pop(session.id, None)
            changed = isinstance(payload, SessionStarted) or not session.is_open
            (log.info if changed else log.debug)(
                "session_recorded",
                session_id=session.id,
                device_id=device_id,
                profile=session.profile,
                status=session.status.value,
            )
            if not session.is_open:
                self._care.session_saved(session, self._now)
            elif isinstance(payload, SessionStarted):
                device = self._config.devices.get(device_id)
                self._care.session_started(
                    session,
                    event_id=record.event_id,
                    depth_limit=device.max_needle_depth_mm if device else None,
                    now=self._now,
                )
        battery = payload.battery_pct if isinstance(payload, Heartbeat) else None
        uses = payload.cartridge_uses if isinstance(payload, Heartbeat) else None
        self._seen[device_id] = _merge_seen(
            self._seen.get(device_id), DeviceSeen(device_id, record.occurred_at, battery, uses)
        )

    def _dead_letter(self, message: InboundMessage, reason: str) -> None:
        log.warning("message_rejected", topic=message.topic, reason=reason)
        self._dead_lettered += 1
        self._store.add_dead_letter(
            DeadLetter(
                received_at=message.received_at,
                topic=message.topic,
                payload_excerpt=excerpt(message.payload),
                payload_size=len(message.payload),
                reason=reason,
            )
        )

    # -- time-driven work ------------------------------------------------------

    def expire_sessions(self, now: datetime) -> None:
        """Close sessions whose device went quiet for too long (inside the caller's transaction)."""
        timeout = self._config.sessions.timeout
        for session in rules.expire_sessions(self._store.open_sessions(), timeout, now):
            self._store.save_session(session)
            if session.device_id is not None:
                self._latest[session.device_id] = session
            log.info("session_end_inferred", session_id=session.id, device_id=session.device_id)
            self._care.session_saved(session, now)

    def next_wake(self) -> datetime | None:
        """When time-driven work is next due."""
        return rules.next_expiry(self._store.open_sessions(), self._config.sessions.timeout)


# Parsed topics kept at most; a sender trying ever new topics only empties the cache.
_TOPICS_KEPT = 1024

# Device clocks drift, but an event from next week or last century is a broken
# clock, not history: recording it would plan reminders around a wrong date.
MAX_FUTURE = timedelta(days=1)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def _check_timestamp(payload: BaseModel, received_at: datetime) -> None:
    stamp: datetime | None = getattr(payload, "timestamp", None)
    if stamp is None:
        return
    if stamp > received_at + MAX_FUTURE:
        msg = f"timestamp {stamp.isoformat()} is more than a day ahead of the receipt time"
        raise RejectedError(msg)
    if stamp < EARLIEST:
        raise RejectedError(f"timestamp {stamp.isoformat()} is before {EARLIEST.year}")


def _event_record(
    message: InboundMessage, where: InboundTopic, payload: BaseModel, profile: str | None
) -> EventRecord:
    event_id = getattr(payload, "event_id", None) or f"cmd-{uuid.uuid4().hex}"
    stamp: datetime | None = getattr(payload, "timestamp", None)
    kind = getattr(payload, "type", None) or getattr(payload, "action", "unknown")
    return EventRecord(
        event_id=event_id,
        source=where.source.value,
        source_id=where.slug,
        type=str(kind),
        profile=profile,
        occurred_at=(stamp or message.received_at).astimezone(UTC),
        received_at=message.received_at,
        payload=message.payload.decode("utf-8"),
    )
