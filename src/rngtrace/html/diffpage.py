"""The page of a diff (``rngtrace diff A B --html FILE``): the verdict and the causes as
the report words them, the two streams side by side (aligned, the first divergence
marked, each hunk linked to its cause), the text report, both runs' module trees, and
the picture. Built from the public records (:class:`~rngtrace.Diff`, its hunks and
causes, ``Diff.report()``), so the report's own words are the page's."""

from __future__ import annotations

from typing import Any

from ..diffing import Cause, Diff, ResumeDiff
from .escape import esc
from .page import Logs, page, picture, section
from .table import runs

KEEP = 500  # draws of each differing hunk a page keeps when a log is too long to hold
MAX_HUNKS = 20_000  # hunks a page holds (the report's --json has them all)
LEGEND = ('<p class="legend"><span class="equal">equal</span><span class="shifted">shifted'
          '</span><span class="changed">changed</span><span class="removed">removed (A only)'
          '</span><span class="inserted">inserted (B only)</span></p>')


def diff_page(d: Diff | ResumeDiff, *, with_picture: bool = True) -> str:
    """The whole page of a diff."""
    if isinstance(d, ResumeDiff):
        return _resume_page(d)
    la, lb = d.labels
    text = d.report(width=100)
    head = text.splitlines()[0] if text else ""
    parts = [f"<header><h1>rngtrace diff: {esc(la)} and {esc(lb)}</h1></header>",
             f'<div class="verdict {"good" if d.agrees else "bad"}" role="status">'
             f"{esc(head.removeprefix('rngtrace diff: '))}"
             + ("" if d.first_divergence is None else
                ' <a href="#hunk-' + str(_first(d)) + '">first divergence</a>') + "</div>"]
    if d.renamed:
        parts.append(f"<p>Renamed in {esc(lb)} (same draws, same values; {esc(lb)}'s names "
                     f"are shown as {esc(la)}'s below): {esc(d.renamed)}.</p>")
    if d.causes:
        unwrapped = d.report(width=0).splitlines()
        parts.append(section("Causes", "".join(_cause(d, c, n, unwrapped) for n, c in
                                                enumerate(d.causes)), "causes"))
    parts += [f'<p class="note">Note: {esc(n)}</p>' for n in d.notes]
    logs = Logs()
    data: dict[str, Any] = {"kind": "diff", "hunks": [], "first": None}
    if d.a is not None and d.b is not None:
        keep = _keep(d)
        logs.add(d.a, la, keep[0])
        logs.add(d.b, lb, keep[1])
        data.update(_hunks(d))
        parts.append(logs.filters())
        if not d.identical:
            parts.append(section("Streams side by side", _sbs_head(d), "streams"))
    parts.append(section("The text report", f'<pre class="report">{esc(text)}</pre>',
                         "report", folded=not d.identical))
    if d.a is not None and d.b is not None:
        parts.append(section(f"Modules of A: {la}", logs.tree(0), "modules-a", folded=True))
        parts.append(section(f"Modules of B: {lb}", logs.tree(1), "modules-b", folded=True))
        if with_picture:
            modules = max(len(d.a.module_stats()), len(d.b.module_stats()))
            parts.append(section("Picture", picture(d, modules), "picture"))
    return page(f"rngtrace diff: {la} and {lb}", "\n".join(parts), logs.data(**data))


def _first(d: Diff) -> int | None:
    return next((k for k, h in enumerate(d.hunks) if h.kind != "equal"), None)


def _cause(d: Diff, c: Cause, n: int, report: list[str] | None = None) -> str:
    """One cause, as the text report words it (its lines under ``Cause:``, ``Also:``;
    ``report``: the report's lines, unwrapped), then links to where it is first and to
    its hunks."""
    la, lb = d.labels
    head = "Consequence" if c.consequence else "Cause" if c is d.cause else "Also"
    lines = _block(report if report is not None else d.report(width=0).splitlines(), c)
    if lines is None:  # folded in the report (shifting nothing): its line of code
        lines = [f"  at {c.site}" + (f": {c.code}" if c.code else "")] if c.site else []
        lines += [f"  {c.detail}"] if c.detail else []
    links = []
    if c.a_index is not None:
        links.append(f'<a href="#draw-0-{c.a_index}">draw {c.a_index} of {esc(la)}</a>')
    if c.b_index is not None:
        links.append(f'<a href="#draw-1-{c.b_index}">draw {c.b_index} of {esc(lb)}</a>')
    links += [f'<a href="#hunk-{k}">hunk #{k}</a>' for k in c.hunks[:20]]
    first = " first" if c is d.cause else ""
    text = "\n".join(x[2:] if x.startswith("  ") else x for x in lines)
    return (f'<div class="card{first}" id="cause-{n}"><h3>{head}: {esc(c.summary)} '
            f'<span class="tag">#{n}</span></h3>'
            + (f'<pre class="cause">{esc(text)}</pre>' if text else "")
            + (f"<p>go to: {', '.join(links)}</p>" if links else "") + "</div>")


def _block(report: list[str], c: Cause) -> list[str] | None:
    """The indented lines under a cause's own line in the (unwrapped) text report."""
    for i, line in enumerate(report):
        if not line.startswith(" ") and line.endswith(": " + c.summary):
            out = []
            for x in report[i + 1:]:
                if not x.startswith("  "):
                    break
                out.append(x)
            return out
    return None


def _keep(d: Diff) -> tuple[list[int], list[int]]:
    """Draws a page must hold even when a log is too long to hold whole: the first
    of each differing hunk."""
    a: list[int] = []
    b: list[int] = []
    for h in d.hunks:
        if h.kind != "equal":
            a += [x.index for x in h.a_draws[:KEEP]]
            b += [x.index for x in h.b_draws[:KEEP]]
    return a, b


def _hunks(d: Diff) -> dict[str, Any]:
    hunks = [{"k": h.kind, "g": h.generator, "gb": h.b_generator, "ai": h.a_index,
              "as": h.a_stop, "bi": h.b_index, "bs": h.b_stop, "c": h.cause,
              "an": len(h.a_draws), "bn": len(h.b_draws),
              "a": runs(x.index for x in h.a_draws), "b": runs(x.index for x in h.b_draws)}
             for h in d.hunks[:MAX_HUNKS]]
    return {"hunks": hunks, "first": _first(d)}


def _sbs_head(d: Diff) -> str:
    streams = list(dict.fromkeys(h.generator for h in d.hunks[:MAX_HUNKS]))
    options = "".join(f'<option value="{esc(s)}">{esc(s)}</option>' for s in streams)
    more = (f'<p class="note">The first {MAX_HUNKS:,} of {len(d.hunks):,} hunks '
            "(rngtrace diff --json has them all).</p>" if len(d.hunks) > MAX_HUNKS else "")
    return (f'<p><label>stream <select id="stream">{options}</select></label> '
            "Each row pairs a draw of A with the draw of B the alignment matched it "
            f"with; hunks of equal draws are folded.</p>{LEGEND}{more}"
            '<div id="sbs"></div>')


def _resume_page(d: ResumeDiff) -> str:
    text = d.report()
    head = text.splitlines()[0] if text else ""
    body = (f"<header><h1>rngtrace diff --resumed-at {d.resumed_at}</h1></header>"
            f'<div class="verdict {"good" if d.identical else "bad"}" role="status">'
            f"{esc(head)}</div>"
            + section("The text report", f'<pre class="report">{esc(text)}</pre>', "report"))
    return page(f"rngtrace diff --resumed-at {d.resumed_at}", body)
