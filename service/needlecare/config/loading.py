"""Loading the configuration: built-in defaults < YAML file < ``NEEDLECARE_*`` environment.

pydantic-settings turns the environment into nested data (``__`` nesting, JSON for
sections and lists, case-insensitive names; :mod:`needlecare.config.environment`,
loaded only when a ``NEEDLECARE_*`` variable is set); this module reads the file,
lays the environment over it key by key, validates once, and turns pydantic's
errors into :class:`ConfigProblem` values that name the layer each bad value came
from.
"""

import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_core import ErrorDetails

from needlecare.config.errors import (
    FILE_PROBLEM_PATH,
    HIDDEN,
    MISSING,
    SECRET_MASK,
    ConfigError,
    ConfigProblem,
    format_problems,
)
from needlecare.config.models import (
    ENV_NESTED_DELIMITER,
    ENV_PREFIX,
    SECRET_PATHS,
    NeedlecareConfig,
)

__all__ = ["CONFIG_PATH_VARIABLE", "ConfigError", "ConfigProblem", "format_problems", "load_config"]

CONFIG_PATH_VARIABLE: Final = "NEEDLECARE_CONFIG"
_KEY_MESSAGE: Final = "not a valid id: use 1 to 64 of a-z, 0-9, '_' and '-'"
# pydantic's messages in plain words; ``{...}`` are filled from the error's context.
_MESSAGES: Final = {
    "missing": "required, but not given",
    "int_parsing": "not a whole number",
    "int_type": "not a whole number",
    "int_from_float": "not a whole number",
    "float_parsing": "not a number",
    "float_type": "not a number",
    "bool_parsing": "not yes/no (true or false)",
    "bool_type": "not yes/no (true or false)",
    "string_type": "not text",
    "dict_type": "not a section (key: value lines)",
    "model_type": "not a section (key: value lines)",
    "model_attributes_type": "not a section (key: value lines)",
    "list_type": "not a list",
    "tuple_type": "not a list",
    "literal_error": "must be one of {expected}",
    "enum": "must be one of {expected}",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "greater_than": "must be more than {gt}",
    "less_than": "must be less than {lt}",
    "string_too_short": "too short: at least {min_length} character(s)",
    "string_too_long": "too long: at most {max_length} characters",
    "too_short": "too few: at least {min_length}",
    "too_long": "too many: at most {max_length}",
    "string_pattern_mismatch": "not in the expected form",
    "time_parsing": 'not a time of day: write it in quotes, like "22:00"',
    "time_type": 'not a time of day: write it in quotes, like "22:00"',
    "time_delta_parsing": "not a duration: seconds, or ISO 8601 like PT2H30M",
    "time_delta_type": "not a duration: seconds, or ISO 8601 like PT2H30M",
}
_ABSENT: Final = object()

DataPath = tuple[str, ...]


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> NeedlecareConfig:
    """Load and validate the configuration, or raise :class:`ConfigError` listing every problem.

    The file is ``path``, else ``$NEEDLECARE_CONFIG``, else none (defaults only).
    ``environ`` defaults to ``os.environ``; ``NEEDLECARE_<SECTION>__<KEY>`` variables
    override single keys of the file.
    """
    env = os.environ if environ is None else environ
    file = path if path is not None else _path_from_environment(env)
    layers = _Layers(
        file=file,
        file_data=_read_yaml(file) if file is not None else {},
        variables=_variable_paths(env),
    )
    data = _merge(layers.file_data, _environment_data(env, layers))
    try:
        return NeedlecareConfig.model_validate(data)
    except ValidationError as error:
        secrets = _secrets_in(data)
        problems = [_problem(detail, layers, secrets) for detail in error.errors()]
        # Cross-references are checked on a valid model only; find them in the raw
        # data too, so one run reports every problem.
        problems += [p for p in _unknown_profiles(data, layers) if p not in problems]
        # Not chained: pydantic's own message prints raw inputs, secrets included.
        raise ConfigError(problems, file=file) from None


