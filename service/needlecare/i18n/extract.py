"""Message extraction: ``python -m needlecare.i18n.extract`` refreshes the catalogs.

Reads every message marked in the package's Python code (``gettext``, ``ngettext``,
``pgettext``, ``npgettext``, ``N_`` and ``NP_`` calls, as Babel's extractor finds them),
writes the template ``locale/needlecare.pot`` and merges it into each language's
``.po``: new messages arrive untranslated, changed ones marked fuzzy, gone ones
kept as obsolete; the catalog tests fail until a translator has finished them.
``--check`` only reports whether the template is current (exit 1 if not).
"""

import sys
from collections.abc import Iterator
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Final

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

from needlecare.i18n.catalogs import DOMAIN, LOCALE_DIR, po_path
from needlecare.i18n.languages import DEFAULT_LANGUAGE, SUPPORTED_LANGUAGES

HERE: Final = Path(__file__).resolve().parent
PACKAGE: Final = HERE.parent
TEMPLATE: Final = LOCALE_DIR / f"{DOMAIN}.pot"
KEYWORDS: Final = {**DEFAULT_KEYWORDS, "NP_": ((1, "c"), 2)}
# A fixed date keeps the files byte-stable between runs; git has the real history.
_STAMP: Final = datetime(2026, 1, 1).astimezone()
_WIDTH: Final = 88
_HEADER: Final = (
    "# {language} of Needlecare's messages: see docs/i18n.md (glossary, how to translate).\n"
    "# This file is distributed under the same license as the Needlecare project.\n#"
)
_TEAMS: Final = {"de": "German", "fr": "French", "es": "Spanish", "nl": "Dutch"}


def _messages() -> Iterator[tuple[str, int, str | tuple[str, ...], list[str], str | None]]:
    with (HERE / "babel.cfg").open(encoding="utf-8") as mapping:
        method_map, options_map = parse_mapping_cfg(mapping)  # type: ignore[no-untyped-call]
    yield from extract_from_dir(
        PACKAGE,
        method_map,
        options_map,
        keywords=KEYWORDS,
        comment_tags=("Translators:",),
        strip_comment_tags=True,
    )


def template() -> Catalog:
    """Every marked message of the package, with where it is used."""
    pot = Catalog(
        project="Needlecare",
        version="1",
        header_comment=_HEADER.format(language="Template"),
        domain=DOMAIN,
        creation_date=_STAMP,
        revision_date=_STAMP,
        copyright_holder="Needlecare contributors",
        msgid_bugs_address="",
        fuzzy=False,
    )
    for filename, line, message, comments, context in _messages():
        where = f"needlecare/{Path(filename).as_posix()}"
        pot.add(message, None, [(where, line)], auto_comments=comments, context=context)
    return pot


MessageKey = tuple[str | None, str | tuple[str, ...]]


def keys(catalog: Catalog) -> set[MessageKey]:
    """(context, id) of every message: what a template must agree on with the code."""
    return {
        (message.context, message.id if isinstance(message.id, str) else tuple(message.id))
        for message in catalog
        if message.id
    }


def committed_template() -> Catalog:
    """The template as committed (``locale/needlecare.pot``)."""
    with TEMPLATE.open("rb") as source:
        return read_po(source, domain=DOMAIN)


def _serialised(catalog: Catalog, **options: bool) -> bytes:
    out = BytesIO()
    # No line numbers: editing code elsewhere in a file must not change the catalogs.
    write_po(out, catalog, width=_WIDTH, sort_output=False, include_lineno=False, **options)
    return out.getvalue()


def update() -> None:
    """Write the template and merge it into every language's catalog."""
    pot = template()
    TEMPLATE.write_bytes(_serialised(pot))
    for language in SUPPORTED_LANGUAGES:
        if language == DEFAULT_LANGUAGE:
            continue
        path = po_path(language)
        if path.is_file():
            with path.open("rb") as source:
                po = read_po(source, locale=language, domain=DOMAIN)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            po = Catalog(locale=language, domain=DOMAIN, project="Needlecare", fuzzy=False)
        po.update(pot, update_header_comment=False)
        po.header_comment = _HEADER.format(language=f"{_TEAMS.get(language, language)} translation")
        po.version = "1"
        po.msgid_bugs_address = ""
        po.last_translator = "Needlecare contributors"
        po.language_team = _TEAMS.get(language, language)
        po.revision_date = _STAMP
        po.creation_date = _STAMP
        path.write_bytes(_serialised(po, ignore_obsolete=True))


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        current = keys(template()) == keys(committed_template())
        print("template current" if current else "template outdated: run the extraction")
        return 0 if current else 1
    update()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
