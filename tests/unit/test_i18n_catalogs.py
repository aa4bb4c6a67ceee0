"""The gettext catalogs: complete, current, consistent with their source messages."""

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po
from babel.plural import PluralRule

from needlecare.i18n import SUPPORTED_LANGUAGES, translator
from needlecare.i18n.catalogs import DOMAIN, catalog, compile_po, po_path
from needlecare.i18n.extract import committed_template, keys, template

TRANSLATED = [language for language in SUPPORTED_LANGUAGES if language != "en"]
PLACEHOLDER = re.compile(r"\{([a-z_]*)\}")


def read(language: str) -> Catalog:
    with po_path(language).open("rb") as source:
        return read_po(source, locale=language, domain=DOMAIN)


def entries(language: str) -> list[Message]:
    return [message for message in read(language) if message.id]


def placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


class TestTemplate:
    def test_template_holds_every_message_of_the_code(self) -> None:
        """A fresh extraction finds exactly the committed template's messages."""
        assert keys(template()) == keys(committed_template())

    def test_extraction_finds_the_messages_of_every_room(self) -> None:
        """Steps, voice texts, phone buttons, entity names and the report are all marked."""
        ids = {message_id for _, message_id in keys(committed_template())}
        for expected in (
            "Soothe your skin",
            "Done",
            "Snooze {minutes} min",
            "Last session",
            "Microneedling window ({profile})",
            "Needlecare report: {name}",
            "retinoids",
        ):
            assert expected in ids


@pytest.mark.parametrize("language", TRANSLATED)
class TestCatalog:
    def test_every_message_of_the_template_is_in_the_catalog(self, language: str) -> None:
        """Same (context, id) set as the template: nothing missing, nothing left over."""
        assert keys(committed_template()) == keys(read(language))

    def test_every_message_is_translated(self, language: str) -> None:
        """No empty msgstr, singular or plural."""
        untranslated = [
            message.id
            for message in entries(language)
            if not all(message.string if isinstance(message.string, tuple) else [message.string])
        ]
        assert [] == untranslated

    def test_no_fuzzy_entries(self, language: str) -> None:
        """A fuzzy entry is a guess the build leaves out: none may be committed."""
        assert [] == [message.id for message in entries(language) if message.fuzzy]
        assert not read(language).fuzzy

    def test_placeholders_match_the_source(self, language: str) -> None:
        """Each translation carries exactly the placeholders of its English message."""
        mismatched = []
        for message in entries(language):
            if isinstance(message.id, str):
                pairs = [(message.id, message.string)]
            else:
                singular, plural = message.id
                # Form 0 answers for one; every other form for more.
                pairs = [
                    (singular if index == 0 else plural, text)
                    for index, text in enumerate(message.string)
                ]
            for source, text in pairs:
                if placeholders(source) != placeholders(str(text)):
                    mismatched.append((source, text))
        assert [] == mismatched

    def test_plural_forms_are_complete(self, language: str) -> None:
        """Every plural message has the number of forms the language's rule needs."""
        po = read(language)
        for message in entries(language):
            if message.pluralizable:
                assert po.num_plurals == len(message.string), message.id
                assert all(message.string), message.id

    def test_plural_rule_agrees_with_cldr(self, language: str) -> None:
        """The catalog's Plural-Forms picks form 0 for exactly CLDR's 'one' numbers."""
        rule = PluralRule.parse(read(language).locale.plural_form)
        compiled = catalog(language)
        forms = {n: compiled.plural(n) for n in range(0, 2_000_001, 1_000)}
        forms |= {n: compiled.plural(n) for n in range(30)}
        assert {n: rule(n) == "one" for n in forms} == {n: form == 0 for n, form in forms.items()}

    def test_the_compiled_catalog_translates(self, language: str) -> None:
        """The .po compiles (as the build does) and the loaded catalog answers in it."""
        assert compile_po(po_path(language)).startswith(b"\xde\x12\x04\x95")
        assert "Done" != catalog(language).gettext("Done")


class TestSourceLanguage:
    def test_english_is_the_source(self) -> None:
        """English needs no catalog: messages come back as written."""
        assert "Snooze 30 min" == translator("en").gettext("Snooze {minutes} min", minutes=30)
        assert "3 days" == translator("en").ngettext("{n} day", "{n} days", 3)

    def test_a_catalog_file_per_translated_language(self) -> None:
        """de, fr, es and nl each have their .po under locale/<lang>/LC_MESSAGES."""
        assert all(Path(po_path(language)).is_file() for language in TRANSLATED)