@dataclass(frozen=True)
class _Layers:
    """What the file and the environment supplied, to name the source of a problem."""

    file: Path | None
    file_data: Mapping[str, Any]
    variables: Mapping[DataPath, str]  # data path -> variable name as spelled

    def source_of(self, path: DataPath, *, missing: bool) -> str:
        """Name the layer that supplied ``path``: environment, file or default."""
        # A missing key has no value of its own; blame whoever supplied its parent.
        anchor = path[:-1] if missing else path
        covering = [p for p in self.variables if anchor[: len(p)] == p]
        inside = sorted(p for p in self.variables if p[: len(anchor)] == anchor)
        if covering or inside:
            chosen = max(covering, key=len) if covering else inside[0]
            return f"environment {self.variables[chosen]}"
        if self.file is not None and _lookup(self.file_data, anchor) is not _ABSENT:
            return f"file {self.file}"
        return "default"


def _path_from_environment(environ: Mapping[str, str]) -> Path | None:
    value = environ.get(CONFIG_PATH_VARIABLE)
    return Path(value) if value else None


def _read_yaml(file: Path) -> dict[str, Any]:
    """The file's top-level mapping; an empty file is an empty mapping."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _file_error(file, "file not found") from None
    except UnicodeDecodeError:
        raise _file_error(file, "file is not UTF-8 text") from None
    except OSError as error:
        raise _file_error(file, f"cannot read file: {error.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise _file_error(file, _describe_yaml_error(error)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise _file_error(file, f"the top level must be a mapping of sections, not {kind}")
    return data


def _describe_yaml_error(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or "syntax error"
    if mark is None:
        return f"invalid YAML: {problem}"
    return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"


def _file_error(file: Path, message: str) -> ConfigError:
    problem = ConfigProblem(FILE_PROBLEM_PATH, str(file), message, f"file {file}")
    return ConfigError([problem], file=file)


def _is_ours(name: str) -> bool:
    upper = name.upper()
    return upper.startswith(ENV_PREFIX) and upper != CONFIG_PATH_VARIABLE


def _variable_path(name: str) -> DataPath:
    return tuple(name[len(ENV_PREFIX) :].lower().split(ENV_NESTED_DELIMITER))


def _variable_paths(environ: Mapping[str, str]) -> dict[DataPath, str]:
    return {_variable_path(name): name for name in environ if _is_ours(name)}


def _environment_data(environ: Mapping[str, str], layers: _Layers) -> dict[str, Any]:
    if not layers.variables:
        return {}  # nothing to parse: pydantic-settings stays unimported
    from needlecare.config import environment  # noqa: PLC0415 - costly, rarely needed

    try:
        return environment.environment_data(environ)
    except environment.UnparsableEnvironmentError:
        # The error names only the section; find the variables at fault one by one.
        problems = [
            _unparsable_variable(name, value)
            for name, value in sorted(environ.items())
            if _is_ours(name) and not environment.parses(name, value)
        ]
        raise ConfigError(problems, file=layers.file) from None


def _unparsable_variable(name: str, value: str) -> ConfigProblem:
    path = _variable_path(name)
    return ConfigProblem(
        path=".".join(path),
        value=_scrub(path, value, frozenset()),
        message="expected JSON: this key holds a section, a list or a mapping",
        source=f"environment {name}",
    )


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` laid over ``base`` key by key, so one variable replaces one value."""
    merged = dict(base)
    for key, value in override.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = _merge(below, value)
        else:
            merged[key] = value
    return merged


def _lookup(data: object, path: DataPath) -> object:
    """The value at ``path`` in YAML-shaped data, or ``_ABSENT``."""
    node = data
    for part in path:
        if isinstance(node, Mapping):
            # YAML keys need not be strings (``yes:`` is True); locations are.
            node = next((v for k, v in node.items() if str(k) == part), _ABSENT)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _ABSENT
    return node


def _secrets_in(data: Mapping[str, Any]) -> frozenset[str]:
    values = (_lookup(data, path) for path in SECRET_PATHS)
    return frozenset(str(v) for v in values if v is not _ABSENT and v is not None and str(v))


