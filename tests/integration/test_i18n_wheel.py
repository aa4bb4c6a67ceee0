"""The wheel carries compiled catalogs: built as the container builds it, from a clean copy."""

import gettext
import io
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from needlecare.i18n import SUPPORTED_LANGUAGES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CATALOG = "needlecare/i18n/locale/{}/LC_MESSAGES/needlecare.{}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """``pip wheel`` of what the container copies (pyproject, README, service, integrations)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "*.mo")
    for name in ("service", "integrations"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), "."],
        cwd=source,
        check=True,
        timeout=600,
    )
    [built] = out.glob("needlecare-*.whl")
    return zipfile.ZipFile(built)


@pytest.mark.parametrize("language", [lang for lang in SUPPORTED_LANGUAGES if lang != "en"])
def test_wheel_has_each_compiled_catalog_and_its_source(
    wheel: zipfile.ZipFile, language: str
) -> None:
    """Each translated language's .mo (and .po) is in the wheel, and the .mo translates."""
    names = set(wheel.namelist())
    assert CATALOG.format(language, "po") in names
    compiled = wheel.read(CATALOG.format(language, "mo"))
    translations = gettext.GNUTranslations(io.BytesIO(compiled))
    assert "Done" != translations.gettext("Done")
    assert translations.gettext("Soothe your skin") not in ("", "Soothe your skin")


def test_source_tree_holds_no_compiled_catalog() -> None:
    """.mo files are build output: the repository keeps only the .po sources."""
    assert [] == sorted((ROOT / "service").rglob("*.mo"))
