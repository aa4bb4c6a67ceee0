"""The HTML report in every language, from the same journal as test_report.py."""

import re
from html import unescape
from pathlib import Path

import pytest
from test_report import invoke, seed, tables

from needlecare.i18n import SUPPORTED_LANGUAGES

pytestmark = pytest.mark.integration

HEADINGS = {
    "en": ["Sessions", "Reminders", "Skin checks", "Products applied"],
    "de": ["Behandlungen", "Erinnerungen", "Hautchecks", "Verwendete Produkte"],
    "fr": ["Séances", "Rappels", "Contrôles de la peau", "Produits appliqués"],
    "es": ["Sesiones", "Recordatorios", "Revisiones de la piel", "Productos aplicados"],
    "nl": ["Behandelingen", "Herinneringen", "Huidchecks", "Gebruikte producten"],
}
# English words of the report's own text; user data and machine values are removed first.
ENGLISH = re.compile(
    r"\b(the|and|with|until|yet|report|session|sessions|reminders?|recorded|products|"
    r"applied|window|waiting|answer|redness|recovery|day|threshold|outcome|kind|"
    r"generated|profile|time zone|advice|medical|skin)\b",
    re.IGNORECASE,
)
# Text the report shows as stored: machine values (kinds, statuses, settings), names.
AS_STORED = re.compile(
    r"\b(soothe|serum_window|actives_resume|window_open|overdue|acked|sent|late|missed|"
    r"snoozed|cancelled|pending|completed|aborted|end inferred|home|professional|manual|"
    r"pen1|Alice|Night serum|Hydra serum|hyaluronic acid|glycerin|retinol|squalane|water|"
    r"red and warm|still pink|before any session|itchy|warm|Soothe|Serum window|"
    r"Actives resume|Window open|Overdue|Europe/Berlin|needlecare report|Needlecare|"
    r"Microneedling)\b"
)


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Alice's report in each language, made once (the plots take a moment each)."""
    tmp_path = tmp_path_factory.mktemp("reports")
    seed(tmp_path / "needlecare.db")
    return {language: render(language, tmp_path) for language in SUPPORTED_LANGUAGES}


def render(language: str, tmp_path: Path) -> str:
    store = tmp_path / "needlecare.db"
    config = tmp_path / f"{language}.yaml"
    config.write_text(
        f'store: {{path: "{store}"}}\n'
        f"profiles:\n  alice: {{timezone: Europe/Berlin, display_name: Alice, "
        f"language: {language}}}\n",
        encoding="utf-8",
    )
    out = tmp_path / f"alice-{language}.html"
    result = invoke("-c", str(config), "--profile", "alice", "--out", str(out))
    assert 0 == result.exit_code, result.output
    return out.read_text(encoding="utf-8")


def visible_text(page: str) -> str:
    body = page.split("<body>", 1)[1]
    body = re.sub(r"<svg.*?</svg>", " ", body, flags=re.DOTALL)
    return unescape(re.sub(r"<[^>]+>", " ", body))


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
class TestReportInEveryLanguage:
    def test_html_lang_and_section_headings(self, language: str, pages: dict[str, str]) -> None:
        """<html lang> names the language; the section headings are in it."""
        page = pages[language]
        assert f'<html lang="{language}">' in page
        assert HEADINGS[language] == re.findall(r"<h2>([^<]+)</h2>", page)

    def test_tables_keep_machine_values_and_translate_headers(
        self, language: str, pages: dict[str, str]
    ) -> None:
        """Kinds and counts are the same in every language; only the words change."""
        english_counts, _ = tables(pages["en"], "reminders")
        counts, _ = tables(pages[language], "reminders")
        assert [row[1:] for row in english_counts[1:]] == [row[1:] for row in counts[1:]]
        assert [row[0] for row in english_counts[1:-1]] == [row[0] for row in counts[1:-1]]
        if language != "en":
            assert english_counts[0] != counts[0]

    def test_plots_are_labelled_in_the_language(self, language: str, pages: dict[str, str]) -> None:
        """The three inline plots carry the language's titles (their aria labels)."""
        page = pages[language]
        assert 3 == page.count("<svg ")
        if language == "de":
            assert "Zeitleiste der Behandlungen" in page
            assert "Rötung über die Erholungstage je Behandlung" in page


@pytest.mark.parametrize("language", [lang for lang in SUPPORTED_LANGUAGES if lang != "en"])
def test_no_english_left_in_the_page_text(language: str, pages: dict[str, str]) -> None:
    """Apart from stored values (kinds, names, notes), the page's text is not English."""
    text = AS_STORED.sub(" ", visible_text(pages[language]))
    assert [] == ENGLISH.findall(text)


def test_english_detector_fires_on_the_english_page(pages: dict[str, str]) -> None:
    """The check above can fail: the English page is full of those words."""
    text = AS_STORED.sub(" ", visible_text(pages["en"]))
    assert len(ENGLISH.findall(text)) > 20
