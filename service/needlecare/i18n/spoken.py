"""What a voice says for each built-in step: short sentences, no symbols, no abbreviations.

A screen can show "Sun 8 Mar, 20:15" or "1.5 mm"; a smart speaker reads those
badly. These texts are written to be heard, and take the values of
:func:`needlecare.i18n.render.heard` (moments written out, ``<moment>_in`` for how far
away they are). A step whose title or message a user changed is spoken as its own
text instead: the built-in voice text would no longer say the same thing.
"""

from collections.abc import Mapping
from typing import Final

from needlecare.i18n.translator import NP_, Translator, fill

VOICE: Final = "voice"

SPOKEN: Final[Mapping[str, str]] = {
    "soothe": NP_(
        "voice",
        "Your skin is sensitive after the session. Please apply a soothing serum or cream now.",
    ),
    "serum_window": NP_(
        "voice",
        "Now is a good time for a serum. "
        "Your skin takes up hyaluronic acid, peptides and antioxidants especially well.",
    ),
    "actives_pause": NP_(
        "voice",
        "Please pause your actives. No retinoids or exfoliants until {until}.",
    ),
    "actives_resume": NP_(
        "voice",
        "Your actives pause is over. Retinoids and exfoliants are fine again.",
    ),
    "window_open": NP_(
        "voice",
        "The window for your next session is open. It closes {window_end_in}. "
        "Start with clean skin and no makeup.",
    ),
    "overdue": NP_(
        "voice",
        "Your next session is overdue. The window of four to six weeks has closed. "
        "Please plan your next session.",
    ),
    "too_soon": NP_(
        "voice",
        "This is too soon for another session. Your skin is still recovering. "
        "The window for your next session opens {window_start_in}.",
    ),
    "depth_limit": NP_(
        "voice",
        "The needle depth is too deep. {depth} millimetres is more than this device allows. "
        "The limit is {limit} millimetres. Please follow the manufacturer's instructions.",
    ),
    "restricted_product": NP_(
        "voice",
        "Please avoid {product} for now. It contains {ingredients}. Wait until {until}.",
    ),
    "redness_advice": NP_(
        "voice",
        "Your skin is still red on day {day} after the session. "
        "Keep soothing and moisturising. If the redness stays, ask a professional.",
    ),
    "cleanse_first": NP_(
        "voice",
        "Please cleanse first. Start with clean skin and no makeup.",
    ),
}


def speech(
    kind: str,
    *,
    title: str,
    message: str,
    values: Mapping[str, str],
    tr: Translator,
    built_in: bool,
) -> str:
    """The voice text of a prompt of ``kind``; ``title`` and ``message`` are the shown text.

    ``built_in``: the step's texts are the defaults, so its voice text fits.
    """
    if kind == "missed_summary" and built_in:
        count = int(values.get("count", "0"))
        # Only ever said for one or more reminders: the singular spells out "one".
        return tr.npgettext(
            "voice",
            "One reminder was missed while Needlecare was not running.",
            "{n} reminders were missed while Needlecare was not running.",
            count,
        )
    if built_in and kind in SPOKEN:
        # fill, not keyword arguments: only the values the text uses get formatted.
        return fill(tr.pgettext(VOICE, SPOKEN[kind]), values)
    return tr.pgettext("voice", "{title}. {message}", title=title, message=message)
