"""Local wall-clock time across DST: gaps, folds, quiet hours and midnights."""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from needlecare.domain.localtime import (
    QuietWindow,
    human_local,
    in_quiet_hours,
    local_datetime,
    next_local_midnight,
    quiet_hours_end,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
NIGHT = QuietWindow(time(22, 0), time(7, 0))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


class TestLocalDatetime:
    def test_plain_wall_time(self) -> None:
        """An ordinary wall time maps through the zone's offset that day."""
        assert utc(2026, 3, 5, 18) == local_datetime(date(2026, 3, 5), time(19), BERLIN)
        assert utc(2026, 7, 5, 17) == local_datetime(date(2026, 7, 5), time(19), BERLIN)

    @pytest.mark.parametrize(
        ("zone", "day", "expected"),
        [
            ("Europe/Berlin", date(2026, 3, 29), utc(2026, 3, 29, 1)),
            ("America/New_York", date(2026, 3, 8), utc(2026, 3, 8, 7)),
        ],
    )
    def test_spring_gap_moves_to_the_end_of_the_gap(
        self, zone: str, day: date, expected: datetime
    ) -> None:
        """02:30 does not exist on spring-forward day: the first instant after the gap."""
        assert expected == local_datetime(day, time(2, 30), ZoneInfo(zone))

    def test_half_hour_gap(self) -> None:
        """Lord Howe springs forward by 30 minutes; 02:15 moves to 02:30 (+11:00)."""
        zone = ZoneInfo("Australia/Lord_Howe")
        assert utc(2026, 10, 3, 15, 30) == local_datetime(date(2026, 10, 4), time(2, 15), zone)

    def test_whole_day_gap(self) -> None:
        """Samoa skipped 30 Dec 2011: any time that day moves to the start of the 31st."""
        zone = ZoneInfo("Pacific/Apia")
        assert utc(2011, 12, 30, 10) == local_datetime(date(2011, 12, 30), time(12), zone)

    @pytest.mark.parametrize(
        ("zone", "day", "at", "expected"),
        [
            ("Europe/Berlin", date(2026, 10, 25), time(2, 30), utc(2026, 10, 25, 0, 30)),
            ("America/New_York", date(2026, 11, 1), time(1, 30), utc(2026, 11, 1, 5, 30)),
        ],
    )
    def test_autumn_fold_takes_the_first_occurrence(
        self, zone: str, day: date, at: time, expected: datetime
    ) -> None:
        """A wall time that happens twice maps to its first (summer-time) occurrence."""
        assert expected == local_datetime(day, at, ZoneInfo(zone))

    def test_result_is_utc(self) -> None:
        """The instant comes back in UTC whatever the zone."""
        assert UTC == local_datetime(date(2026, 3, 5), time(19), NEW_YORK).tzinfo


class TestInQuietHours:
    @pytest.mark.parametrize(
        ("local", "expected"),
        [
            (time(21, 59), False),
            (time(22, 0), True),
            (time(23, 30), True),
            (time(0, 0), True),
            (time(6, 59), True),
            (time(7, 0), False),
            (time(12, 0), False),
        ],
    )
    def test_window_crossing_midnight(self, local: time, expected: bool) -> None:
        """22:00-07:00 holds from 22:00 inclusive to 07:00 exclusive, across midnight."""
        moment = local_datetime(date(2026, 3, 5), local, BERLIN)
        assert expected == in_quiet_hours(moment, NIGHT, BERLIN)

    @pytest.mark.parametrize(
        ("local", "expected"), [(time(12, 59), False), (time(13), True), (time(15), False)]
    )
    def test_window_within_a_day(self, local: time, expected: bool) -> None:
        """A window that does not cross midnight is a plain range."""
        window = QuietWindow(time(13), time(15))
        moment = local_datetime(date(2026, 3, 5), local, BERLIN)
        assert expected == in_quiet_hours(moment, window, BERLIN)

    def test_follows_the_local_clock_across_dst(self) -> None:
        """06:30 local is quiet on both sides of the change although its UTC hour moved."""
        before = utc(2026, 3, 28, 5, 30)  # 06:30 CET
        after = utc(2026, 3, 29, 4, 30)  # 06:30 CEST
        assert (True, True) == (
            in_quiet_hours(before, NIGHT, BERLIN),
            in_quiet_hours(after, NIGHT, BERLIN),
        )
        assert False is in_quiet_hours(utc(2026, 3, 29, 5, 30), NIGHT, BERLIN)  # 07:30 CEST


class TestQuietHoursEnd:
    def test_outside_quiet_hours_is_the_moment_itself(self) -> None:
        """Nothing waits outside quiet hours."""
        moment = utc(2026, 3, 5, 12)
        assert moment == quiet_hours_end(moment, NIGHT, BERLIN)

    def test_evening_waits_for_the_next_morning(self) -> None:
        """At 23:00 the quiet period ends at 07:00 the next day."""
        assert utc(2026, 3, 6, 6) == quiet_hours_end(utc(2026, 3, 5, 22), NIGHT, BERLIN)

    def test_early_morning_waits_for_the_same_morning(self) -> None:
        """At 05:00 the quiet period ends at 07:00 the same day."""
        assert utc(2026, 3, 5, 6) == quiet_hours_end(utc(2026, 3, 5, 4), NIGHT, BERLIN)

    @pytest.mark.parametrize(
        ("zone", "moment", "expected"),
        [
            ("Europe/Berlin", utc(2026, 3, 28, 22, 30), utc(2026, 3, 29, 5)),
            ("Europe/Berlin", utc(2026, 10, 24, 21, 30), utc(2026, 10, 25, 6)),
            ("America/New_York", utc(2026, 3, 8, 4), utc(2026, 3, 8, 11)),
            ("America/New_York", utc(2026, 11, 1, 3), utc(2026, 11, 1, 12)),
        ],
    )
    def test_nights_with_a_dst_change_end_at_seven_local(
        self, zone: str, moment: datetime, expected: datetime
    ) -> None:
        """A night with a DST change is an hour shorter or longer; it still ends at 07:00."""
        assert expected == quiet_hours_end(moment, NIGHT, ZoneInfo(zone))

    def test_end_in_the_repeated_hour(self) -> None:
        """In the second 02:10 of a fall-back night, a 02:30 end is the second 02:30."""
        window = QuietWindow(time(1), time(2, 30))
        moment = utc(2026, 10, 25, 1, 10)  # 02:10 CET, the second occurrence
        assert utc(2026, 10, 25, 1, 30) == quiet_hours_end(moment, window, BERLIN)


class TestNextLocalMidnight:
    @pytest.mark.parametrize(
        ("zone", "moment", "expected"),
        [
            ("Europe/Berlin", utc(2026, 3, 28, 12), utc(2026, 3, 28, 23)),
            ("Europe/Berlin", utc(2026, 3, 29, 12), utc(2026, 3, 29, 22)),
            ("Europe/Berlin", utc(2026, 10, 24, 12), utc(2026, 10, 24, 22)),
            ("Europe/Berlin", utc(2026, 10, 25, 12), utc(2026, 10, 25, 23)),
            ("America/New_York", utc(2026, 3, 6, 4, 30), utc(2026, 3, 6, 5)),
        ],
    )
    def test_next_start_of_a_local_day(
        self, zone: str, moment: datetime, expected: datetime
    ) -> None:
        """The next local 00:00, whose UTC hour depends on the offset that night."""
        assert expected == next_local_midnight(moment, ZoneInfo(zone))

    def test_midnight_inside_a_gap(self) -> None:
        """Chile springs forward at midnight: the day starts at 01:00 (-03:00)."""
        zone = ZoneInfo("America/Santiago")
        assert utc(2026, 9, 6, 4) == next_local_midnight(utc(2026, 9, 5, 16), zone)


class TestHumanLocal:
    def test_short_english_form_in_local_time(self) -> None:
        """Weekday, day, month and 24-hour time on the local clock."""
        assert "Thu 5 Mar, 20:15" == human_local(utc(2026, 3, 5, 19, 15), BERLIN)
        assert "Thu 5 Mar, 23:30" == human_local(utc(2026, 3, 6, 4, 30), NEW_YORK)