def _problem(detail: ErrorDetails, layers: _Layers, secrets: frozenset[str]) -> ConfigProblem:
    loc = tuple(str(part) for part in detail["loc"])
    # Errors in a mapping's key end with "[key]"; point at the key itself.
    is_key = loc[-1:] == ("[key]",)
    path = loc[:-1] if is_key else loc
    missing = detail["type"] == "missing"
    unknown = detail["type"] == "extra_forbidden"
    if is_key:
        message = _KEY_MESSAGE
    elif unknown:
        message = _unknown_key_message(path)
    else:
        message = _plain_message(detail)
    value = _scrub(path, detail["input"], secrets)
    if isinstance(value, timedelta):
        value = f"{value.total_seconds():g} s"
    return ConfigProblem(
        path=".".join(path),
        value=MISSING if missing else HIDDEN if unknown else value,
        message=message,
        source=layers.source_of(path, missing=missing),
    )


def _unknown_profiles(data: Mapping[str, Any], layers: _Layers) -> list[ConfigProblem]:
    """Device owners and mirror profiles that name no configured profile."""
    profiles = data.get("profiles")
    known = {str(k) for k in profiles} if isinstance(profiles, Mapping) else set()
    named: list[tuple[DataPath, object]] = []
    for section, field in (("devices", "owner"), ("mirrors", "profiles")):
        entries = data.get(section)
        for name, entry in entries.items() if isinstance(entries, Mapping) else ():
            value = entry.get(field) if isinstance(entry, Mapping) else None
            if isinstance(value, list):
                named += [((section, str(name), field, str(i)), v) for i, v in enumerate(value)]
            elif value is not None:
                named.append(((section, str(name), field), value))
    return [
        ConfigProblem(
            path=".".join(path),
            value=value,
            message=f"unknown profile {value!r}",
            source=layers.source_of(path, missing=False),
        )
        for path, value in named
        if isinstance(value, str) and value not in known
    ]


def _plain_message(detail: ErrorDetails) -> str:
    """pydantic's message for ``detail`` in plain words, without validator jargon."""
    template = _MESSAGES.get(detail["type"])
    if template is not None:
        try:
            return template.format(**detail.get("ctx", {}))
        except (KeyError, IndexError):
            pass
    text = detail["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return text.replace("Input should be", "must be").replace("input should be", "must be")


def _unknown_key_message(path: DataPath) -> str:
    """ "unknown key", with the nearest known key at that place when one is close."""
    import difflib  # noqa: PLC0415 - only a config with an unknown key needs it

    known = _known_keys(path[:-1])
    guess = difflib.get_close_matches(path[-1], known, n=1, cutoff=0.6) if path else []
    hint = f"; did you mean {guess[0]!r}?" if guess else ""
    return f"unknown key{hint} (its value is not shown)"


def _known_keys(parent: DataPath) -> list[str]:
    """The keys a section accepts at ``parent`` (empty when it takes any key)."""
    node: object = NeedlecareConfig
    for part in parent:
        model = _model_in(node)
        if model is not None:
            field = model.model_fields.get(part)
            if field is None:
                return []
            node = field.annotation
            continue
        args = typing.get_args(_unwrap(node))
        if typing.get_origin(_unwrap(node)) is not dict or len(args) != 2:
            return []
        node = args[1]  # a mapping's values, e.g. profiles.<name>
    model = _model_in(node)
    return list(model.model_fields) if model is not None else []


def _unwrap(annotation: object) -> object:
    """``X`` from ``X | None`` (or ``Optional[X]``); anything else unchanged."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _model_in(annotation: object) -> type[BaseModel] | None:
    found = _unwrap(annotation)
    if isinstance(found, type) and issubclass(found, BaseModel):
        return found
    return None


def _scrub(path: DataPath, value: object, secrets: frozenset[str]) -> object:
    """``value`` with every secret in it masked, found by location or by content."""
    if isinstance(value, Mapping):
        return {k: _scrub((*path, str(k)), v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub((*path, str(i)), v, secrets) for i, v in enumerate(value)]
    # Above a secret, a scalar is unparsed text that may embed it, e.g. broken JSON.
    near_secret = any(_related(path, secret) for secret in SECRET_PATHS)
    if near_secret or isinstance(value, SecretStr):
        return SECRET_MASK
    if isinstance(value, str):
        # A secret pasted into another value (e.g. "1883 hunter2") is masked in place.
        for secret in secrets:
            if secret:
                value = value.replace(secret, SECRET_MASK)
    return value


def _related(path: DataPath, other: DataPath) -> bool:
    """Whether one path lies on the other's way from the root."""
    shorter = min(len(path), len(other))
    return path[:shorter] == other[:shorter]
