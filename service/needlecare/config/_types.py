"""Field types and checks shared by the config models.

Checks raise ``PydanticCustomError`` rather than ``ValueError`` so the message reaches
the user as written, without pydantic's "Value error, " prefix.
"""

from typing import Annotated
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, StringConstraints, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

_TOPIC_FORBIDDEN = ("+", "#", "\0")


def check_topic_root(value: str) -> str:
    """Accept a topic prefix that our topics can be built under verbatim."""
    if not value:
        raise PydanticCustomError("topic_empty", "must not be empty")
    if any(char in value for char in _TOPIC_FORBIDDEN):
        raise PydanticCustomError("topic_wildcard", "must not contain '+', '#' or NUL")
    if value.startswith("/") or value.endswith("/"):
        raise PydanticCustomError("topic_slash", "must not start or end with '/'")
    return value


def check_time_zone(value: str) -> str:
    """Accept an IANA time zone name that this machine's tz database knows."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ValueError and OSError cover keys such as "../x" or "zone.tab" that are not zones.
        raise PydanticCustomError("unknown_time_zone", "unknown time zone") from None
    return value


def check_http_url(value: str) -> str:
    """Accept an absolute http:// or https:// URL, keeping it exactly as written."""
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise PydanticCustomError("http_url", "must be an http:// or https:// URL")
    return value


def reject_unquoted_time(value: object) -> object:
    """Refuse numbers where a wall-clock time is expected.

    YAML 1.1 reads an unquoted ``22:00`` as the base-60 number 1320, which pydantic
    would then take as seconds after midnight: 00:22, silently.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise PydanticCustomError("time_unquoted", 'write the time in quotes, like "22:00"')
    return value


def located_error(title: str, errors: list[InitErrorDetails]) -> ValidationError:
    """Build a ValidationError whose errors point at the given locations.

    Raised from a model validator, pydantic-core prefixes these locations with the
    model's own, so a cross-field error lands on the field that is wrong.
    """
    return ValidationError.from_exception_data(title, errors)


def error_at(
    loc: tuple[str | int, ...], value: object, kind: str, message: str
) -> InitErrorDetails:
    """One error for :func:`located_error`; ``message`` is shown to the user as is."""
    # No context: the template is then used literally, braces and all.
    return InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=value)


TopicRoot = Annotated[str, AfterValidator(check_topic_root)]
ClientId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
TimeZoneName = Annotated[str, AfterValidator(check_time_zone)]
HttpUrlText = Annotated[str, AfterValidator(check_http_url)]
