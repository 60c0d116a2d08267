"""Repeated streams: two draws of one run that start from the same generator state and
fill tensors alike, so they hold the same values (a rewound or stuck generator: equal
masks, equal layers).

Left out, because they repeat on purpose: a checkpoint's recompute (a replay, or a
backward draw: :mod:`.recompute` judges those); a draw whose consumption a restore undid
(``fork_rng``, ``isolate_rng``, a pipeline's shape inference) when the draw after the
restore is kept; a DataLoader's scalar seed draws. When every draw of a group ran in
such an isolated stretch (``fork_rng`` around each op), the group is reported.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..log import Draw, Event, Log
from ..text import noun
from .common import (
    Source,
    call,
    changed,
    describe,
    drawn,
    loader_draw,
    names,
    positions,
    restored,
    role,
    value_key,
)
from .model import Evidence, Finding, Severity

_EVIDENCE = 3  # groups shown as evidence


def candidate(d: Draw) -> bool:
    """A draw whose values another draw could repeat by mistake."""
    return (drawn(d) and d.worker is None and not d.replay and d.phase != "backward"
            and not (loader_draw(d) and d.numel <= 1))


def groups(draws: Sequence[Draw], undone: set[int]) -> list[list[Draw]]:
    """Draws with equal values, two or more a group, in order of their first draw;
    draws a restore undid are dropped from a group that has a kept one."""
    place = positions(draws)
    keyed: dict[tuple, list[Draw]] = {}
    for d in draws:
        if candidate(d):
            keyed.setdefault(value_key(d, place), []).append(d)
    out = []
    for g in keyed.values():
        kept = [d for d in g if d.index not in undone]
        members = kept if kept else g
        if len(members) > 1:
            out.append(members)
    return out


def repeated_streams(src: Source) -> list[Finding]:
    """One finding per cause (a reseed, restores around each op, two generators alike),
    each with every group of draws it explains."""
    undone = restored(src.log)
    by_cause: dict[tuple[str, str], list[list[Draw]]] = {}
    for g in groups(src.log.draws, undone):
        by_cause.setdefault(_cause(src.log, g, undone), []).append(g)
    return [_finding(src, found, why, fix) for (why, fix), found in by_cause.items()]


def _finding(src: Source, found: list[list[Draw]], why: str, fix: str) -> Finding:
    first = found[0]
    a = first[0]
    what = names([describe(d, len({x.model for x in first}) > 1) for d in first])
    more = len(found) - 1
    summary = (f"{len(first)} draws fill {_shape(a)} tensors from the same {a.generator} state "
               f"(draws {', '.join(str(d.index) for d in first[:4])}): {what} get identical "
               "values" + (f"; {more} more such {noun(more, 'group')}" if more else ""))
    evidence = [Evidence.of(d, src.label, src.rank) for g in found[:_EVIDENCE] for d in g[:2]]
    gens = tuple(dict.fromkeys(d.generator for g in found for d in g))
    where = tuple(dict.fromkeys(describe(d, len({x.model for x in g}) > 1)
                                for g in found for d in g))
    return Finding("repeated-stream", _severity(found), summary, gens, where,
                   tuple(evidence), why, fix, (src.label,))


def _shape(d: Draw) -> str:
    return "x".join(map(str, d.local_shape or d.shape)) or "scalar"


def _copies(group: list[Draw]) -> bool:
    """Each draw fills a parameter of another model: models built alike (a reseed before
    each), which may be deliberate (a copy to compare with)."""
    return all(d.phase == "init" and d.target is not None for d in group) and len(
        {d.model for d in group}) == len(group)


def _severity(found: list[list[Draw]]) -> Severity:
    """An error when masks, parameters or shards repeat; a warning for other draws, and
    for whole models built alike."""
    if all(_copies(g) for g in found):
        return "warning"
    hot = any(d.phase == "forward" or d.target is not None or d.placement is not None
              for g in found for d in g)
    return "error" if hot else "warning"


def _between(log: Log, gen: str, lo: int, hi: int) -> list[Event]:
    return [e for e in log.events if e.generator == gen and lo < e.before <= hi
            and changed(e)]


def _cause(log: Log, group: list[Draw], undone: set[int]) -> tuple[str, str]:
    """Why the first two draws of a group start alike, and the fix, from what lies
    between them in the log."""
    a, b = group[0], group[1]
    same = "; the same values where independent ones were expected"
    if a.generator != b.generator:
        return (f"{a.generator} and {b.generator} were in the same state: two generators "
                "seeded alike, or never seeded (every torch.Generator() starts from the "
                f"same default seed){same}",
                "seed each generator with its own seed, or draw from one generator")
    events = _between(log, a.generator, a.index, b.index)
    seeds = [e for e in events if role(e) == "seed"]
    if seeds and _copies(group):
        return (f"{call(seeds[-1])} set {a.generator} back between building "
                f"{names([str(d.model) for d in group])}: they start from identical "
                "parameters, which is right for a copy made to compare with and wrong for "
                "models meant to differ (an ensemble, a teacher and a student)",
                "seed each model differently, or build one and copy it (copy.deepcopy) "
                "when a copy is meant")
    if seeds:
        e = seeds[-1]
        return (f"{call(e)} set {a.generator} back to a state it had "
                f"already drawn from: everything after it repeats earlier draws{same}",
                "seed once, before the loop (or derive a new seed per epoch or step: "
                "seed + epoch)")
    if events and all(d.index in undone for d in group):
        e = events[-1]
        return (f"{a.generator} was set back after each of these draws ({call(e)}): "
                "a fork_rng or set_rng_state around each random op, as "
                "DTensor's RNG tracker does to CPU tensors under FSDP2 CPU offload, makes "
                f"every op start from one state{same}",
                "let the generator advance between the ops: draw outside fork_rng, or "
                "initialise the local tensors (param.to_local()) of CPU-offloaded DTensors")
    return (f"{a.generator} was in the same state at both draws (rewound by code the "
            f"recorder does not see){same}",
            "find what sets the generator back between the two draws (a saved state set "
            "again, a generator re-created with the same seed)")
