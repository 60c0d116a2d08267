"""How rngtrace words counts and module paths: one helper each, for every report.

>>> plural(1, "draw"), plural(1200, "draw"), plural(2, "parameter or buffer",
...                                                 "parameters or buffers")
('1 draw', '1,200 draws', '2 parameters or buffers')
>>> noun(1, "rank"), noun(3, "rank")
('rank', 'ranks')
>>> module_label("blocks.0"), module_label(""), module_label(None)
('blocks.0', '(root)', '-')
"""

from __future__ import annotations

__all__ = ["module_label", "noun", "plural"]


def noun(n: int, word: str, many: str | None = None) -> str:
    """``word`` as ``n`` of it are called: ``word`` for one, ``many`` (default ``word``
    + ``"s"``) for any other number, zero included."""
    return word if n == 1 else (many or word + "s")


def plural(n: int, word: str, many: str | None = None) -> str:
    """``n`` and ``word`` (see :func:`noun`), the number with thousands separators."""
    return f"{n:,} {noun(n, word, many)}"


def module_label(path: str | None) -> str:
    """A module path for display: ``"(root)"`` for the model itself (``""``), ``"-"``
    outside modules (None)."""
    return "-" if path is None else (path or "(root)")
