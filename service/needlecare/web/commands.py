"""Writes from the web app: the command the MQTT command topic would carry, posted to the core.

The core thread records it through the same ingest path (the same validation,
the same journal entry, the same events out) and answers once its turn has
committed. A request handler never writes to SQLite.
"""

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException
from pydantic import ValidationError

from needlecare.app.core import WebCommand
from needlecare.domain.events import COMMANDS, describe_validation_error
from needlecare.domain.topics import Topics
from needlecare.web.reads import Reads

ANSWER_WITHIN_S = 10.0


class CommandSender:
    """Posts commands to the core's inbox and waits for the answer."""

    def __init__(self, post: Callable[[WebCommand], None], topics: Topics, reads: Reads) -> None:
        self.post = post
        self.topics = topics
        self.reads = reads

    async def send(self, profile: str, command: dict[str, Any]) -> str:
        """Record ``command`` for ``profile``; its event id, or an HTTPException (422, 503)."""
        event_id = f"web-{uuid.uuid4().hex}"
        payload = json.dumps({**command, "event_id": event_id}).encode()
        try:
            COMMANDS.validate_json(payload)
        except ValidationError as error:
            raise HTTPException(422, describe_validation_error(error)) from error
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bool] = loop.create_future()

        def reply(recorded: bool) -> None:  # called on the core thread
            loop.call_soon_threadsafe(_settle, answer, recorded)

        self.post(WebCommand(profile, payload, event_id, reply))
        try:
            recorded = await asyncio.wait_for(answer, ANSWER_WITHIN_S)
        except TimeoutError as error:
            detail = "the daemon has not recorded the command yet; it may still do so"
            raise HTTPException(503, detail) from error
        if not recorded:
            reason = self.reads.rejection(self.topics.command(profile), event_id)
            raise HTTPException(422, f"rejected: {reason or 'not recorded'}")
        return event_id


def _settle(answer: "asyncio.Future[bool]", recorded: bool) -> None:
    if not answer.done():
        answer.set_result(recorded)
