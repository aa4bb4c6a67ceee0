"""The web server as one of the daemon's components: uvicorn on a thread of its own.

``uvicorn.Server(config).serve()`` runs on that thread's event loop; the daemon
keeps its own signal handling (uvicorn only installs handlers on the main
thread) and stops the server from ``stop()``: event streams are closed first,
so a page left open cannot hold shutdown.
"""

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable

import uvicorn

from needlecare.app.core import WebCommand
from needlecare.clock import Clock
from needlecare.config import NeedlecareConfig
from needlecare.domain.topics import Topics
from needlecare.logs import get_logger
from needlecare.web.app import create_app
from needlecare.web.commands import CommandSender
from needlecare.web.context import WebContext
from needlecare.web.events import ChangeFeed
from needlecare.web.reads import Reads

log = get_logger(__name__)

START_WITHIN_S = 10.0
STOP_WITHIN_S = 5.0


class WebServer:
    """Serves the web app while the daemon runs."""

    def __init__(
        self,
        config: NeedlecareConfig,
        *,
        clock: Clock,
        post: Callable[[WebCommand], None],
        mqtt_connected: Callable[[], bool],
    ) -> None:
        topics = Topics(config.mqtt.base_topic, config.mqtt.discovery_prefix)
        reads = Reads(config, topics)
        self.context = WebContext(
            config=config,
            clock=clock,
            reads=reads,
            commands=CommandSender(post, topics, reads),
            feed=ChangeFeed(reads, clock.now),
            mqtt_connected=mqtt_connected,
        )
        self.server = uvicorn.Server(
            uvicorn.Config(
                create_app(self.context),
                host=config.web.host,
                port=config.web.port,
                # The peer address decides trust (ingress): never believe X-Forwarded-*.
                proxy_headers=False,
                forwarded_allow_ips="",
                server_header=False,
                access_log=False,
                log_config=None,
                lifespan="off",
                loop="asyncio",
                http="h11",
                ws="none",
                timeout_graceful_shutdown=2,
            )
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, name="web", daemon=True)

    @property
    def url(self) -> str:
        web = self.context.config.web
        host = f"[{web.host}]" if ":" in web.host else web.host
        return f"http://{host}:{web.port}/"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + START_WITHIN_S
        while self.thread.is_alive() and not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.server.started:
            log.info("web_started", url=self.url, ingress=self.context.config.web.ingress)
        else:
            # The journal and the reminders matter more than the pages: keep running.
            log.error("web_failed", url=self.url, error="the server did not start (port in use?)")

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        try:
            await self.server.serve()
        except SystemExit:  # uvicorn's answer to a port it cannot bind
            pass
        finally:
            self.context.reads.close()

    def stop(self) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            # The loop may end between the check and the call.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.context.feed.close)
        self.server.should_exit = True
        self.thread.join(STOP_WITHIN_S)
        log.info("web_stopped")
