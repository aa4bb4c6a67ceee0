"""Schemathesis against the running API on a seeded store: no input gives a server error.

Schemathesis generates the cases (the examples in the OpenAPI document, then
valid and invalid inputs); they are sent with http.client. Its own transport
(requests) cannot run here: niquests, which the Home Assistant client needs,
brings urllib3-future, which takes over the ``urllib3`` that requests uses.
"""

import contextlib
import http.client
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.generation.case import Case

from conftest import TOKEN, WebDaemon

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SKIPPED = {"/api/v1/events"}  # an endless stream: covered by the event tests
EXAMPLES_PER_MODE = 25


def seed(web: WebDaemon) -> None:
    for profile, setting in (("alice", "home"), ("bob", "professional"), ("alice", "home")):
        web.log_session(profile, setting=setting)
    web.wait_for_prompt("alice")
    web.wait_for_prompt("bob")


def web_commands(web: WebDaemon) -> int:
    events = web.daemon.read(lambda store: list(store.iter_events()))
    return sum(1 for event in events if event.event_id.startswith("web-"))


def send(web: WebDaemon, case: Case) -> tuple[int, bytes]:
    kwargs: dict[str, Any] = case.as_transport_kwargs(base_url=web.url)
    parts = urlsplit(kwargs["url"])
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    if kwargs.get("params"):
        target += ("&" if "?" in target else "?") + urlencode(kwargs["params"], doseq=True)
    headers = {str(k): str(v) for k, v in (kwargs.get("headers") or {}).items()}
    headers["Authorization"] = f"Bearer {TOKEN}"
    body: bytes | None = None
    if "json" in kwargs:
        body = json.dumps(kwargs["json"]).encode()
        headers.setdefault("Content-Type", "application/json")
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        body = data if isinstance(data, bytes) else str(data).encode()
    connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=15)
    try:
        connection.request(kwargs["method"], target, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def run(strategy: st.SearchStrategy[Case], check: Callable[[Case], None], count: int) -> None:
    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def each(case: Case) -> None:
        check(case)

    each()


def test_no_server_errors(fresh_web: WebDaemon) -> None:
    """Every operation, its examples then valid and invalid input: no 5xx, writes got through."""
    seed(fresh_web)
    before = web_commands(fresh_web)
    spec = fresh_web.get("/api/openapi.json")
    schema = schemathesis.openapi.from_dict(spec)
    failures: list[str] = []
    tried: dict[str, int] = {}
    statuses: set[int] = set()

    def check(case: Case) -> None:
        status, body = send(fresh_web, case)
        label = f"{case.method} {case.path}"
        tried[label] = tried.get(label, 0) + 1
        statuses.add(status // 100)
        if status >= 500:
            failures.append(f"{label} -> {status}: {case.as_curl_command()} {body[:200]!r}")

    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        if operation.path in SKIPPED:
            continue
        for example in operation.get_strategies_from_examples():
            run(example, check, 5)
        run(operation.as_strategy(), check, EXAMPLES_PER_MODE)
        negative = operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
        # An operation without parameters or body has no invalid input to make.
        with contextlib.suppress(Unsatisfiable):
            run(negative, check, EXAMPLES_PER_MODE)
    assert [] == failures
    assert len(tried) == len(operations) - len(SKIPPED)
    assert {2, 4} <= statuses
    print(f"{sum(tried.values())} requests: {tried}")
    # The examples name real profiles and ids: the fuzzer's writes reached the core.
    assert web_commands(fresh_web) > before
