"""iCalendar export of next-session windows (RFC 5545)."""

from datetime import UTC, datetime

from needlecare.calendar_export import WindowEvent, to_ics

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EVENT = WindowEvent(
    uid="ses_1-window@needlecare",
    summary="Microneedling window (alice)",
    description="Next session; start on clean skin, free of makeup.",
    start=datetime(2026, 3, 29, 19, 15, tzinfo=UTC),
    end=datetime(2026, 4, 12, 19, 15, tzinfo=UTC),
)


class TestIcs:
    def test_lines_end_with_crlf_and_fields_are_utc(self) -> None:
        """Every line ends in CRLF; times are UTC with a Z."""
        text = to_ics([EVENT], now=NOW)
        assert text.endswith("END:VCALENDAR\r\n")
        assert "\n" not in text.replace("\r\n", "")
        assert "DTSTART:20260329T191500Z\r\n" in text
        assert "UID:ses_1-window@needlecare\r\n" in text

    def test_text_is_escaped(self) -> None:
        """Commas and semicolons in text are escaped."""
        assert "DESCRIPTION:Next session\\; start on clean skin\\," in to_ics([EVENT], now=NOW)

    def test_long_lines_are_folded_at_75_octets(self) -> None:
        """Long lines fold at 75 octets, with continuation lines starting with a space."""
        long = WindowEvent(EVENT.uid, "ü" * 100, EVENT.description, EVENT.start, EVENT.end)
        lines = to_ics([long], now=NOW).split("\r\n")
        assert all(len(line.encode()) <= 75 for line in lines)
        summary = next(i for i, line in enumerate(lines) if line.startswith("SUMMARY:"))
        assert lines[summary + 1].startswith(" ")
        unfolded = "".join(
            [lines[summary], *(line[1:] for line in lines[summary + 1 : summary + 3])]
        )
        assert "SUMMARY:" + "ü" * 100 == unfolded

    def test_no_sessions_is_an_empty_calendar(self) -> None:
        """Without windows, a valid empty calendar."""
        assert "BEGIN:VEVENT" not in to_ics([], now=NOW)
