"""A prompt's placeholder values shown on a screen or written out for a voice.

Planning hands over plain values (moments, numbers, names, ingredient classes);
here they become text in the profile's language, one way for reading and one for
hearing, so no message is ever assembled from English fragments. A value is
formatted only when a message asks for it, and once.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from needlecare.i18n.translator import Translator

Value = str | int | float | datetime | Sequence[str]
Values = Mapping[str, Value]
_DISTANCE = "_in"


class Formatted(Mapping[str, str]):
    """``values`` as text, each formatted by ``format_one`` on first use."""

    def __init__(self, names: Sequence[str], format_one: Callable[[str], str]) -> None:
        self._names = tuple(names)
        self._format = format_one
        self._done: dict[str, str] = {}

    def __getitem__(self, name: str) -> str:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._done:
            self._done[name] = self._format(name)
        return self._done[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def shown(values: Values, tr: Translator, zone: ZoneInfo) -> Formatted:
    """Values as a mirror, phone or dashboard shows them."""
    return Formatted(list(values), lambda name: _shown(values[name], tr, zone))


def heard(values: Values, tr: Translator, zone: ZoneInfo, now: datetime) -> Formatted:
    """Values as a voice says them: moments written out, plus ``<name>_in`` for each
    moment, how far it is from ``now`` ("in 2 weeks")."""
    moments = [name for name, value in values.items() if isinstance(value, datetime)]

    def spoken(name: str) -> str:
        if name.endswith(_DISTANCE) and name.removesuffix(_DISTANCE) in moments:
            moment = values[name.removesuffix(_DISTANCE)]
            assert isinstance(moment, datetime)  # noqa: S101 - listed as a moment above
            return tr.relative(moment - now)
        value = values[name]
        if isinstance(value, datetime):
            return tr.when_spoken(value, zone)
        return _shown(value, tr, zone)

    return Formatted([*values, *(name + _DISTANCE for name in moments)], spoken)


def _shown(value: Value, tr: Translator, zone: ZoneInfo) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return tr.when(value, zone)
    if isinstance(value, bool | int):
        return str(int(value))
    if isinstance(value, float):
        return tr.number(value)
    # A sequence of ingredient classes, by their display names, joined the locale's way.
    return tr.join(tr.ingredient(name) for name in value)
