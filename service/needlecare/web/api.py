"""The JSON API under /api/v1: reads from the read-only store, writes through the core."""

import json
from importlib.metadata import version
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from needlecare.cli.reminder_commands import REMINDER_STATUSES
from needlecare.domain.slugs import SLUG_PATTERN
from needlecare.web.checks import config_warnings
from needlecare.web.context import WebContext
from needlecare.web.models import (
    ConfigCheck,
    Created,
    Health,
    NewSession,
    SnoozeRequest,
    Voided,
    VoidRequest,
)

router = APIRouter(prefix="/api/v1")

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such id."}}
ROWS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A JSON array of objects.",
        "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}},
    }
}
ProfileQuery = Annotated[
    str | None, Query(pattern=SLUG_PATTERN, description="Only this profile (a configured one).")
]
Limit = Annotated[int, Query(ge=1, le=10_000, description="At most this many rows.")]
StatusQuery = Annotated[
    str | None, Query(pattern="^(" + "|".join(REMINDER_STATUSES) + ")$", description="Only this.")
]
ReminderIdPath = Annotated[str, Path(min_length=1, max_length=128, description="Reminder id.")]
SessionIdPath = Annotated[str, Path(min_length=1, max_length=128, description="Session id.")]


def rows(found: list[dict[str, Any]]) -> Response:
    """A list as JSON, without FastAPI's per-value encoding pass (most of a list's time)."""
    return Response(json.dumps(found, ensure_ascii=False).encode(), media_type="application/json")


def ctx(request: Request) -> WebContext:
    context: WebContext = request.app.state.context
    return context


def _known(context: WebContext, profile: str | None) -> None:
    if profile is not None and profile not in context.config.profiles:
        raise HTTPException(404, f"unknown profile {profile!r}")


@router.get("/health", response_model=Health, tags=["status"])
async def health(request: Request) -> Health:
    """Liveness for Docker, Compose and monitoring; needs no token."""
    context = ctx(request)
    try:
        context.reads.store.count("sessions")
        store_ok = True
    except Exception:  # the file may be busy or gone: report it, do not fail
        store_ok = False
    mqtt = context.mqtt_connected()
    return Health(
        status="ok" if store_ok and mqtt else "degraded",
        mqtt="connected" if mqtt else "disconnected",
        store="ok" if store_ok else "unavailable",
        homeassistant="configured" if context.config.homeassistant else "not_configured",
        version=version("needlecare"),
    )


@router.get("/profiles", tags=["profiles"], response_model=None, responses=ROWS)
async def profiles(request: Request) -> Response:
    """Each profile's state JSON, as on its retained state topic."""
    context = ctx(request)
    return rows(list(context.reads.states(context.clock.now()).values()))


@router.get("/sessions", tags=["sessions"], response_model=None, responses=ROWS)
async def sessions(request: Request, profile: ProfileQuery = None, limit: Limit = 100) -> Response:
    """The most recently recorded sessions (``limit``), newest first.

    Each has the fields of ``needlecare sessions --json``.
    """
    context = ctx(request)
    _known(context, profile)
    return rows(context.reads.sessions(profile, limit))


@router.post("/sessions", status_code=201, response_model=Created, tags=["sessions"])
async def log_session(request: Request, body: NewSession) -> Created:
    """Log a session by hand: the ``log_session`` command, recorded by the daemon."""
    context = ctx(request)
    _known(context, body.profile)
    command: dict[str, Any] = {"action": "log_session", "setting": body.setting}
    if body.timestamp is not None:
        command["timestamp"] = body.timestamp.isoformat()
    if body.needle_depth_mm is not None:
        command["needle_depth_mm"] = body.needle_depth_mm
    event_id = await context.commands.send(body.profile, command)
    from needlecare.domain.sessions import session_id_for  # noqa: PLC0415

    session_id = session_id_for(event_id)
    saved = context.reads.session(session_id)
    status = saved.status.value if saved is not None else "unknown"
    context.feed.publish("session", {"id": session_id, "status": status})
    return Created(id=session_id, event_id=event_id)


