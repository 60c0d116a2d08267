"""The ranks of a job side by side: one column per rank, one row per parameter, forward
module and sampler, coloured by how the ranks relate (see :mod:`rngtrace.ranks`)."""

from __future__ import annotations

import string

from ..ranks import RankReport, Relation
from ..text import plural

#: Fill per verdict: the same and fine, different and fine, harmless (DDP), a bug.
FILL = {"same": "#e8e8e8", "ok": "#cfe8cf", "harmless": "#fff0b3", "bug": "#f4a6a6"}


def _fill(rel: Relation) -> str:
    if rel.verdict == "bug":
        return FILL["bug"]
    if rel.relation == "same":
        return FILL["same"]
    return FILL["harmless"] if rel.verdict == "harmless" else FILL["ok"]


def _letters(rel: Relation) -> dict[int, str]:
    """Rank -> the letter of its group: ranks with one letter drew the same values."""
    letters = string.ascii_uppercase
    return {r: letters[i % 26] for i, g in enumerate(rel.groups) for r in g}


def ranks_dot(report: RankReport) -> str:
    """DOT source with the ranks of ``report`` side by side.

    Each rank is a column; each row is one parameter (then each forward module, then
    each sampler), at the same height in every column. A cell says which values the
    rank drew: ranks with the same letter drew the same values. Grey: the same on every
    rank and fine; green: different and fine (shards); yellow: different but harmless
    (DDP broadcasts); red: a bug (replicas that differ, shards that are equal).

    >>> import torch, rngtrace
    >>> logs = []
    >>> for r in (0, 1):
    ...     _ = torch.manual_seed(r)
    ...     with rngtrace.record() as log:
    ...         _ = torch.nn.Linear(2, 2)
    ...     log.meta["dist"] = {"rank": r}
    ...     logs.append(log)
    >>> src = ranks_dot(rngtrace.compare_ranks(logs))
    >>> src.count("values A"), src.count("values B")
    (2, 2)
    """
    import graphviz

    dot = graphviz.Digraph("rngtrace_ranks", graph_attr={
        "rankdir": "TB", "fontname": "Helvetica", "newrank": "true", "nodesep": "0.3",
        "label": _esc(_title(report)), "labelloc": "t"},
        node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica",
                   "fontsize": "10"})
    rows = [*report.parameters, *report.forward, *report.samplers]
    for info in report.ranks:
        with dot.subgraph(name=f"cluster_rank{info.rank}") as col:
            col.attr(label=_esc(f"rank {info.rank}: {info.label}"), style="rounded")
            prev = None
            for i, rel in enumerate(rows):
                letter = _letters(rel).get(info.rank)
                node = f"r{info.rank}_{i}"
                what = "no draws" if letter is None else f"values {letter}"
                kind = "" if rel.kind == "parameter" else f"{rel.kind}: "
                col.node(node, label=_esc(f"{kind}{rel.name}") + "\\n" + what,
                         fillcolor="white" if letter is None else _fill(rel),
                         color="red" if rel.verdict == "bug" else "black")
                if prev is not None:
                    col.edge(prev, node, style="invis")
                prev = node
    for i in range(len(rows)):
        with dot.subgraph() as same:
            same.attr(rank="same")
            for info in report.ranks:
                same.node(f"r{info.rank}_{i}")
    return str(dot.source)


def _esc(text: str) -> str:
    """Text for a DOT label (the graphviz package quotes it; backslashes are escapes)."""
    return text.replace("\\", "\\\\")


def _title(report: RankReport) -> str:
    differ = sum(1 for p in report.parameters if p.relation == "differ")
    head = (f"{plural(len(report.ranks), 'rank')}, parallelism seen: {report.parallelism}; "
            f"{differ} of {plural(len(report.parameters), 'parameter')} differ")
    return head + (f"; {plural(len(report.problems), 'problem')}" if report.problems else "")
