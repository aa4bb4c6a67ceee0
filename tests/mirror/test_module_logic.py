"""MMM-Needlecare's shared logic (prompts.js) under Node 24's own test runner."""

import subprocess
from pathlib import Path

from mirror.harness import Install

NODE_TESTS = Path(__file__).resolve().parent / "node"


def test_node_unit_tests_pass(mirror_install: Install) -> None:
    """`node --test` on tests/mirror/node/*.test.js, with the Node MagicMirror runs on."""
    files = sorted(str(path) for path in NODE_TESTS.glob("*.test.js"))
    assert files, "no Node tests found"
    result = subprocess.run(
        [str(mirror_install.node), "--test", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 0 == result.returncode, result.stdout + result.stderr
