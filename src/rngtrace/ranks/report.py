"""The text of a :class:`RankReport`: the ranks, the verdict, then each relation."""

from __future__ import annotations

from ..text import plural
from .model import RankReport, Relation

_LIST = 20  # parameters listed one by one; beyond, only the differing ones


def render(r: RankReport) -> str:
    lines = [_head(r)]
    lines += [f"  rank {i.rank}: {i.label}, {plural(i.draws, 'draw')}"
              + (f", host {i.host}" if i.host and len({x.host for x in r.ranks}) > 1 else "")
              + (f", local rank {i.local_rank}" if i.local_rank is not None else "")
              for i in r.ranks]
    seeds = _seeds(r)
    if seeds:
        lines.append(f"seeds: {seeds}")
    lines.append(f"parallelism seen: {r.parallelism}")
    lines.append("")
    lines.append(_verdict(r))
    lines += [f"  PROBLEM: {p}" for p in r.problems]
    if r.parameters:
        lines += ["", f"parameters drawn at init ({len(r.parameters)}):"]
        lines += _rows(r.parameters, r)
    if r.forward:
        lines += ["", f"forward draws (dropout masks), per module ({len(r.forward)}):"]
        lines += _rows(r.forward, r)
    if r.samplers:
        lines += ["", f"samplers (randperm) ({len(r.samplers)}):"]
        lines += _rows(r.samplers, r)
    return "\n".join(lines)


def _head(r: RankReport) -> str:
    worlds = {i.world_size for i in r.ranks if i.world_size is not None}
    backends = sorted({i.backend for i in r.ranks if i.backend})
    hosts = sorted({i.host for i in r.ranks if i.host})
    bits = [f"world size {', '.join(map(str, sorted(worlds)))}" if worlds else "",
            ", ".join(backends),
            ("host " + ", ".join(hosts) if len(hosts) <= 3 else plural(len(hosts), "host"))
            if hosts else ""]
    extra = "; ".join(b for b in bits if b)
    return f"rngtrace ranks: {plural(len(r.ranks), 'log')}" + (f" ({extra})" if extra else "")


def _seeds(r: RankReport) -> str:
    gens: dict[str, None] = {}
    for i in r.ranks:
        gens.update(dict.fromkeys(i.seeds))
    parts = []
    for g in gens:
        per = [(i.rank, i.seeds.get(g)) for i in r.ranks]
        vals = {s for _, s in per}
        if len(vals) == 1:
            parts.append(f"{g} {per[0][1]} on every rank")
        else:
            parts.append(f"{g} " + ", ".join(f"rank {k}: {s}" for k, s in per))
    return "; ".join(parts)


def _verdict(r: RankReport) -> str:
    n = len(r.parameters)
    differ = [p for p in r.parameters if p.relation == "differ"]
    if not n:
        return "no parameter drawn at init in these logs"
    if not differ:
        return f"every parameter's initial draws agree across ranks ({n} of {n})"
    first = differ[0]
    return (f"{len(differ)} of {n} parameters differ across ranks; first: {first.name} "
            f"({_groups(first, r)}): {first.why}")


def _groups(rel: Relation, r: RankReport) -> str:
    if rel.relation == "same":
        return "same on every rank"
    every = len(r.ranks)
    parts = ["rank " + "=".join(map(str, g)) for g in rel.groups]
    if rel.relation == "missing":
        return f"only {sum(len(g) for g in rel.groups)} of {every} ranks: " + " | ".join(parts)
    return "differ: " + " | ".join(parts)


def _rows(rels: tuple[Relation, ...], r: RankReport) -> list[str]:
    show = rels if len(rels) <= _LIST else [x for x in rels if x.relation != "same"]
    lines = []
    said = ("", "")  # meaning and why are written when they change from the row above
    for x in show:
        place = f" [{x.placement}]" if x.placement and x.kind == "parameter" else ""
        tag = "BUG: " if x.verdict == "bug" else ""
        line = f"  {x.name}{place}: {plural(x.draws, 'draw')}, {_groups(x, r)}"
        if (x.meaning, x.why) != said:
            line += f" - {tag}{x.meaning}"
        lines.append(line)
        if x.why and (x.meaning, x.why) != said:
            lines.append(f"      why: {x.why}")
        said = (x.meaning, x.why)
    hidden = len(rels) - len(show)
    if hidden:
        lines.append(f"  ... and {hidden} more, the same on every rank")
    return lines