@router.post(
    "/sessions/{session_id}/void", response_model=Voided, responses=NOT_FOUND, tags=["sessions"]
)
async def void_session(
    request: Request, session_id: SessionIdPath, body: Annotated[VoidRequest | None, Body()] = None
) -> Voided:
    """Void a session logged by mistake: the ``void_session`` command."""
    context = ctx(request)
    session = context.reads.session(session_id)
    if session is None:
        raise HTTPException(404, f"no session {session_id!r}")
    command: dict[str, Any] = {"action": "void_session", "session_id": session_id}
    if body is not None and body.reason is not None:
        command["reason"] = body.reason
    event_id = await context.commands.send(session.profile, command)
    after = context.reads.session(session_id)
    status = after.status.value if after is not None else "unknown"
    context.feed.publish("session", {"id": session_id, "status": status})
    return Voided(id=session_id, status=status, event_id=event_id)


@router.get("/reminders", tags=["reminders"], response_model=None, responses=ROWS)
async def reminders(
    request: Request, profile: ProfileQuery = None, status: StatusQuery = None, limit: Limit = 100
) -> Response:
    """The most recently planned reminders (``limit``) in due order.

    Each has the fields of ``needlecare reminders --json``.
    """
    context = ctx(request)
    _known(context, profile)
    return rows(context.reads.reminders(profile, status, limit))


@router.post("/reminders/{reminder_id}/ack", responses=NOT_FOUND, tags=["reminders"])
async def ack(request: Request, reminder_id: ReminderIdPath) -> dict[str, Any]:
    """Acknowledge a reminder everywhere (mirror, retained prompt, Home Assistant)."""
    return await _reminder_command(ctx(request), reminder_id, {"action": "ack"})


@router.post("/reminders/{reminder_id}/snooze", responses=NOT_FOUND, tags=["reminders"])
async def snooze(
    request: Request, reminder_id: ReminderIdPath, body: SnoozeRequest
) -> dict[str, Any]:
    """Snooze a reminder for 1 to 1440 minutes."""
    command = {"action": "snooze", "minutes": body.minutes}
    return await _reminder_command(ctx(request), reminder_id, command)


async def _reminder_command(
    context: WebContext, reminder_id: str, command: dict[str, Any]
) -> dict[str, Any]:
    reminder = context.reads.reminder(reminder_id)
    if reminder is None:
        raise HTTPException(404, f"no reminder {reminder_id!r}")
    await context.commands.send(reminder.profile, {**command, "reminder_id": reminder_id})
    from needlecare.cli import output  # noqa: PLC0415

    row = output.reminder_row(context.reads.reminder(reminder_id) or reminder)
    context.feed.publish("reminder", row)
    return row


@router.get("/dead-letters", tags=["status"], response_model=None, responses=ROWS)
async def dead_letters(request: Request) -> Response:
    """Rejected inbound messages with the reasons, newest first."""
    return rows(ctx(request).reads.dead_letters())


@router.get("/skin-checks", tags=["profiles"], response_model=None, responses=ROWS)
async def skin_checks(request: Request, profile: ProfileQuery = None) -> Response:
    """Skin checks (redness 0-100) in time order, for the trend."""
    context = ctx(request)
    _known(context, profile)
    return rows(context.reads.skin_checks(profile))


@router.get("/config/check", response_model=ConfigCheck, tags=["status"])
async def config_check(request: Request) -> ConfigCheck:
    """The running configuration's summary and warnings (it is valid, or it would not run)."""
    config = ctx(request).config
    summary = (
        f"{len(config.profiles)} profile(s), {len(config.devices)} device(s),"
        f" {len(config.mirrors)} mirror(s); broker {config.mqtt.host}:{config.mqtt.port}"
    )
    warnings = config_warnings(config)
    return ConfigCheck(ok=not warnings, summary=summary, warnings=warnings)


@router.get(
    "/events",
    tags=["status"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def events(request: Request) -> StreamingResponse:
    """Server-Sent Events: ``reminder``, ``session`` and ``state``, one per change."""
    feed = ctx(request).feed
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(feed.stream(), media_type="text/event-stream", headers=headers)


__all__ = ["router"]
