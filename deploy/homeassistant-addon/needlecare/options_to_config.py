"""Turn the Home Assistant add-on's options into a Needlecare YAML configuration.

run.sh calls it at every start of the add-on::

    python3 options_to_config.py /data/options.json /data/needlecare.yaml \\
        --extra /config/needlecare.yaml

The Supervisor validates the options against the ``schema`` of config.yaml first; this
script only renames and reshapes them. The add-on schema may nest only one level (a
list of flat items, or a section of scalars), so a list of profiles, devices or mirrors
with an ``id`` each becomes a mapping keyed by that id, and a profile's
``quiet_hours_start`` becomes ``quiet_hours.start``. ``OPTION_PATHS`` says where every
option goes; the deploy tests check that each target is a field of the pydantic models.

What the options cannot express (voice announcements, the care protocol, ...) can be
written in the optional ``--extra`` YAML file (the add-on's ``/config`` folder); the
options are laid over it, key by key.

Standard library and PyYAML only: the add-on image has both (PyYAML comes with
needlecare), and the tests import this file without installing anything.
"""

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import yaml

ITEMS: Final = "[]"  # in an option path: any item of a list of items
ID: Final = "id"  # the option of each item that names it
KEY: Final = "{id}"  # in a config path: the item's id, a mapping key

# The Supervisor's proxy to Home Assistant's REST and websocket APIs; the token is the
# add-on's SUPERVISOR_TOKEN, which run.sh passes as NEEDLECARE_HOMEASSISTANT__TOKEN.
SUPERVISOR_CORE_URL: Final = "http://supervisor/core"
# /data is the add-on's private, persistent (and backed-up) folder.
STORE_PATH: Final = "/data/needlecare.db"

Path_ = tuple[str, ...]

# option path -> config path. In a list of ITEMS, the "id" is the key of the mapping.
OPTION_PATHS: Final[dict[Path_, Path_]] = {
    ("log_level",): ("logging", "level"),
    ("mqtt", "host"): ("mqtt", "host"),
    ("mqtt", "port"): ("mqtt", "port"),
    ("mqtt", "username"): ("mqtt", "username"),
    ("mqtt", "password"): ("mqtt", "password"),
    ("mqtt", "base_topic"): ("mqtt", "base_topic"),
    ("mqtt", "discovery_prefix"): ("mqtt", "discovery_prefix"),
    ("mqtt", "client_id"): ("mqtt", "client_id"),
    ("homeassistant", "url"): ("homeassistant", "url"),
    ("homeassistant", "token"): ("homeassistant", "token"),
    ("homeassistant", "verify_ssl"): ("homeassistant", "verify_ssl"),
    ("homeassistant", "snooze_minutes"): ("homeassistant", "snooze_minutes"),
    ("profiles", ITEMS, ID): ("profiles", KEY),
    ("profiles", ITEMS, "timezone"): ("profiles", KEY, "timezone"),
    ("profiles", ITEMS, "display_name"): ("profiles", KEY, "display_name"),
    ("profiles", ITEMS, "notify_service"): ("profiles", KEY, "notify_service"),
    ("profiles", ITEMS, "person"): ("profiles", KEY, "person"),
    ("profiles", ITEMS, "quiet_hours_start"): ("profiles", KEY, "quiet_hours", "start"),
    ("profiles", ITEMS, "quiet_hours_end"): ("profiles", KEY, "quiet_hours", "end"),
    ("devices", ITEMS, ID): ("devices", KEY),
    ("devices", ITEMS, "owner"): ("devices", KEY, "owner"),
    ("devices", ITEMS, "name"): ("devices", KEY, "name"),
    ("devices", ITEMS, "max_needle_depth_mm"): ("devices", KEY, "max_needle_depth_mm"),
    ("mirrors", ITEMS, ID): ("mirrors", KEY),
    ("mirrors", ITEMS, "profiles"): ("mirrors", KEY, "profiles"),
    ("sessions", "timeout_minutes"): ("sessions", "timeout"),
    ("reminders", "grace_hours"): ("reminders", "grace"),
}

