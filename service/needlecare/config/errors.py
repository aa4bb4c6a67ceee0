"""Configuration problems, and how they are shown to the person fixing them."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

SECRET_MASK: Final = "**********"  # noqa: S105 - the mask shown instead of a secret
FILE_PROBLEM_PATH: Final = "<file>"


class _Missing:
    """Stands in for the value of a required key that was not given."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Final = _Missing()


class _Hidden:
    """Stands in for the value under an unknown key, which is never shown.

    A misspelled secret (``pasword:``) is still a secret: nothing knows to mask it.
    """

    def __repr__(self) -> str:
        return "<not shown>"


HIDDEN: Final = _Hidden()


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with the configuration, located for a human.

    ``path`` is dotted (``mqtt.port``, ``devices.pen1.owner``) or ``<file>`` when the
    file itself cannot be read or parsed. ``value`` is the offending input, with
    secrets masked. ``source`` says which layer supplied it: ``file PATH``,
    ``environment VARIABLE`` or ``default``.
    """

    path: str
    value: object
    message: str
    source: str


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` lists every reason found."""

    def __init__(self, problems: Sequence[ConfigProblem], *, file: Path | None = None) -> None:
        self.problems = list(problems)
        self.file = file
        super().__init__(_header(file, len(self.problems)))


def format_problems(error: ConfigError) -> str:
    """Render ``error`` as text: a header, then path, value, source and message per problem."""
    lines = [_header(error.file, len(error.problems))]
    for problem in error.problems:
        if problem.value is HIDDEN:
            lines.append(f"  {problem.path} ({problem.source})")
        else:
            lines.append(f"  {problem.path}: {problem.value!r} ({problem.source})")
        lines.append(f"    {problem.message}")
    return "\n".join(lines)


def _header(file: Path | None, count: int) -> str:
    subject = str(file) if file is not None else "configuration"
    noun = "problem" if count == 1 else "problems"
    return f"{subject}: {count} {noun}"
