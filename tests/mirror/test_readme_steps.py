"""The module's README says what the mirror tests do: same install command, same config
keys, every option documented."""

import json
import re
import subprocess
from pathlib import Path

from mirror.harness import Install, module_config
from needlecare_integrations.broker import MosquittoBroker

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "deploy" / "magicmirror" / "MMM-Needlecare"
README = (MODULE / "README.md").read_text(encoding="utf-8")
SETUP = (ROOT / "tests" / "mirror" / "setup_magicmirror.sh").read_text(encoding="utf-8")


def node_json(install: Install, script: str) -> object:
    result = subprocess.run(
        [str(install.node), "-e", script], capture_output=True, text=True, timeout=30, check=True
    )
    return json.loads(result.stdout)


def test_install_is_the_command_the_setup_script_runs() -> None:
    """`npm install --omit=dev` in the copied module folder, in the README and the tests
    (which copy it into modules/ under a temporary name, renamed into place after)."""
    assert "cd ~/MagicMirror/modules/MMM-Needlecare\nnpm install --omit=dev\n" in README
    assert '(cd "$staging" && npm install --omit=dev >&2)' in SETUP


def test_config_example_has_the_keys_the_tests_use(mirror_install: Install) -> None:
    """The README's config.js entry, evaluated by Node, has the tests' option names and
    the same topic, mirror, people and snooze settings."""
    block = re.search(r"<!-- mirror-config -->\s*```js\n(.*?)```", README, re.DOTALL)
    assert block is not None
    entry = node_json(mirror_install, f"console.log(JSON.stringify([{block.group(1)}][0]))")
    assert isinstance(entry, dict)
    assert ("MMM-Needlecare", "bottom_bar") == (entry["module"], entry["position"])
    tested = module_config(MosquittoBroker(data_dir=ROOT, port=1883))
    assert sorted(tested) == sorted(entry["config"])
    same = ("baseTopic", "mirrorId", "profiles", "snoozeMinutes")
    assert {k: tested[k] for k in same} == {k: entry["config"][k] for k in same}


def test_every_option_is_documented(mirror_install: Install) -> None:
    """Each of the module's defaults has a row in the README's option table."""
    defaults = node_json(
        mirror_install,
        f"console.log(JSON.stringify(require({json.dumps(str(MODULE / 'prompts.js'))}).DEFAULTS))",
    )
    assert isinstance(defaults, dict)
    documented = set(re.findall(r"^\| `(\w+)`(?:, `(\w+)`)?", README, re.MULTILINE))
    names = {name for pair in documented for name in pair if name}
    assert set() == set(defaults) - names
