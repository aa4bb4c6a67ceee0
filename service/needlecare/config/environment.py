"""The ``NEEDLECARE_*`` variables as nested config data, read by pydantic-settings.

pydantic-settings does the parsing (``__`` nesting, JSON for sections and lists,
case-insensitive names). :mod:`needlecare.config.loading` imports this module only
when such a variable is set: pydantic-settings, with the asyncio it pulls in, adds
tens of milliseconds to every start (docs/PERFORMANCE.md, Start).
"""

from collections.abc import Mapping
from typing import Any, cast

from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsError

from needlecare.config.models import ENV_NESTED_DELIMITER, ENV_PREFIX, NeedlecareConfig


class UnparsableEnvironmentError(ValueError):
    """A variable holds plain text where its key takes JSON (a section, a list, a mapping)."""


class _EnvironSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading a given mapping, not os.environ."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ  # read by the base __init__, via _load_env_vars
        # The source reads only the model's fields and the options given here; the
        # config is a plain model, so that building one never reads os.environ.
        super().__init__(
            cast("type[BaseSettings]", NeedlecareConfig),
            case_sensitive=False,
            env_prefix=ENV_PREFIX,
            env_nested_delimiter=ENV_NESTED_DELIMITER,
        )

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # The model is case-insensitive; the base class lower-cases names the same way.
        return {name.lower(): value for name, value in self._environ.items()}


def environment_data(environ: Mapping[str, str]) -> dict[str, Any]:
    """The variables of ``environ`` that name config keys, as nested data.

    Raises :class:`UnparsableEnvironmentError` when one cannot be parsed.
    """
    try:
        return _EnvironSource(environ)()
    except SettingsError as error:
        raise UnparsableEnvironmentError(str(error)) from None


def parses(name: str, value: str) -> bool:
    """Whether the one variable ``name=value`` can be parsed."""
    try:
        _EnvironSource({name: value})()
    except SettingsError:
        return False
    return True
