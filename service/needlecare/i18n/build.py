"""Build step: compile every catalog's ``.po`` into the ``.mo`` a wheel carries.

Named in pyproject.toml as setuptools' ``build_py`` command, so ``pip install .``,
``pip wheel`` and the container build put compiled catalogs next to their sources.
Loaded by setuptools from its file alone, before the package is importable: it
uses only setuptools and Babel (a build requirement), not the rest of Needlecare.
"""

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from setuptools.command.build_py import build_py  # type: ignore[import-untyped]

CATALOGS = "needlecare/i18n/locale"


class BuildWithCatalogs(build_py):  # type: ignore[misc]  # setuptools is untyped here
    """``build_py`` that also compiles the gettext catalogs into the build tree."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install compiles the sources in memory at first use
        for po in sorted(Path(self.build_lib, CATALOGS).glob("*/LC_MESSAGES/*.po")):
            with po.open("rb") as source:
                parsed = read_po(source, domain=po.stem)
            with po.with_suffix(".mo").open("wb") as target:
                write_mo(target, parsed, use_fuzzy=False)
