"""How :func:`rngtrace.diff` puts a :class:`~rngtrace.diffing.Diff` together.

Each log is split by generator; the generators of A and B are paired and each pair of
streams aligned (:mod:`rngtrace.diffing.align`); the aligned pieces are placed in A's order
(then B's) and become the hunks, once :mod:`rngtrace.diffing.causes` has named the causes.
The per-stream counts, the parameters whose initial values differ and the notes (other
torch versions, incomplete logs, recorder errors) are worked out here too.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from ..errors import LevelError
from ..log import Draw, Log
from .additions import added_streams
from .align import align_stream, pair_generators, stream_name
from .cause_text import build
from .causes import StreamView, explain
from .model import HUNK_KINDS, Cause, Diff, Hunk, Stream
from .names import infer_renames
from .usage import unused_consumers


def assemble(a: Log, b: Log, labels: tuple[str, str]) -> Diff:
    """The :class:`~rngtrace.diffing.Diff` of two logs (what :func:`rngtrace.diff` returns).

    B is read in A's names where it draws the same values under other names (a wrapper,
    a renamed attribute: :func:`~rngtrace.diffing.names.infer_renames`).
    """
    if a.level != b.level:
        raise LevelError(
            f"cannot compare a {a.level}-level log ({labels[0]}) with a {b.level}-level "
            f"log ({labels[1]}): a module-level log has one record per module call, an "
            f"op-level log one per random kernel; record both at the same level")
    renames = infer_renames(a, b)
    original_b = b
    if renames:
        b = renames.apply(b)
    split_a = _by_generator(a)
    split_b = _by_generator(b)
    views = []
    for sp in pair_generators(a, b):
        sa = split_a.get(sp.a_name, []) if sp.a_name is not None else []
        sb = split_b.get(sp.b_name, []) if sp.b_name is not None else []
        views.append(StreamView(sp, sa, sb, align_stream(sa, sb)))
    placed = []
    for v in views:
        for p in v.pieces:
            placed.append((_start(v.a, p.a0, p.a1, len(a.draws)),
                           _start(v.b, p.b0, p.b1, len(b.draws)), v, p))
    placed.sort(key=lambda t: (t[0], t[1]))
    for n, (_, _, _, p) in enumerate(placed):
        p.hunk = n
    added = added_streams(a, b, views)
    groups = explain(a, b, [v for v in views if v.name not in added], labels)
    causes = build(groups, a, b, labels)
    order = sorted(range(len(causes)), key=lambda n: _rank(causes[n], n))
    groups = [groups[n] for n in order]
    causes = [causes[n] for n in order]
    index_of = {id(g): n for n, g in enumerate(groups)}
    hunks = []
    for ai, bi, v, p in placed:
        c = p.cause
        while c is not None and c.merged_into is not None:
            c = c.merged_into
        hunks.append(Hunk(
            kind=p.kind, generator=v.name,
            b_generator=v.pair.b_name if v.pair.b_name is not None else v.name,
            a_index=ai, a_stop=v.a[p.a1 - 1].index + 1 if p.a1 > p.a0 else ai,
            b_index=bi, b_stop=v.b[p.b1 - 1].index + 1 if p.b1 > p.b0 else bi,
            a_draws=tuple(v.a[p.a0:p.a1]), b_draws=tuple(v.b[p.b0:p.b1]),
            cause=index_of.get(id(c)) if c is not None and p.kind != "equal" else None,
        ))
    streams = tuple(_stream(a, b, v) for v in views)
    affected = _affected(hunks)
    return Diff(
        hunks=tuple(hunks), causes=tuple(causes), streams=streams,
        affected_targets=affected, new_targets=_new(affected, a, b),
        unused_a=tuple(unused_consumers(a)),
        unused_b=tuple(unused_consumers(b)), labels=labels, notes=_notes(a, b, labels),
        renamed=renames.describe() if renames else "", a=a, b=original_b,
        added=tuple(v.name for v in views if v.name in added),
    )


def _rank(c: Cause, position: int) -> tuple:
    """Causes first, by what they shift (parameters, draws, values), then by place;
    consequences last."""
    return (c.consequence, -len(c.shifted_targets), -c.shifted_draws, -c.shifted_values,
            position)


def _new(affected: tuple[str, ...], a: Log, b: Log) -> tuple[str, ...]:
    """The affected targets that only one of the two runs has."""
    def keys(log: Log) -> set[str]:
        out = {d.target for d in log.draws if d.target is not None}
        out.update(t for _, t in log.with_grad or ())
        return out

    ka, kb = keys(a), keys(b)
    return tuple(t for t in affected if (t in ka) != (t in kb))


def _by_generator(log: Log) -> dict[str, list[Draw]]:
    """Each generator's draws, without the calls that moved no state (attention with
    dropout 0, meta tensors): they stay in the log, but drew nothing to compare."""
    draws = log.draws
    if not all(map(operator.attrgetter("consumed"), draws)):
        draws = [d for d in draws if d.consumed]
    names = list(map(operator.attrgetter("generator"), draws))
    if any(map(operator.attrgetter("worker"), draws)) or any(
            d.worker == 0 for d in draws):  # a worker's generators are streams of their own
        names = list(map(stream_name, draws))
    if len(set(names)) == 1:  # one stream: no Python loop over a million draws
        return {names[0]: list(draws)}
    out: dict[str, list[Draw]] = {}
    for name, d in zip(names, draws, strict=True):
        out.setdefault(name, []).append(d)
    return out


def _start(draws: Sequence[Draw], p0: int, p1: int, total: int) -> int:
    """Log index of a piece's first draw, or its insertion point when it has none."""
    if p0 < len(draws):
        return draws[p0].index
    return draws[-1].index + 1 if draws else total


