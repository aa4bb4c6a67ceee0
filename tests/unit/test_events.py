"""Inbound payload parsing and the topic contract."""

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from needlecare.domain.events import (
    COMMANDS,
    DEVICE_EVENTS,
    MIRROR_EVENTS,
    SessionStarted,
    describe_validation_error,
    json_schemas,
)
from needlecare.domain.slugs import is_slug
from needlecare.domain.topics import InboundTopic, Source, TopicError, Topics


def reason(adapter: object, payload: bytes) -> str:
    with pytest.raises(ValidationError) as caught:
        adapter.validate_json(payload)  # type: ignore[attr-defined]
    return describe_validation_error(caught.value)


class TestDeviceEvents:
    def test_full_session_started(self) -> None:
        """Every documented field of session_started is read."""
        event = DEVICE_EVENTS.validate_json(
            b'{"event_id":"e1","type":"session_started","timestamp":"2026-03-01T20:00:00+01:00",'
            b'"needle_depth_mm":0.5,"zones":["forehead"],"setting":"professional",'
            b'"session_ref":"d-9","profile":"alice"}'
        )
        assert isinstance(event, SessionStarted)
        assert datetime(2026, 3, 1, 19, 0, tzinfo=UTC) == event.timestamp
        assert ("forehead",) == event.zones

    @pytest.mark.parametrize(
        ("payload", "expected"),
        [
            (b"{nope", "payload: Invalid JSON: key must be a string at line 1 column 2"),
            (
                b'{"event_id":"e","type":"session_started","needle_depth_mm":"1.5"}',
                "session_started.needle_depth_mm: Input should be a valid number",
            ),
            (
                b'{"event_id":"e","type":"heartbeat","timestamp":"2026-03-01T20:00:00"}',
                "heartbeat.timestamp: Input should have timezone info",
            ),
            (
                b'{"event_id":"e","type":"session_started","needle_depth_mm":9}',
                "session_started.needle_depth_mm: Input should be less than or equal to 3",
            ),
            (
                b'{"event_id":"","type":"heartbeat"}',
                "heartbeat.event_id: String should have at least 1 character",
            ),
            (
                b'{"event_id":"e","type":"heartbeat","schema_version":2}',
                "heartbeat.schema_version: Value error, unsupported schema_version 2"
                " (newest known: 1)",
            ),
        ],
    )
    def test_bad_payloads_name_the_field(self, payload: bytes, expected: str) -> None:
        """A rejected payload's reason names the field and the problem."""
        assert expected == reason(DEVICE_EVENTS, payload)

    def test_unknown_type_is_named(self) -> None:
        """An unknown type is rejected with the type in the reason."""
        assert "'dance'" in reason(DEVICE_EVENTS, b'{"event_id":"e","type":"dance"}')

    def test_unknown_fields_are_ignored(self) -> None:
        """A newer firmware's extra fields do not break parsing."""
        event = DEVICE_EVENTS.validate_json(b'{"event_id":"e","type":"heartbeat","x":1}')
        assert "heartbeat" == event.type

    @settings(max_examples=500, deadline=None)
    @given(st.binary(max_size=300))
    def test_any_bytes_parse_or_raise_validation_error(self, payload: bytes) -> None:
        """Arbitrary bytes never raise anything but a ValidationError."""
        for adapter in (DEVICE_EVENTS, MIRROR_EVENTS, COMMANDS):
            try:
                adapter.validate_json(payload)
            except ValidationError as error:
                reason_text = describe_validation_error(error)
            else:
                reason_text = "accepted"
            assert reason_text

    @settings(max_examples=300, deadline=None)
    @given(
        st.fixed_dictionaries(
            {"event_id": st.text(min_size=1, max_size=20), "type": st.just("session_started")},
            optional={
                "needle_depth_mm": st.one_of(st.floats(allow_nan=False), st.text(), st.none()),
                "zones": st.lists(st.text(max_size=10), max_size=3),
                "setting": st.sampled_from(["home", "professional", "spa"]),
                "timestamp": st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
            },
        )
    )
    def test_json_documents_parse_or_raise_validation_error(self, doc: dict[str, object]) -> None:
        """Structured but random documents are accepted exactly when each field is valid."""
        try:
            event = DEVICE_EVENTS.validate_json(json.dumps(doc))
        except ValidationError:
            return
        assert isinstance(event, SessionStarted)
        assert event.needle_depth_mm is None or 0.1 <= event.needle_depth_mm <= 3.0


class TestMirrorAndCommands:
    def test_product_applied(self) -> None:
        """product_applied carries the product and its ingredients."""
        event = MIRROR_EVENTS.validate_json(
            b'{"event_id":"m1","type":"product_applied","profile":"alice",'
            b'"product":"Night serum","ingredients":["retinol","squalane"]}'
        )
        assert ("retinol", "squalane") == event.ingredients  # type: ignore[union-attr]

    def test_command_without_event_id(self) -> None:
        """A Home Assistant button's fixed payload needs no event_id."""
        command = COMMANDS.validate_json(b'{"action":"ack_all"}')
        assert command.event_id is None

    def test_schemas_cover_every_topic(self) -> None:
        """The JSON Schema export names all three inbound payload kinds."""
        assert ["command", "device_event", "mirror_event"] == sorted(json_schemas())


class TestTopics:
    topics = Topics("needlecare")

    @pytest.mark.parametrize(
        ("topic", "expected"),
        [
            ("needlecare/device/pen1/event", InboundTopic(Source.DEVICE, "pen1")),
            ("needlecare/mirror/hall-way/event", InboundTopic(Source.MIRROR, "hall-way")),
            ("needlecare/profile/alice/command", InboundTopic(Source.COMMAND, "alice")),
        ],
    )
    def test_inbound_topics_parse(self, topic: str, expected: InboundTopic) -> None:
        """The three inbound topics of the contract parse to their source and slug."""
        assert expected == self.topics.parse_inbound(topic)

    @pytest.mark.parametrize(
        "topic",
        [
            "needlecare/device/Pen1/event",
            "needlecare/device/../event",
            "needlecare/device/pen\x00/event",
            "needlecare/device/a b/event",
            "needlecare/device/" + "a" * 65 + "/event",
            "needlecare/device/pen1/notify",
            "needlecare/device/pen1/event/extra",
            "other/device/pen1/event",
        ],
    )
    def test_hostile_topics_are_refused(self, topic: str) -> None:
        """Bad slugs and off-contract topics raise TopicError."""
        with pytest.raises(TopicError):
            self.topics.parse_inbound(topic)

    def test_building_a_topic_from_a_bad_slug_is_refused(self) -> None:
        """No outbound topic is ever built from a slug that could be a wildcard."""
        with pytest.raises(TopicError):
            self.topics.mirror_notify("#")

    @given(st.text(max_size=70))
    def test_slug_rule(self, text: str) -> None:
        """A slug is 1-64 of [a-z0-9_-]; nothing else passes."""
        expected = 1 <= len(text) <= 64 and all(
            c in "abcdefghijklmnopqrstuvwxyz0123456789_-" for c in text
        )
        assert expected == is_slug(text)
