"""The web app in Chromium behind a Supervisor-like ingress proxy, in its own network namespace.

Run by ``test_ingress.py`` with ``unshare -rn`` (see ``ingress_probe.py``). Prints
one JSON object: every URL the browser asked for, console errors, the requests
that escaped the prefix, what the overview showed, and whether Done worked.
"""

import asyncio
import json
import sys
import threading
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from browser import launch, watched_page  # noqa: E402
from ingress_proxy import IngressProxy  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

from conftest import PROFILES, QUIET_PROTOCOL  # noqa: E402
from support.daemon import DaemonProcess, wait_until  # noqa: E402
from support.mosquitto import free_port, running_broker  # noqa: E402

PREFIX = "/api/hassio_ingress/Zq81-probe"


def serve_proxy(proxy: IngressProxy) -> int:
    """Run the proxy on a thread of its own; its port."""
    ready: list[int] = []
    started = threading.Event()

    def run() -> None:
        async def main() -> None:
            ready.append(await proxy.start())
            started.set()
            await asyncio.Event().wait()

        asyncio.run(main())

    threading.Thread(target=run, daemon=True).start()
    started.wait(10)
    return ready[0]


def probe(workdir: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for broker in running_broker(workdir / "broker", port=free_port()):
        port = free_port()
        web_settings = {"enabled": True, "host": "0.0.0.0", "port": port, "ingress": True}
        extra = {"profiles": PROFILES, "protocol": QUIET_PROTOCOL, "web": web_settings}
        (workdir / "daemon").mkdir()
        daemon = DaemonProcess(workdir / "daemon", broker, extra).start()
        wait_until(lambda d=daemon: d.log_count("web_started") > 0, what="the web server")
        proxy = IngressProxy(PREFIX, ("127.0.0.1", port))
        entry = f"http://127.0.0.1:{serve_proxy(proxy)}{PREFIX}/"
        for browser in launch():
            tab = watched_page(browser)
            tab.page.goto(entry)
            expect(tab.page.locator("[data-profile]")).to_have_count(2)
            found["cards"] = tab.page.locator("[data-profile]").count()
            found["base"] = tab.page.evaluate("document.baseURI")
            for path in ("timeline", "sessions", "skin", "dead-letters", "config", "api/docs"):
                tab.page.goto(entry + path)
                tab.page.wait_for_load_state("networkidle")
            tab.page.goto(entry)
            session = tab.page.evaluate(
                """async () => (await fetch("api/v1/sessions", {method: "POST",
                   headers: {"Content-Type": "application/json"},
                   body: JSON.stringify({profile: "alice"})})).status"""
            )
            found["logged"] = session
            done = tab.page.locator("[data-profile=alice]").get_by_role("button", name="Done")
            expect(done.first).to_be_visible(timeout=10_000)
            done.first.click()
            expect(tab.page.locator("[data-profile=alice] [data-reminder]")).to_have_count(
                0, timeout=10_000
            )
            found["requests"] = tab.requests
            found["errors"] = tab.errors
            found["outside"] = proxy.outside
            found["acked"] = len(
                daemon.read(lambda store: store.reminders.listing("alice", "acked"))
            )
        daemon.stop()
    return found


if __name__ == "__main__":
    print(json.dumps(probe(Path(sys.argv[1]))))
