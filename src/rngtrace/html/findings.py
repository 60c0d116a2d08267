"""What the show and check pages say about hazards: each :class:`~rngtrace.Finding` as a
card worded as ``rngtrace check`` words it (its line, evidence, why and fix), the
evidence linked to the draw in the page's module tree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..checking import CheckReport, Finding
from ..log import Event, Log
from ..text import plural
from .escape import esc

EVIDENCE = 12  # evidence lines per card


def card(f: Finding, logs: Mapping[str, int], n: int) -> str:
    """One finding; ``logs`` maps a log label to its number in the page (its evidence
    then links to the draw)."""
    items = []
    for e in f.evidence[:EVIDENCE]:
        line = esc(e.line())
        if e.log in logs:
            line = f'<a href="#draw-{logs[e.log]}-{e.index}">{line}</a>'
        items.append(f"<li class=\"mono\">{line}</li>")
    if len(f.evidence) > EVIDENCE:
        items.append(f"<li>... {len(f.evidence) - EVIDENCE:,} more</li>")
    where = (f"<p>in: {esc(', '.join(f.logs))}</p>" if len(f.logs) > 1 else "")
    return (f'<div class="card {esc(f.severity)}" id="finding-{n}"><h3>'
            f'<span class="tag {esc(f.severity)}">{esc(f.severity.upper())}</span> '
            f"[{esc(f.kind)}] {esc(f.summary)}</h3>{where}<p>evidence:</p>"
            f"<ul>{''.join(items)}</ul><p><strong>why:</strong> {esc(f.why)}</p>"
            f"<p><strong>fix:</strong> {esc(f.fix)}</p></div>")


def cards(report: CheckReport, labels: Sequence[str] = ()) -> str:
    """Every finding of a report, then what was not checked."""
    logs = {label: i for i, label in enumerate(labels)}
    out = [card(f, logs, n) for n, f in enumerate(report.findings)]
    out += [f'<p class="note">not checked: {esc(x)}</p>' for x in report.notes]
    return "".join(out)


def counts(report: CheckReport) -> str:
    """``2 errors, 1 warning``."""
    return ", ".join(plural(len(fs), word) for fs, word in (
        (report.errors, "error"), (report.warnings, "warning")) if fs)


def events(log: Log, most: int = 50) -> str:
    """A log's events (reseeds, gaps...), each linked to the draw it came before."""
    if not log.events:
        return ""
    rows = "".join(_event(e) for e in log.events[:most])
    more = (f"<li>... {len(log.events) - most:,} more events</li>"
            if len(log.events) > most else "")
    return f'<ul class="events">{rows}{more}</ul>'


def _event(e: Event) -> str:
    return f'<li class="mono"><a href="#draw-0-{e.before}">{esc(e.line())}</a></li>'
