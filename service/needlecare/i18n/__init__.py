"""Speaking the household's language: gettext catalogs, and Babel's dates, lists and plurals.

``translator(language)`` gives one :class:`Translator` per supported language; its
``gettext``/``ngettext``/``pgettext`` fill named ``{placeholders}``, and its
formatters show times in the profile's locale and time zone. Machine values
(kinds, statuses, ingredient classes, JSON keys) are never translated.
"""

from needlecare.i18n.languages import (
    DEFAULT_LANGUAGE,
    SUPPORTED_LANGUAGES,
    Language,
    LanguageTag,
    LocalText,
    LocalTitle,
    primary_tag,
)
from needlecare.i18n.translator import N_, NP_, Translator, fill, translator

__all__ = [
    "DEFAULT_LANGUAGE",
    "NP_",
    "N_",
    "SUPPORTED_LANGUAGES",
    "Language",
    "LanguageTag",
    "LocalText",
    "LocalTitle",
    "Translator",
    "fill",
    "primary_tag",
    "translator",
]
