"""The supported languages, the config's ``language`` type, and per-language step texts."""

from collections.abc import Mapping
from typing import Annotated, Final, Literal, get_args

from pydantic import BeforeValidator, StringConstraints
from pydantic_core import PydanticCustomError

Language = Literal["en", "de", "fr", "es", "nl"]
SUPPORTED_LANGUAGES: Final[tuple[Language, ...]] = get_args(Language)
DEFAULT_LANGUAGE: Final[Language] = "en"
# Babel locale whose conventions format dates, lists and numbers for a language.
# English follows the day-month order and 24-hour clock the prompts have always used.
FORMAT_LOCALES: Final[Mapping[Language, str]] = {
    "en": "en_GB",
    "de": "de_DE",
    "fr": "fr_FR",
    "es": "es_ES",
    "nl": "nl_NL",
}


def primary_tag(value: object) -> object:
    """A BCP 47 tag's primary language subtag, lower case ("de-AT" -> "de").

    Anything that is not one of :data:`SUPPORTED_LANGUAGES` is an error that lists them.
    """
    if not isinstance(value, str):
        return value
    tag = value.strip().replace("_", "-").split("-", 1)[0].lower()
    if tag not in SUPPORTED_LANGUAGES:
        supported = ", ".join(SUPPORTED_LANGUAGES)
        raise PydanticCustomError(
            "language_unknown",
            "unsupported language; supported: {supported}",
            {"supported": supported},
        )
    return tag


LanguageTag = Annotated[Language, BeforeValidator(primary_tag)]
_Title = Annotated[str, StringConstraints(min_length=1, max_length=200)]
_Text = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
# A step's title or message: one string for every language, or one per language tag
# (a language left out falls back to the ``en`` entry, else the first one given).
LocalTitle = _Title | dict[LanguageTag, _Title]
LocalText = _Text | dict[LanguageTag, _Text]
