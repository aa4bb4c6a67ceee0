"""The ASGI application: API and pages behind the access check, errors always JSON."""

from importlib.metadata import version
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from needlecare.web import api, pages
from needlecare.web.access import Access
from needlecare.web.context import WebContext
from needlecare_integrations.store import StoreError

DESCRIPTION = (
    "Needlecare's JSON API. With `web.token` set, every route but `/api/v1/health` needs "
    "`Authorization: Bearer <token>`. Writes are the MQTT command topic's commands, "
    "recorded by the daemon. Lists carry the fields of the command line's `--json`."
)


def create_app(context: WebContext) -> FastAPI:
    app = FastAPI(
        title="Needlecare",
        version=version("needlecare"),
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.context = context
    app.include_router(api.router)
    app.include_router(pages.router)
    token = context.config.web.token
    app.add_middleware(
        Access,
        token=token.get_secret_value() if token else None,
        ingress=context.config.web.ingress,
    )

    @app.exception_handler(StoreError)
    async def store_unavailable(request: Request, error: StoreError) -> JSONResponse:
        return JSONResponse({"detail": f"store unavailable: {error}"}, status_code=503)

    def openapi() -> dict[str, Any]:
        # Rebuilt on each request: the examples are this installation's real ids.
        schema = get_openapi(
            title=app.title, version=app.version, description=DESCRIPTION, routes=app.routes
        )
        add_examples(schema, context)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def add_examples(schema: dict[str, Any], context: WebContext) -> None:
    """Real profile names and ids as examples, so a reader (or a fuzzer) can try them."""
    examples = _real_ids(context)
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                value = examples.get(parameter["name"])
                if value is not None:
                    parameter["example"] = value
    profile = examples.get("profile")
    new_session = schema.get("components", {}).get("schemas", {}).get("NewSession")
    if profile is not None and new_session is not None:
        new_session["examples"] = [
            {"profile": profile, "setting": "professional", "needle_depth_mm": 1.0},
            {"profile": profile, "setting": "home"},
        ]


def _real_ids(context: WebContext) -> dict[str, Any]:
    found: dict[str, Any] = {"status": "pending", "limit": 20}
    profiles = list(context.config.profiles)
    if profiles:
        found["profile"] = profiles[0]
    try:
        reminders = context.reads.reminders(None, None, 1)
        sessions = context.reads.sessions(None, 1)
    except StoreError:
        return found
    if reminders:
        found["reminder_id"] = reminders[0]["id"]
    if sessions:
        found["session_id"] = sessions[0]["id"]
    return found
