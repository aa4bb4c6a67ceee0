"""Matplotlib figures as SVG that can sit inline in an HTML page, offline.

Figures are built with the object API (``Figure``), never ``pyplot``: no GUI
backend is chosen and no global figure registry is touched.
"""

import io
import re
from contextlib import AbstractContextManager
from html import escape
from typing import Final

import matplotlib as mpl
from matplotlib.figure import Figure

_PROLOGUE: Final = re.compile(r"\A.*?(?=<svg\b)", re.DOTALL)
_METADATA: Final = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
# Namespace declarations are implied for SVG inside HTML; dropping them leaves the
# page free of any http(s) address.
_NAMESPACES: Final = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
_SIZE: Final = re.compile(r'\s+(?:width|height)="[^"]*"')
_ROOT: Final = re.compile(r"<svg\b[^>]*>")
_IDS: Final = re.compile(r'(\bid="|href="#|url\(#)([^")]+)')


def styled(name: str) -> AbstractContextManager[None]:
    """The report's matplotlib settings, for the time figure ``name`` is built and saved.

    ``name`` salts the ids matplotlib derives from hashes, so they are stable.
    """
    return mpl.rc_context(
        {
            "font.size": 10,
            "axes.titlesize": 11,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "svg.fonttype": "path",
            "svg.hashsalt": name,
        }
    )


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches whose layout keeps labels inside."""
    return Figure(figsize=(width, height), layout="constrained")


def inline_svg(figure: Figure, name: str, label: str) -> str:
    """``figure`` as an ``<svg>`` element that scales to the page width.

    Call it inside :func:`styled`. Every id gets the prefix ``name``, so plots on
    one page never share an id (each carries its own glyph definitions); ``label``
    is the accessible name (plain text).
    """
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = _METADATA.sub("", _PROLOGUE.sub("", buffer.getvalue()))
    text = _IDS.sub(lambda match: f"{match[1]}{name}-{match[2]}", text)
    root = _ROOT.search(text)
    if root is None:
        msg = "matplotlib wrote no <svg> element"
        raise RuntimeError(msg)
    tag = _SIZE.sub("", _NAMESPACES.sub("", root[0]))
    tag = tag.replace("<svg", f'<svg role="img" aria-label="{escape(label)}" class="plot"', 1)
    return text[: root.start()] + tag + text[root.end() :]
