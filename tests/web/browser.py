"""Debian's Chromium driven by Playwright for Python, watching every request and console line."""

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Page, Request, sync_playwright

SETUP = Path(__file__).resolve().parents[1] / "setup_browser.sh"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """Debian's chromium, installed by tests/setup_browser.sh when it is missing."""
    found = shutil.which("chromium")
    if found is None:
        found = (
            subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, check=True)
            .stdout.strip()
            .splitlines()[-1]
        )
    return found


def launch() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watched:
    """A page and what it did: every request URL, every console error."""

    page: Page
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def watched_page(browser: Browser, **context: Any) -> Watched:
    page = browser.new_context(**context).new_page()
    watched = Watched(page)

    def on_request(request: Request) -> None:
        watched.requests.append(request.url)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.errors.append(message.text)

    page.on("request", on_request)
    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.errors.append(str(error)))
    return watched
