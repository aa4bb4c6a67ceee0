"""Aftercare steps as to-do items: which steps, their text and due time, and check-offs."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from needlecare.app.todo import (
    TODO_KINDS,
    TodoList,
    description,
    reminder_from_description,
    summary,
)
from needlecare.config import NeedlecareConfig
from needlecare.domain.outbox import OutboxItem
from needlecare.domain.protocol import STEP_NAMES

T0 = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Step:
    id: str
    profile: str
    kind: str
    title: str
    due_at: datetime


class FakeOutbox:
    def __init__(self) -> None:
        self.items: dict[str, OutboxItem] = {}

    def add(self, item: OutboxItem) -> bool:
        if item.key in self.items:
            return False
        self.items[item.key] = item
        return True


class FakeStore:
    def __init__(self) -> None:
        self.outbox = FakeOutbox()


def todo_list(todo_entity: str | None = "todo.aftercare") -> tuple[TodoList, FakeStore]:
    ha: dict[str, Any] = {"url": "http://ha.local:8123"}
    if todo_entity:
        ha["todo_entity"] = todo_entity
    config = NeedlecareConfig.model_validate(
        {"homeassistant": ha, "profiles": {"alice": {"timezone": "Europe/Berlin"}}}
    )
    store = FakeStore()
    return TodoList(store, config), store  # type: ignore[arg-type]


class TestTodoList:
    def test_only_the_steps_a_person_does_become_items(self) -> None:
        """Soothe, serum, the end of the actives pause; not the pause itself, not the window
        prompts, not a guard."""
        todo, store = todo_list()
        kinds = [*STEP_NAMES, "sunscreen"]  # the last: no step of the protocol
        todo.planned([Step(f"s1:{k}", "alice", k, k.title(), T0) for k in kinds], T0)
        added = [json.loads(item.payload)["description"] for item in store.outbox.items.values()]
        expected = ["soothe", "serum_window", "actives_resume"]
        assert [f"needlecare:s1:{k}" for k in expected] == added
        assert set(expected) == TODO_KINDS

    def test_an_item_has_the_local_due_time_and_goes_through_the_outbox(self) -> None:
        """todo.add_item data, due in the profile's zone; the row has no reminder_id."""
        todo, store = todo_list()
        todo.planned([Step("s1:soothe", "alice", "soothe", "Soothe your skin", T0)], T0)
        [item] = store.outbox.items.values()
        assert ("todo", "todo.aftercare", None) == (item.channel, item.target, item.reminder_id)
        assert {
            "entity_id": "todo.aftercare",
            "item": "Soothe your skin (Sun 1 Mar, 12:00)",
            "due_datetime": "2026-03-01T12:00:00+01:00",
            "description": "needlecare:s1:soothe",
        } == json.loads(item.payload)

    def test_the_same_plan_in_the_same_turn_is_queued_once(self) -> None:
        """The key holds the due time and the turn: a repeat within a turn adds nothing."""
        todo, store = todo_list()
        step = Step("s1:soothe", "alice", "soothe", "Soothe", T0)
        todo.planned([step], T0)
        todo.planned([step], T0)
        assert 1 == len(store.outbox.items)

    def test_a_replanned_step_is_queued_again_with_its_new_due_time(self) -> None:
        """The adapter updates the item it finds by description (no second item)."""
        todo, store = todo_list()
        todo.planned([Step("s1:soothe", "alice", "soothe", "Soothe", T0)], T0)
        later = T0.replace(hour=12)
        todo.planned([Step("s1:soothe", "alice", "soothe", "Soothe", later)], later)
        dues = [json.loads(i.payload)["due_datetime"] for i in store.outbox.items.values()]
        assert ["2026-03-01T12:00:00+01:00", "2026-03-01T13:00:00+01:00"] == dues

    def test_an_ack_checks_the_item_off_by_its_description(self) -> None:
        """todo_done names the list and the description; window prompts have no item."""
        todo, store = todo_list()
        todo.checked(Step("s1:soothe", "alice", "soothe", "Soothe", T0), T0)
        todo.checked(Step("s1:window_open", "alice", "window_open", "Window", T0), T0)
        [item] = store.outbox.items.values()
        assert "todo_done" == item.channel
        expected = {
            "entity_id": "todo.aftercare",
            "description": "needlecare:s1:soothe",
            "status": "completed",
        }
        assert expected == json.loads(item.payload)

    def test_a_cancelled_reminder_takes_its_item_off(self) -> None:
        """Superseded or voided: todo_remove by description; window prompts have none."""
        todo, store = todo_list()
        todo.removed(Step("s1:serum_window", "alice", "serum_window", "Serum", T0), T0)
        todo.removed(Step("s1:overdue", "alice", "overdue", "Overdue", T0), T0)
        [item] = store.outbox.items.values()
        assert ("todo_remove", None) == (item.channel, item.reminder_id)
        expected = {"entity_id": "todo.aftercare", "description": "needlecare:s1:serum_window"}
        assert expected == json.loads(item.payload)

    def test_without_a_list_nothing_is_queued(self) -> None:
        """homeassistant.todo_entity unset: the feature is off."""
        todo, store = todo_list(None)
        todo.planned([Step("s1:soothe", "alice", "soothe", "Soothe", T0)], T0)
        todo.checked(Step("s1:soothe", "alice", "soothe", "Soothe", T0), T0)
        todo.removed(Step("s1:soothe", "alice", "soothe", "Soothe", T0), T0)
        assert {} == store.outbox.items


class TestDescription:
    def test_round_trip_and_foreign_items(self) -> None:
        """Only Needlecare's own descriptions name a reminder."""
        assert "s1:soothe" == reminder_from_description(description("s1:soothe"))
        assert reminder_from_description("buy milk") is None
        assert reminder_from_description(None) is None
        assert reminder_from_description("needlecare:") is None

    def test_summary(self) -> None:
        """The text shows the local due time, formatted for the person's language."""
        due = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
        berlin = ZoneInfo("Europe/Berlin")
        assert "Soothe (Sun 1 Mar, 13:00)" == summary("Soothe", due, berlin, "en")
        assert "Beruhigen (So., 1. März, 13:00)" == summary("Beruhigen", due, berlin, "de")
