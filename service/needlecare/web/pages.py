"""The pages: one small HTML shell per page, filled in by static/app.js from the JSON API.

Every link and asset is relative to a ``<base>`` that carries the ingress prefix,
so the app works under Home Assistant's ``/api/hassio_ingress/<token>/`` as well
as at the server's root. Nothing is loaded from anywhere but this server.
"""

import hmac
from html import escape
from importlib.resources import files
from typing import Final
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from needlecare.domain.slugs import SLUG_PATTERN
from needlecare.i18n import translator, ui
from needlecare.i18n.ui import page_language
from needlecare.web.access import COOKIE, session_value
from needlecare.web.context import WebContext

router = APIRouter(include_in_schema=False)

PAGES: Final = {
    "": ("overview", "Overview"),
    "timeline": ("timeline", "Timeline"),
    "sessions": ("sessions", "Sessions"),
    "skin": ("skin", "Skin checks"),
    "dead-letters": ("dead-letters", "Dead letters"),
    "config": ("config", "Configuration"),
}
STATIC: Final = files("needlecare.web") / "static"
STATIC_TYPES: Final = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def shell(request: Request, page: str, title: str, main: str = "") -> HTMLResponse:
    prefix = escape(request.state.prefix)
    # The frame follows the browser's language; each profile's card follows the profile's.
    lang = page_language(request.query_params.get("lang"), request.headers.get("accept-language"))
    words = {key: escape(text) for key, text in ui.strings(lang).items()}
    title = translator(lang).gettext(title)
    nav = "".join(
        f'<a href="{path or "./"}"{" aria-current=page" if key == page else ""}>{words[key]}</a>'
        for path, (key, _label) in PAGES.items()
    )
    nav += '<a href="api/docs">API</a>'
    logout = ""
    if request.state.login:
        logout = f'<form method="post" action="logout"><button>{words["logout"]}</button></form>'
    context: WebContext = request.app.state.context
    languages = {name: profile.language for name, profile in context.config.profiles.items()}
    body = f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{escape(title)} · Needlecare</title>
<base href="{prefix}/">
<link rel="icon" href="static/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="static/app.css">
<script src="static/app.js" defer></script>
<script type="application/json" id="i18n">{ui.browser_json(lang, languages)}</script>
</head><body data-page="{page}">
<a class="skip" href="#main">{words["skip"]}</a>
<header><strong class="brand">Needlecare</strong>
<nav aria-label="{words["pages"]}">{nav}</nav>{logout}</header>
<main id="main" tabindex="-1"><h1>{escape(title)}</h1>{main}
<p id="status" role="status" aria-live="polite"></p><div id="content"></div></main>
<footer>{words["footer"]}</footer>
</body></html>"""
    return HTMLResponse(body, headers=SECURITY_HEADERS)


def _page(path: str) -> None:
    key, title = PAGES[path]

    async def handler(request: Request) -> HTMLResponse:
        return shell(request, key, title)

    router.add_api_route("/" + path, handler, methods=["GET"], response_class=HTMLResponse)


for _path in PAGES:
    _page(_path)


@router.get("/api/docs", response_class=HTMLResponse)
async def docs(request: Request) -> HTMLResponse:
    return shell(request, "docs", "API", '<p>From <a href="api/openapi.json">openapi.json</a>.</p>')


@router.get("/static/{name}")
async def static(name: str) -> Response:
    kind = STATIC_TYPES.get(name[name.rfind(".") :]) if "." in name else None
    resource = STATIC / name
    if kind is None or "/" in name or not resource.is_file():
        raise HTTPException(404, "no such file")
    return Response(resource.read_bytes(), media_type=kind, headers={"Cache-Control": "no-cache"})


@router.get("/favicon.ico")
async def favicon() -> Response:
    return Response((STATIC / "icon.svg").read_bytes(), media_type="image/svg+xml")


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, failed: bool = False) -> HTMLResponse:
    note = '<p class="error" role="alert">That token is not right.</p>' if failed else ""
    form = f"""{note}<form method="post" action="login" class="card">
<label for="token">Access token (web.token)</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<input type="hidden" name="next" value="{escape(request.query_params.get("next", "/"))}">
<button type="submit">Log in</button></form>"""
    return shell(request, "login", "Log in", form)


@router.post("/login")
async def login(request: Request) -> Response:
    context: WebContext = request.app.state.context
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    given = (form.get("token") or [""])[0]
    target = (form.get("next") or ["/"])[0]
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    token = context.config.web.token
    if token is None or not hmac.compare_digest(given, token.get_secret_value()):
        return RedirectResponse("login?failed=1", status_code=303)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE, session_value(token.get_secret_value()), httponly=True, samesite="strict"
    )
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse("login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/report", response_class=HTMLResponse)
async def report(
    request: Request, profile: str | None = Query(default=None, pattern=SLUG_PATTERN)
) -> HTMLResponse:
    """One profile's HTML report (needs the 'report' extra: matplotlib)."""
    context: WebContext = request.app.state.context
    config = context.config
    chosen = profile or next(iter(config.profiles), None)
    if chosen is None or chosen not in config.profiles:
        raise HTTPException(404, f"unknown profile {chosen!r}")
    try:
        from needlecare.report import gather, render_html  # noqa: PLC0415
    except ModuleNotFoundError as error:
        detail = f"the report needs the 'report' extra (pip install 'needlecare[report]'): {error}"
        raise HTTPException(503, detail) from error
    page = render_html(gather(context.reads.store, config, chosen, context.clock.now()))
    return HTMLResponse(page)
