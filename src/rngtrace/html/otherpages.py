"""The pages of ``rngtrace ranks ... --html FILE`` and ``rngtrace check ... --html FILE``:
the verdict and the problems or findings as the text report words them, the tables
behind them, and (when the logs are given) each log's module tree with its draws."""

from __future__ import annotations

from collections.abc import Sequence

from ..checking import CheckReport
from ..log import Log
from ..ranks import RankReport
from ..ranks.model import Relation
from .escape import esc
from .findings import cards
from .page import Logs, page, picture, section


def _trees(logs: Logs, given: Sequence[Log], labels: Sequence[str]) -> list[str]:
    if not given:
        return []
    for log, label in zip(given, labels, strict=False):
        logs.add(log, label)
    folded = len(given) > 1
    return [logs.filters()] + [section(f"Modules of {label}", logs.tree(n), f"modules-{n}",
                                       folded=folded) for n, label in enumerate(labels)]


def check_page(report: CheckReport, logs: Sequence[Log] = ()) -> str:
    """The page of a check; ``logs`` (those checked, in order) add their module trees,
    and each finding's evidence then links to its draw."""
    page_logs = Logs()
    labels = list(report.logs)
    bad = "bad" if report.errors else ("warn" if report.findings else "good")
    parts = [f"<header><h1>{esc(report.headline())}</h1>",
             *(f'<p class="meta">{esc(label)}' + (f" (rank {rank})" if rank is not None
                                                  else "") + "</p>"
               for label, rank in zip(report.logs, report.ranks, strict=True)
               if len(report.logs) > 1),
             "</header>",
             f'<div class="verdict {bad}" role="status">{esc(report.headline())}</div>']
    if report.findings or report.notes:
        parts.append(section("Findings", cards(report, labels if logs else ()), "findings"))
    parts.append(section("The text report", f'<pre class="report">{esc(str(report))}</pre>',
                         "report", folded=True))
    parts += _trees(page_logs, logs, labels)
    return page(report.headline(), "\n".join(parts), page_logs.data(kind="check"))


def _relations(rows: Sequence[Relation]) -> str:
    head = "".join(f'<th scope="col">{c}</th>' for c in (
        "name", "relation", "ranks grouped by equal draws", "draws", "placement", "verdict",
        "why", "meaning"))
    body = "".join(
        f'<tr class="v-{esc(r.verdict)}"><td class="mono">{esc(r.name)}</td>'
        f"<td>{esc(r.relation)}</td><td>"
        + esc(" | ".join(",".join(map(str, g)) for g in r.groups))
        + f'</td><td class="num">{r.draws:,}</td><td>{esc(r.placement)}</td>'
        f'<td class="{"bug" if r.verdict == "bug" else ""}">{esc(r.verdict)}</td>'
        f"<td>{esc(r.why)}</td><td>{esc(r.meaning)}</td></tr>" for r in rows)
    return f'<table class="rel"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def ranks_page(report: RankReport, logs: Sequence[Log] = (), *,
               with_picture: bool = True) -> str:
    """The page of a comparison of ranks; ``logs`` (one per rank, in the report's
    order) add their module trees."""
    first = report.first_difference
    verdict = ("every parameter's initial draws agree across ranks" if report.same else
               f"initial draws differ across ranks, first at {first.name}" if first else
               "initial draws differ across ranks")
    parts = [f"<header><h1>rngtrace ranks: {len(report.ranks)} ranks</h1>"
             f'<p class="meta">parallelism seen: {esc(report.parallelism)}</p></header>',
             f'<div class="verdict {"good" if report.same else "bad"}" role="status">'
             f"{esc(verdict)}</div>"]
    if report.problems:
        parts.append(section("Problems", "".join(
            f'<div class="card error"><p>{esc(p)}</p></div>' for p in report.problems),
            "problems"))
    ranks = "".join(
        f"<tr><td>{r.rank}</td><td class=\"mono\">{esc(r.label)}</td>"
        f"<td>{esc(r.host or '')}</td><td>{esc(r.backend or '')}</td>"
        f'<td class="num">{r.draws:,}</td><td class="mono">'
        + esc(", ".join(f"{g}: {s}" for g, s in r.seeds.items())) + "</td></tr>"
        for r in report.ranks)
    parts.append(section("Ranks", '<table class="rel"><thead><tr><th scope="col">rank</th>'
                         '<th scope="col">log</th><th scope="col">host</th><th scope="col">'
                         'backend</th><th scope="col">draws</th><th scope="col">seeds</th>'
                         f"</tr></thead><tbody>{ranks}</tbody></table>", "ranks"))
    for title, rows, ident in (("Parameters (initial draws)", report.parameters, "parameters"),
                               ("Modules drawing in forward", report.forward, "forward"),
                               ("Samplers", report.samplers, "samplers")):
        if rows:
            parts.append(section(title, _relations(rows), ident))
    parts.append(section("The text report", f'<pre class="report">{esc(str(report))}</pre>',
                         "report", folded=True))
    page_logs = Logs()
    parts += _trees(page_logs, logs, [r.label for r in report.ranks])
    if with_picture:
        parts.append(section("Picture", picture(report, 0), "picture"))
    return page(f"rngtrace ranks: {len(report.ranks)} ranks", "\n".join(parts),
                page_logs.data(kind="ranks"))
