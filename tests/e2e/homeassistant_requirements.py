"""Print the pip requirements of every integration a test Home Assistant loads.

Run with the Home Assistant venv's own interpreter (standard library only; nothing
of Home Assistant is imported, since importing it is what needs the requirements):

    VENV/bin/python homeassistant_requirements.py DOMAIN...

The domains given (the test configuration's integrations) are added to what Home
Assistant always loads (``bootstrap.py``'s integration sets and the components it
imports) and to every platform the MQTT entry sets up; the auth modules' own
``REQUIREMENTS`` (the default TOTP module needs pyotp and PyQRCode) come on top. Each integration's
``manifest.json`` is then read, following ``dependencies``, ``after_dependencies``
and the discovery integrations a manifest names, the way Home Assistant's
requirements manager walks them before setting an integration up. One requirement
per line, sorted; the caller installs them under ``package_constraints.txt``.
"""

import ast
import importlib.util
import json
import re
import sys
from pathlib import Path

_INTEGRATION_SETS = re.compile(r"^[A-Z_]*INTEGRATIONS[A-Z_]*$")
# Sets in bootstrap.py that are only set up when configured or on special installs.
_NOT_LOADED = {
    "DEBUGGER_INTEGRATIONS",
    "DEFAULT_INTEGRATIONS_SUPERVISOR",
    "DISCOVERY_INTEGRATIONS",
    "STAGE_1_INTEGRATIONS",
}
_NOT_LOADED_DOMAINS = {"sentry", "hassio", "cloud", "mqtt_eventstream", "debugpy"}


def _strings(node: ast.AST) -> set[str]:
    return {
        item.value
        for item in ast.walk(node)
        if isinstance(item, ast.Constant) and isinstance(item.value, str)
    }


def bootstrap_domains(package: Path) -> set[str]:
    """What bootstrap.py always sets up, and the components it imports."""
    tree = ast.parse((package / "bootstrap.py").read_text(encoding="utf-8"))
    domains: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            if node.value is not None and any(
                _INTEGRATION_SETS.match(name) and name not in _NOT_LOADED for name in names
            ):
                domains |= _strings(node.value)
        elif isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module == "components":
                domains |= {alias.name for alias in node.names}
            elif node.module and node.module.startswith("components."):
                domains.add(node.module.split(".")[1])
    return domains - _NOT_LOADED_DOMAINS


def discovery_keys(package: Path) -> dict[str, str]:
    """requirements.py's manifest keys that make an integration need another one.

    ``{"zeroconf": "zeroconf", "homekit": "zeroconf", "dhcp": "dhcp", ...}``
    """
    tree = ast.parse((package / "requirements.py").read_text(encoding="utf-8"))
    keys: dict[str, str] = {}
    for node in tree.body:
        if not isinstance(node, ast.Assign | ast.AnnAssign):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if any(
            isinstance(t, ast.Name) and t.id == "DISCOVERY_INTEGRATIONS" for t in targets
        ) and isinstance(node.value, ast.Dict):
            for key, value in zip(node.value.keys, node.value.values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    keys |= dict.fromkeys(_strings(value), key.value)
    return keys


def mqtt_platforms(package: Path) -> set[str]:
    """The entity platforms the MQTT entry sets up (``Platform.X`` in its const module)."""
    const = package / "components" / "mqtt" / "const.py"
    tree = ast.parse(const.read_text(encoding="utf-8"))
    platforms: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "PLATFORMS" for t in node.targets
        ):
            platforms |= {
                item.attr.lower()
                for item in ast.walk(node.value)
                if isinstance(item, ast.Attribute)
                and isinstance(item.value, ast.Name)
                and item.value.id == "Platform"
            }
    return platforms


def requirements(package: Path, roots: set[str]) -> tuple[list[str], set[str]]:
    """(requirements, domains walked) starting from roots."""
    components = package / "components"
    discovery = discovery_keys(package)
    seen: set[str] = set()
    found: set[str] = set()
    todo = sorted(roots)
    while todo:
        domain = todo.pop()
        manifest_path = components / domain / "manifest.json"
        if domain in seen or not manifest_path.exists():
            continue
        seen.add(domain)
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        found.update(manifest.get("requirements", []))
        todo += manifest.get("dependencies", [])
        todo += manifest.get("after_dependencies", [])
        todo += [dep for key, dep in discovery.items() if key in manifest]
    return sorted(found, key=str.lower), seen


def auth_requirements(package: Path) -> set[str]:
    """``REQUIREMENTS`` of the auth providers and MFA modules (totp is set up by default)."""
    found: set[str] = set()
    for module in sorted((package / "auth").glob("*/*.py")):
        for node in ast.parse(module.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "REQUIREMENTS" for t in node.targets
            ):
                found |= _strings(node.value)
    return found


def main(argv: list[str]) -> int:
    # Only its location: Home Assistant's own venv runs this file, and the package's
    # __init__ imports nothing (spec lookup, so that the project's mypy needs no stub).
    spec = importlib.util.find_spec("homeassistant")
    if spec is None or spec.origin is None:
        print("run this with the Home Assistant venv's python", file=sys.stderr)
        return 1
    package = Path(spec.origin).parent
    roots = bootstrap_domains(package) | mqtt_platforms(package) | set(argv[1:])
    found, _ = requirements(package, roots)
    print("\n".join(sorted({*found, *auth_requirements(package)}, key=str.lower)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
