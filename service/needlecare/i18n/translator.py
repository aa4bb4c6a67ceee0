"""One language's words and formats: gettext with named placeholders, Babel's dates and lists.

Babel is imported on the first formatted date, list or number, not with this module:
the config and the protocol import the language types at every start, and the
daemon says ``online`` before it formats anything (docs/PERFORMANCE.md, Start).
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

from needlecare.i18n.catalogs import catalog
from needlecare.i18n.languages import DEFAULT_LANGUAGE, FORMAT_LOCALES, Language

if TYPE_CHECKING:
    from babel import Locale

_PLACEHOLDER: Final = re.compile(r"\{([a-z_]+)\}")
INGREDIENT_CONTEXT: Final = "ingredient class"


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message


def NP_(context: str, message: str) -> str:
    """Mark ``message`` in ``context`` for extraction; it is translated where it is shown."""
    return message


# Display names of the built-in ingredient classes (a user's own class shows as named).
INGREDIENT_NAMES: Final = (
    NP_("ingredient class", "retinoids"),
    NP_("ingredient class", "exfoliants"),
)


def fill(template: str, values: Mapping[str, object]) -> str:
    """``template`` with known ``{name}`` placeholders replaced by ``values``.

    Unknown placeholders and stray braces stay as written (a user's own step text
    may hold them) instead of failing as ``str.format`` would.
    """
    return _PLACEHOLDER.sub(
        lambda match: str(values[match[1]]) if match[1] in values else match[0], template
    )


@dataclass(frozen=True, slots=True)
class Translator:
    """Messages and formats of one supported language."""

    language: Language

    @property
    def locale(self) -> "Locale":
        """The Babel locale whose conventions format dates, lists and numbers."""
        return _locale(FORMAT_LOCALES[self.language])

    # -- messages ----------------------------------------------------------------------

    def gettext(self, message: str, /, **values: object) -> str:
        """``message`` in this language, placeholders filled from ``values``."""
        return fill(catalog(self.language).gettext(message), values)

    def ngettext(self, singular: str, plural: str, n: int, /, **values: object) -> str:
        """The plural form for ``n`` (which fills ``{n}``), placeholders filled."""
        return fill(catalog(self.language).ngettext(singular, plural, n), {"n": n, **values})

    def pgettext(self, context: str, message: str, /, **values: object) -> str:
        """``message`` in ``context`` (the same English word may need two translations)."""
        return fill(catalog(self.language).pgettext(context, message), values)

    def npgettext(
        self, context: str, singular: str, plural: str, n: int, /, **values: object
    ) -> str:
        """The plural form for ``n`` in ``context``, placeholders filled."""
        translated = catalog(self.language).npgettext(context, singular, plural, n)
        return fill(translated, {"n": n, **values})

    def text(self, text: str | Mapping[Language, str]) -> str:
        """A step text: this language's entry of a per-language mapping, else a catalog
        lookup (a user's own plain text comes back unchanged); placeholders stay."""
        if isinstance(text, str):
            return catalog(self.language).gettext(text)
        for language in (self.language, DEFAULT_LANGUAGE):
            if language in text:
                return text[language]
        return next(iter(text.values()))

    def ingredient(self, name: str) -> str:
        """The display name of an ingredient class; its machine value (``retinoids``)
        is what the protocol and the JSON carry."""
        return self.pgettext(INGREDIENT_CONTEXT, name)

    # -- formats -----------------------------------------------------------------------

    def join(self, items: Iterable[str]) -> str:
        """Items joined the locale's way: "a, b and c", "a, b und c", "a, b et c"."""
        from babel.lists import format_list  # noqa: PLC0415 - Babel loads on first use

        words = list(items)
        return format_list(words, locale=self.locale) if words else ""

    def when(self, moment: datetime, zone: ZoneInfo) -> str:
        """A moment as a mirror shows it, in ``zone``: "Sun 8 Mar, 20:15", "So., 8. März, 20:15"."""
        from babel.dates import format_skeleton  # noqa: PLC0415 - Babel loads on first use

        local = moment.astimezone(zone)
        day = format_skeleton("MMMEd", local, tzinfo=zone, locale=self.locale)
        return self._date_time(day, self.time(local, zone), "short")

    def when_spoken(self, moment: datetime, zone: ZoneInfo) -> str:
        """A moment written out for a voice: full weekday and month, no abbreviation."""
        from babel.dates import format_date  # noqa: PLC0415 - Babel loads on first use

        local = moment.astimezone(zone)
        day = format_date(local, "full", locale=self.locale)
        return self._date_time(day, self.time(local, zone), "full")

    def day(self, moment: datetime, zone: ZoneInfo) -> str:
        """The local date of ``moment``: "8 Mar 2026", "08.03.2026"."""
        from babel.dates import format_date  # noqa: PLC0415 - Babel loads on first use

        return format_date(moment.astimezone(zone), "medium", locale=self.locale)

    def weekday(self, moment: datetime, zone: ZoneInfo) -> str:
        """The local weekday's full name: "Sunday", "Sonntag"."""
        from babel.dates import format_date  # noqa: PLC0415 - Babel loads on first use

        return format_date(moment.astimezone(zone), "EEEE", locale=self.locale)

    def time(self, moment: datetime, zone: ZoneInfo) -> str:
        """The local wall-clock time: "20:15"."""
        from babel.dates import format_time  # noqa: PLC0415 - Babel loads on first use

        return format_time(moment.astimezone(zone), "short", tzinfo=zone, locale=self.locale)

    def relative(self, delta: timedelta) -> str:
        """A span from now: "in 3 days", "vor 2 Stunden"."""
        from babel.dates import format_timedelta  # noqa: PLC0415 - Babel loads on first use

        return format_timedelta(delta, add_direction=True, locale=self.locale)

    def duration(self, delta: timedelta) -> str:
        """A length of time: "3 days", "72 Stunden" at the largest whole unit."""
        from babel.dates import format_timedelta  # noqa: PLC0415 - Babel loads on first use

        return format_timedelta(delta, threshold=1, locale=self.locale)

    def number(self, value: float) -> str:
        """A decimal number with the locale's separator: "1.5", "1,5"."""
        from babel.numbers import format_decimal  # noqa: PLC0415 - Babel loads on first use

        return format_decimal(value, locale=self.locale)

    def _date_time(self, day: str, time: str, width: str) -> str:
        pattern = str(self.locale.datetime_formats[width])
        return pattern.replace("{1}", day).replace("{0}", time)


@cache
def _locale(name: str) -> "Locale":
    # Parsed once: Babel's formatters take the Locale object as it is.
    from babel import Locale  # noqa: PLC0415 - Babel loads on first use

    return Locale.parse(name)


@cache
def translator(language: str) -> Translator:
    """The translator of a supported language (the config validates the tag)."""
    if language not in FORMAT_LOCALES:
        msg = f"unsupported language {language!r}"
        raise ValueError(msg)
    return Translator(language)  # type: ignore[arg-type]  # checked against FORMAT_LOCALES
