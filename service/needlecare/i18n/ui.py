"""The web app's own words, per language, for the pages and for static/app.js.

The pages are shared by the household, so their frame (navigation, headings,
footer) follows the browser's language among the supported ones, while each
profile's card speaks that profile's language, as its prompts do. The strings go
to the browser as one JSON object: messages stay in the gettext catalogs.
"""

import json
from collections.abc import Iterable, Mapping
from typing import Final

from babel import Locale, negotiate_locale

from needlecare.i18n.languages import DEFAULT_LANGUAGE, FORMAT_LOCALES, SUPPORTED_LANGUAGES
from needlecare.i18n.translator import INGREDIENT_NAMES, N_, NP_, translator

UI: Final[Mapping[str, str]] = {
    "overview": N_("Overview"),
    "timeline": N_("Timeline"),
    "sessions": N_("Sessions"),
    "skin": N_("Skin checks"),
    "dead-letters": N_("Dead letters"),
    "config": N_("Configuration"),
    "login": N_("Log in"),
    "logout": N_("Log out"),
    "skip": N_("Skip to content"),
    "pages": N_("Pages"),
    "footer": N_("Needlecare is not medical advice: a professional's instructions come first."),
    "recovery_day": N_("Recovery day"),
    "last_session": N_("Last session"),
    "next_window": N_("Next window"),
    "no_restrictions": N_("No restrictions."),
    "no_prompts": N_("No open prompts."),
    "no_profiles": N_("No profiles configured."),
    "done": N_("Done"),
    "snooze": N_("Snooze"),
    "snooze_for": N_("Snooze {title} for"),
    "due": N_("due {when}"),
    "avoid_until": N_("{name}: avoid {ingredients} until {when}"),
    "actives": N_("actives"),
    "acked": N_("Done: acknowledged everywhere."),
    "snoozed": N_("Snoozed."),
    "ended": N_("ended"),
    "left_days": N_("{days} d {hours} h left"),
    "left_hours": N_("{hours} h {minutes} min left"),
    "not_acked": N_("Could not acknowledge: {error}"),
    "not_snoozed": N_("Could not snooze: {error}"),
    "not_loaded": N_("Could not load: {error}"),
    "everyone": N_("Everyone"),
    "profile": N_("Profile"),
    "session_row": N_("Session ({setting}, {status})"),
    "nothing_yet": N_("Nothing yet."),
    "log_title": N_("Log a session"),
    "setting": N_("Setting"),
    "home": N_("Home"),
    "professional": N_("Professional"),
    "ended_at": N_("Ended at (empty: now)"),
    "depth_mm": N_("Needle depth, mm (optional)"),
    "log_session": N_("Log session"),
    "logged": N_("Logged session {id}."),
    "not_logged": N_("Not logged: {error}"),
    "recent_sessions": N_("Recent sessions"),
    "reason_to_void": N_("Reason to void {id}"),
    "reason": N_("reason"),
    "void": N_("Void"),
    "voided": N_("Voided {id}."),
    "not_voided": N_("Not voided: {error}"),
    "chart_label": N_("Redness of {n} skin checks, 0 to 100"),
    "no_skin_checks": N_("No skin checks yet."),
    "redness_line": N_("{when}: redness {redness}"),
    "full_report": N_("Full report with plots"),
    "no_dead_letters": N_("No rejected messages."),
    "no_warnings": N_("No warnings."),
}
# The profile state's machine values, as a card shows them.
SHOWN_VALUES: Final[Mapping[str, str]] = {
    "status.no_history": NP_("status", "no history"),
    "status.recovering": NP_("status", "recovering"),
    "status.resting": NP_("status", "resting"),
    "status.due": NP_("status", "due"),
    "status.overdue": NP_("status", "overdue"),
    "restriction.actives_pause": NP_("restriction", "actives pause"),
}


def strings(language: str) -> dict[str, str]:
    """Every web string of ``language``, by key."""
    tr = translator(language)
    table = {key: tr.gettext(message) for key, message in UI.items()}
    for key, message in SHOWN_VALUES.items():
        table[key] = tr.pgettext(key.split(".", 1)[0], message)
    for name in INGREDIENT_NAMES:
        table[f"ingredient.{name}"] = tr.ingredient(name)
    return table


def page_language(query: str | None, accept_language: str | None) -> str:
    """The language of a page's frame: ``?lang=``, else the browser's preference."""
    if query is not None and query.lower() in SUPPORTED_LANGUAGES:
        return query.lower()
    wanted = [part.split(";")[0].strip() for part in (accept_language or "").split(",")]
    chosen = negotiate_locale([w for w in wanted if w], SUPPORTED_LANGUAGES, sep="-")
    return Locale.parse(chosen, sep="-").language if chosen else DEFAULT_LANGUAGE


def browser_json(page: str, profiles: Mapping[str, str], languages: Iterable[str] = ()) -> str:
    """The object app.js reads: the page's language, each profile's, and their strings
    and date locales. Safe inside a ``<script type="application/json">`` element."""
    used = sorted({page, *profiles.values(), *languages})
    body = {
        "lang": page,
        "profiles": dict(profiles),
        "locales": {lang: FORMAT_LOCALES[lang].replace("_", "-") for lang in used},  # type: ignore[index]
        "strings": {lang: strings(lang) for lang in used},
    }
    return json.dumps(body, ensure_ascii=False).replace("</", "<\\/")