# Options given in friendlier units than the config's; the config reads seconds.
CONVERSIONS: Final[dict[Path_, Callable[[Any], Any]]] = {
    ("sessions", "timeout_minutes"): lambda minutes: int(minutes) * 60,
    ("reminders", "grace_hours"): lambda hours: int(hours) * 3600,
}

# Set whatever the options say: where the add-on keeps its state.
FIXED: Final[dict[Path_, Any]] = {("store", "path"): STORE_PATH}
# Set unless the options (or the extra file) say otherwise.
DEFAULTS: Final[dict[Path_, Any]] = {("homeassistant", "url"): SUPERVISOR_CORE_URL}


class OptionsError(ValueError):
    """The options cannot be turned into a configuration."""


def options_to_config(
    options: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The Needlecare configuration for the add-on's options, laid over ``extra``."""
    generated: dict[str, Any] = {}
    for path, value in DEFAULTS.items():
        _set(generated, path, value)
    for option_path, item_id, value in _leaves(options, (), None):
        target = OPTION_PATHS.get(option_path)
        if target is None:
            raise OptionsError(f"unknown option {'.'.join(option_path)}")
        if target[-1] == KEY:
            # The item's id: its entry exists even when nothing else of it is set.
            _node(generated, target[:-1]).setdefault(str(value), {})
            continue
        convert = CONVERSIONS.get(option_path)
        concrete = tuple(str(item_id) if part == KEY else part for part in target)
        _set(generated, concrete, convert(value) if convert else value)
    for path, value in FIXED.items():
        _set(generated, path, value)
    return _merge(dict(extra or {}), generated)


def _leaves(
    node: Mapping[str, Any], prefix: Path_, item_id: str | None
) -> Iterator[tuple[Path_, str | None, Any]]:
    """(option path, id of the list item it is in, value) for every option that is set."""
    for key, value in node.items():
        path = (*prefix, str(key))
        if _unset(value):
            continue
        if isinstance(value, Mapping):
            yield from _leaves(value, path, item_id)
        elif isinstance(value, list) and any(isinstance(item, Mapping) for item in value):
            for item in value:
                if not isinstance(item, Mapping) or _unset(item.get(ID)):
                    raise OptionsError(f"every item of {'.'.join(path)} needs an id")
                yield from _leaves(item, (*path, ITEMS), str(item[ID]))
        else:
            yield path, item_id, value


def _unset(value: object) -> bool:
    # The Supervisor leaves unset optional options out; a blank text field or an empty
    # list means the same (an empty mirror profile list is the default: every profile).
    if isinstance(value, str):
        return not value.strip()
    return value is None or value == []


def _node(data: dict[str, Any], path: Path_) -> dict[str, Any]:
    node = data
    for part in path:
        node = node.setdefault(part, {})
    return node


def _set(data: dict[str, Any], path: Path_, value: Any) -> None:
    _node(data, path[:-1])[path[-1]] = value


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` laid over ``base`` key by key (the way load_config layers the env)."""
    merged = dict(base)
    for key, value in override.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = _merge(below, value)
        else:
            merged[key] = value
    return merged


def _read_extra(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise OptionsError(f"{path}: the top level must be a mapping of sections")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("options", type=Path, help="the add-on's options.json")
    parser.add_argument("out", type=Path, help="the YAML configuration to write")
    parser.add_argument(
        "--extra", type=Path, default=None, help="optional YAML file the options override"
    )
    args = parser.parse_args(argv)
    try:
        options = json.loads(args.options.read_text(encoding="utf-8"))
        if not isinstance(options, dict):
            raise OptionsError(f"{args.options}: expected a JSON object")
        config = options_to_config(options, _read_extra(args.extra))
    except (OSError, ValueError, yaml.YAMLError) as error:
        # OptionsError and json.JSONDecodeError are ValueErrors. No values printed:
        # the options may hold a password.
        print(f"options_to_config: {error}", file=sys.stderr)
        return 1
    text = "# Written by options_to_config.py from the add-on options; edits are lost.\n"
    text += yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    # The file may hold the broker password: readable by the add-on's user only.
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    sections = ", ".join(sorted(config))
    print(f"options_to_config: wrote {args.out} ({sections})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
