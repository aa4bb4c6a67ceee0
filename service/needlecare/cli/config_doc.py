"""The configuration reference, generated from the pydantic models.

``needlecare config-reference`` prints it; docs/configuration.md embeds the output
and a test keeps the two identical, so the reference cannot drift from the code.
"""

import json
import types
from datetime import time, timedelta
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from needlecare.cli.protocol_doc import duration
from needlecare.config import NeedlecareConfig
from needlecare.config.models import ENV_NESTED_DELIMITER, ENV_PREFIX

# Sections whose values are keyed by an id of the user's choice.
_KEYED = {"profiles": "<profile>", "devices": "<device>", "mirrors": "<mirror>"}
# Documented in docs/care-protocol.md, with its own generated tables.
_ELSEWHERE = {"protocol": "see [the care protocol](care-protocol.md)"}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside Optional[...] or dict[str, Model], if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


_NAMES = {
    "timedelta": "duration",
    "time": "time of day",
    "Path": "path",
    "Channel": "channel",
    "SecretStr": "secret",
    "NoneType": "null",
}


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        return _type_name(args[0])
    if origin is Literal:
        return "one of " + ", ".join(f"`{arg}`" for arg in args)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in args)
    if origin is not None:
        inner = ", ".join(_type_name(arg) for arg in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    name = getattr(annotation, "__name__", str(annotation))
    return _NAMES.get(name, name)


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return _shown(field.default_factory())  # type: ignore[call-arg]
    if field.default is PydanticUndefined:
        return "required"
    return _shown(field.default)


def _shown(value: object) -> str:
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, timedelta):
        return duration(value)
    if isinstance(value, time):
        return f"`{value:%H:%M}`"
    if isinstance(value, list):
        value = [getattr(item, "value", item) for item in value]
    return f"`{json.dumps(value, default=str)}`"


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        if not prefix and name in _ELSEWHERE:
            rows.append(f"| `{path}` | section | - | {_ELSEWHERE[name]} |")
            continue
        inner = _model_in(field.annotation)
        if inner is not None:
            key = _KEYED.get(path)
            rows += _rows(inner, f"{path}.{key}" if key else path)
            continue
        description = (field.description or "").replace("|", "\\|")
        rows.append(
            f"| `{path}` | {_type_name(field.annotation)} | {_default(field)} | {description} |"
        )
    return rows


def _env_name(path: str) -> str:
    parts = [part.upper() for part in path.split(".") if not part.startswith("<")]
    return ENV_PREFIX + ENV_NESTED_DELIMITER.join(parts)


def config_reference() -> str:
    """Every configuration key as a Markdown table, in file order."""
    lines = [
        "| key | type | default | meaning |",
        "|---|---|---|---|",
        *_rows(NeedlecareConfig, ""),
        "",
        "Every key can also be set from the environment: the key path in upper case,",
        f"sections joined by `{ENV_NESTED_DELIMITER}`, prefixed `{ENV_PREFIX}` — for example",
        f"`{_env_name('mqtt.port')}`, `{_env_name('homeassistant.token')}` or",
        "`NEEDLECARE_PROFILES__ALICE__TIMEZONE`.",
    ]
    return "\n".join(lines) + "\n"
