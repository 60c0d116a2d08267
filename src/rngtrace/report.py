"""The text of a :class:`~rngtrace.diff.Diff` report (filled in by the diff work)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .diff import Diff


def render(d: Diff) -> str:
    if d.identical:
        return "rngtrace diff: identical"
    return "\n".join(c.summary for c in d.causes) or "rngtrace diff: the streams differ"
