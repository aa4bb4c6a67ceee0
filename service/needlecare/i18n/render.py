"""A prompt's placeholder values shown on a screen or written out for a voice.

Planning hands over plain values (moments, numbers, names, ingredient classes);
here they become text in the profile's language, one way for reading and one for
hearing, so no message is ever assembled from English fragments.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from needlecare.i18n.translator import Translator

Value = str | int | float | datetime | Sequence[str]
Values = Mapping[str, Value]


def shown(values: Values, tr: Translator, zone: ZoneInfo) -> dict[str, str]:
    """Values as a mirror, phone or dashboard shows them."""
    return {name: _shown(value, tr, zone) for name, value in values.items()}


def heard(values: Values, tr: Translator, zone: ZoneInfo, now: datetime) -> dict[str, str]:
    """Values as a voice says them: moments written out, plus ``<name>_in`` for each
    moment, how far it is from ``now`` ("in 2 weeks")."""
    spoken: dict[str, str] = {}
    for name, value in values.items():
        if isinstance(value, datetime):
            spoken[name] = tr.when_spoken(value, zone)
            spoken[f"{name}_in"] = tr.relative(value - now)
        else:
            spoken[name] = _shown(value, tr, zone)
    return spoken


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
