"""Loading the gettext catalogs: the wheel's compiled ``.mo``, else the ``.po`` source.

An installed wheel or container carries ``.mo`` files compiled at build time
(:mod:`needlecare.i18n.build`). An editable install runs from the source tree,
which holds only the ``.po`` sources: those are compiled in memory on first use,
so a translation edit shows up on the next start without a build step.
"""

import gettext
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Final

from needlecare.i18n.languages import DEFAULT_LANGUAGE, SUPPORTED_LANGUAGES

DOMAIN: Final = "needlecare"
LOCALE_DIR: Final = Path(__file__).resolve().parent / "locale"


def po_path(language: str) -> Path:
    """The ``.po`` source of ``language``'s catalog."""
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def catalog(language: str) -> gettext.NullTranslations:
    """The translations of ``language``; English, the source language, needs none."""
    if language not in SUPPORTED_LANGUAGES:
        msg = f"unsupported language {language!r}"
        raise ValueError(msg)
    if language == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    po = po_path(language)
    mo = po.with_suffix(".mo")
    if mo.is_file() and (not po.is_file() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as compiled:
            return gettext.GNUTranslations(compiled)
    return gettext.GNUTranslations(BytesIO(compile_po(po)))


def compile_po(po: Path) -> bytes:
    """The ``.mo`` bytes of one ``.po`` file; fuzzy entries are left out, as msgfmt does."""
    # Only an editable install gets here, once per language in use: not at every import.
    from babel.messages.mofile import write_mo  # noqa: PLC0415
    from babel.messages.pofile import read_po  # noqa: PLC0415

    with po.open("rb") as source:
        parsed = read_po(source, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, parsed, use_fuzzy=False)
    return compiled.getvalue()