def _stream(a: Log, b: Log, v: Any) -> Stream:
    counts: dict[str, int] = {}
    for p in v.pieces:
        counts[p.kind] = counts.get(p.kind, 0) + max(p.a1 - p.a0, p.b1 - p.b0)
    ga = a.generators.get(v.pair.a_name) if v.pair.a_name is not None else None
    gb = b.generators.get(v.pair.b_name) if v.pair.b_name is not None else None
    return Stream(v.pair.a_name, v.pair.b_name, len(v.a), len(v.b),
                  ga.initial_seed if ga else None, gb.initial_seed if gb else None,
                  {k: counts[k] for k in HUNK_KINDS if k in counts})


def _affected(hunks: list[Hunk]) -> tuple[str, ...]:
    seen: dict[str | None, None] = {}
    target = operator.attrgetter("target")
    for h in hunks:
        if h.kind == "equal":
            continue
        # shifted pairs have the same targets on both sides: A's suffice
        sides = (h.a_draws,) if h.kind == "shifted" else (h.a_draws, h.b_draws)
        for draws in sides:
            if any(d.discarded for d in draws):
                draws = tuple(d for d in draws if not d.discarded)
            seen.update(dict.fromkeys(map(target, draws)))
    seen.pop(None, None)
    return tuple(t for t in seen if t is not None)


def _notes(a: Log, b: Log, labels: tuple[str, str]) -> tuple[str, ...]:
    notes = []
    ta, tb = a.meta.get("torch"), b.meta.get("torch")
    if ta and tb and ta != tb:
        notes.append(f"other torch versions: {ta} in {labels[0]}, {tb} in {labels[1]}")
    for log, label in ((a, labels[0]), (b, labels[1])):
        if not log.complete:
            notes.append(f"{label} is incomplete (the run stopped early or the file was cut "
                         f"short): its missing tail shows as removed or inserted")
        errors = sum(1 for e in log.events if e.kind == "error")
        if errors:
            notes.append(f"{label} has {errors} recorder error event(s): some draws may be "
                         f"described incompletely")
    return tuple(notes)
