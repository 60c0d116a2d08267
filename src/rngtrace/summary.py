"""The text of a log: a headline of totals and a per-module table, then the events.

``print(log)`` and ``log.summary()`` print :func:`summary`; ``rngtrace show`` fits the
same :func:`summary_rows` to the terminal. The text of a log lives here, beside the
files and before the reports of diffs and ranks, not in the data model.

>>> import torch, rngtrace
>>> with rngtrace.record() as log:
...     layer = torch.nn.Linear(3, 2)
>>> print(summary(log))  # doctest: +NORMALIZE_WHITESPACE
rngtrace log: 2 draws, 8 values, 1 generator, 0 events
<BLANKLINE>
module  type    draws  values  phases  generators
(root)  Linear      2       8  init:2  default:cpu
"""

from __future__ import annotations

from .log import Log
from .text import module_label, plural

__all__ = ["headline", "summary", "summary_rows"]


def headline(log: Log) -> str:
    """One line of totals: draws, values, generators, events."""
    gens, events = plural(len(log.generators), "generator"), plural(len(log.events), "event")
    noun = "record" if log.level == "module" else "draw"
    if log.level == "module":
        # A light log has a record per stretch of a module call's consumption (usually
        # one per call that moved a generator); how many values it drew is only known
        # on CUDA (the Philox offset advance).
        what = f"module level, {plural(len(log.draws), 'record')}"
    else:
        what = f"{plural(len(log.draws), 'draw')}, {plural(log.values, 'value')}"
    if not log.draws and log.file is not None and log.file.written:
        # a window streamed to a file keeps no draws (or events) in memory: say what
        # it wrote, and where
        what, events = f"{plural(log.file.written, noun)} written", "see " + log.file.path
    return (f"rngtrace log: {what}, {gens}, {events}"
            + ("" if log.complete else "  [INCOMPLETE]"))


def summary_rows(log: Log) -> list[tuple[str, str, str, str, str, str]]:
    """The per-module table as text cells, header first (for :func:`summary` and
    ``rngtrace show``, which fits it to the terminal).

    Modules are listed in the order they first drew; ``(root)`` is the model itself
    and ``-`` the draws made outside any module. A light log counts calls, and the
    offset a CUDA generator advanced by (``-`` on CPU), instead of draws and values.
    """
    models = {d.model for d in log.draws if d.model is not None}
    light = log.level == "module"
    rows = [("module", "type", "calls" if light else "draws",
             "offset" if light else "values", "phases", "generators")]
    for s in log.module_stats():
        name = module_label(s.module)
        if len(models) > 1 and s.model is not None:
            name = f"{s.model}:{name}"
        rows.append((
            name,
            s.module_type or "",
            f"{s.draws:,}",
            "-" if light and not s.values else f"{s.values:,}",
            " ".join(f"{p}:{n}" for p, n in s.phases.items()),
            " ".join(sorted(s.generators)),
        ))
    return rows


def summary(log: Log) -> str:
    """The headline, the per-module table (:func:`summary_rows`) in aligned columns, then
    one line per event."""
    lines = [headline(log)]
    if log.draws:
        rows = summary_rows(log)
        lines.append("")
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        right = {2, 3}
        for r in rows:
            cells = [c.rjust(w) if i in right else c.ljust(w)
                     for i, (c, w) in enumerate(zip(r, widths, strict=True))]
            lines.append("  ".join(cells).rstrip())
    lines += [e.line() for e in log.events]
    return "\n".join(lines)
