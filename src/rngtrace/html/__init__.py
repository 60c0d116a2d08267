"""Reports as pages: one self-contained HTML file for a log, a diff, a comparison of
ranks or a check, and the fragments a Jupyter notebook shows.

:func:`to_html` returns the page (its style and script inline, nothing fetched: it opens
from ``file://`` in any current browser); :func:`save` writes it; :func:`notebook_html`
is what ``_repr_html_`` shows. Every string from a log is escaped, and the page's
Content-Security-Policy lets only its own script run: a hostile log shows as text.
See docs/html.md. The pieces: :mod:`.page` (the frame), :mod:`.table` (draws, compact),
:mod:`.tree` (the module tree), :mod:`.logpage`, :mod:`.diffpage`, :mod:`.otherpages`,
:mod:`.notebook`; the style and script are ``static/report.css`` and ``report.js``.

>>> import rngtrace
>>> page = rngtrace.to_html(rngtrace.Log(), label="empty")
>>> page.startswith("<!DOCTYPE html>"), "rngtrace show: empty" in page
(True, True)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..checking import CheckReport
from ..diffing import Diff, ResumeDiff
from ..errors import RngtraceError
from ..log import Log
from ..logfile.files import check_target, write_replacing
from ..ranks import RankReport
from .notebook import notebook_html
from .page import FIRST_LINE

__all__ = ["notebook_html", "save", "to_html"]


def to_html(obj: Log | Diff | ResumeDiff | RankReport | CheckReport, *,
            label: str = "log", logs: Sequence[Log] = (), picture: bool = True) -> str:
    """The page of a log, a diff, a comparison of ranks or a check, as HTML text.

    Args:
        obj: what to show (a ``Diff`` shows its two logs, which it holds).
        label: what to call a log (its file name).
        logs: for a ``RankReport`` or ``CheckReport``, the logs it was made from, in the
            same order (one per rank, by rank, for ranks): their module trees are added.
        picture: add the picture (SVG; needs Graphviz's ``dot`` program, and the page
            says so when it is missing).
    """
    if isinstance(obj, Log):
        from .logpage import log_page

        return log_page(obj, label, with_picture=picture)
    if isinstance(obj, (Diff, ResumeDiff)):
        from .diffpage import diff_page

        return diff_page(obj, with_picture=picture)
    if isinstance(obj, RankReport):
        from .otherpages import ranks_page

        return ranks_page(obj, logs, with_picture=picture)
    if isinstance(obj, CheckReport):
        from .otherpages import check_page

        return check_page(obj, logs)
    raise RngtraceError(f"to_html() takes a Log, Diff, RankReport or CheckReport, not "
                        f"{type(obj).__name__}")


def _is_page(head: bytes) -> bool:
    return head.startswith(FIRST_LINE.encode())


def save(obj: Any, path: str | os.PathLike[str], **options: Any) -> str:
    """Write the page of ``obj`` (see :func:`to_html` for ``options``) to ``path``;
    returns the path. Only a page rngtrace wrote, or an empty file, is replaced: a log,
    a script or another tool's HTML is refused with :class:`~rngtrace.RngtraceError`
    and left as it was. The file appears whole (written beside it, then renamed)."""
    path = os.fspath(path)
    check_target(path, "the page", _is_page, kind="a page written by rngtrace")
    text = to_html(obj, **options)
    try:
        write_replacing(path, text.encode("utf-8"))
    except OSError as e:
        raise RngtraceError(f"cannot write {path}: {e.strerror or e}") from None
    return path
