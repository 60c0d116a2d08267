"""Aligning two logs: structure keys, generator pairing, one stream's pieces.

A draw is aligned on what it *is* (:func:`structure_key`: op, model, module, target,
shape, dtype, phase, step, scalar arguments), never on its position or values.
:func:`pair_generators` decides which stream of B plays the part of each stream of A;
:func:`align_stream` aligns one pair of streams into runs of one kind (``equal``,
``shifted``, ``changed``, ``removed``, ``inserted``). The sequence matcher it uses,
:func:`~rngtrace.diffing.match.match`, is in :mod:`rngtrace.diffing.match`.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..log import Draw, GeneratorInfo, Log
from .match import match
from .model import HunkKind

_STRUCTURE = operator.attrgetter("op", "model", "module", "target", "shape", "dtype",
                                 "phase", "step")
_PLACE = operator.attrgetter("op", "model", "module", "target", "phase", "step")
_VALUE = operator.attrgetter("op", "shape", "dtype", "state_before", "consumed")


def structure_key(d: Draw) -> tuple:
    """What a draw is, apart from its values and its position: the alignment key.

    Scalar arguments are taken in the order the recorder wrote them (schema order).
    """
    args = d.args
    # flat, with the count first: building (name, value) pairs costs 4x more
    return (*_STRUCTURE(d), len(args), *args, *args.values())


def place_key(d: Draw) -> tuple:
    """Where a draw happens; a pair with equal place and other structure is 'changed'."""
    return _PLACE(d)


# -- generator streams -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StreamPair:
    """A generator of A and the generator of B that plays its part (either may be None)."""

    a_name: str | None
    b_name: str | None


def pair_generators(a: Log, b: Log) -> list[StreamPair]:
    """Match the generators of two logs.

    Default generators match by name. Explicit ones are numbered in order of first use,
    so an extra generator in one run renames the others: they match first by the state
    they started from, then by initial seed, then by what their first draw was, then
    by name.
    """
    a_first = _first_draws(a)
    b_first = _first_draws(b)
    a_names = _names(a, a_first)
    b_names = _names(b, b_first)
    out: list[StreamPair] = []
    taken: set[str] = set()
    explicit_a = []
    for n in a_names:
        if not n.startswith("generator:") and n in b_names:
            out.append(StreamPair(n, n))
            taken.add(n)
        elif n.startswith("generator:"):
            explicit_a.append(n)
        else:
            out.append(StreamPair(n, None))
    explicit_b = [n for n in b_names if n.startswith("generator:")]
    scored = []
    for n in explicit_a:
        for m in explicit_b:
            s = _score(a.generators.get(n), b.generators.get(m), a_first.get(n),
                       b_first.get(m))
            if s > 0 or n == m:
                scored.append((-s, n != m, n, m))
    scored.sort(key=lambda t: (t[0], t[1], _num(t[2]), _num(t[3])))
    done_a: set[str] = set()
    for _, _, n, m in scored:
        if n in done_a or m in taken:
            continue
        done_a.add(n)
        taken.add(m)
        out.append(StreamPair(n, m))
    out.extend(StreamPair(n, None) for n in explicit_a if n not in done_a)
    out.extend(StreamPair(None, m) for m in b_names if m not in taken)
    return out


def stream_name(d: Draw) -> str:
    """The stream a draw belongs to: its generator, in a DataLoader worker that
    worker's own (``default:cpu@worker1``)."""
    return d.generator if d.worker is None else f"{d.generator}@worker{d.worker}"


def _first_draws(log: Log) -> dict[str, Draw]:
    first: dict[str, Draw] = {}
    for d in log.draws:
        name = stream_name(d)
        if name not in first:
            first[name] = d
    return first


def _names(log: Log, first: dict[str, Draw]) -> list[str]:
    names = [n for n in log.generators if n in first]
    names += [n for n in first if n not in log.generators]
    return names


def _num(name: str) -> int:
    tail = name.rpartition(":")[2]
    return int(tail) if tail.isdecimal() else 0


def _score(ga: GeneratorInfo | None, gb: GeneratorInfo | None, da: Draw | None,
           db: Draw | None) -> int:
    s = 0
    if ga is not None and gb is not None:
        if ga.state is not None and ga.state == gb.state:
            s += 4
        if ga.initial_seed is not None and ga.initial_seed == gb.initial_seed:
            s += 2
    if da is not None and db is not None and place_key(da)[:4] == place_key(db)[:4]:
        s += 1
    return s


# -- one stream ----------------------------------------------------------------------------
@dataclass(slots=True)
class Piece:
    """A run of one kind in one stream, in positions of the stream's draw lists."""

    kind: HunkKind
    a0: int
    a1: int
    b0: int
    b1: int
    hunk: int = -1  # index of the Hunk it becomes
    cause: Any = None  # the cause candidate that explains it (set by _causes)


def align_stream(a: Sequence[Draw], b: Sequence[Draw]) -> list[Piece]:
    """Align two lists of draws of one generator; consecutive runs of one kind.

    Pairs of equal structure are ``equal`` (same state before) or ``shifted``; in the
    gaps between them, draws at the same place (or with the same values under another
    name) pair up as ``changed``; the rest is ``removed`` (A) or ``inserted`` (B).
    """
    out = _Pieces(a, b, _keys(a, _STRUCTURE), _keys(b, _STRUCTURE))
    # The hot part: a matched run is cut where "same state before" changes, with the
    # comparisons done in C (map/index), so a long equal run costs little Python.
    sa = [d.state_before for d in a]
    sb = [d.state_before for d in b]
    pi, pj = 0, 0
    for i, j, n in match(out.ka, out.kb):
        if i != pi or j != pj:
            out.gap(pi, i, pj, j)
        same = list(map(operator.eq, sa[i:i + n], sb[j:j + n]))
        k = 0
        while k < n:
            try:
                k2 = same.index(not same[k], k)
            except ValueError:
                k2 = n
            out.run("equal" if same[k] else "shifted", i + k, j + k, k2 - k)
            k = k2
        pi, pj = i + n, j + n
    out.gap(pi, len(a), pj, len(b))
    return out.pieces


@dataclass(slots=True)
class _Pieces:
    """The pieces of one stream as :func:`align_stream` finds them, merged as they come."""

    a: Sequence[Draw]
    b: Sequence[Draw]
    ka: list[Any]
    kb: list[Any]
    pieces: list[Piece] = field(default_factory=list)

    def run(self, kind: HunkKind, i: int, j: int, n: int) -> None:
        """``n`` pairs of one kind from ``(i, j)``, merged into the last piece if it
        ends right there with the same kind."""
        last = self.pieces[-1] if self.pieces else None
        if last is not None and last.kind == kind and last.a1 == i and last.b1 == j:
            last.a1 += n
            last.b1 += n
        else:
            self.pieces.append(Piece(kind, i, i + n, j, j + n))

    def one(self, kind: HunkKind, i: int | None, j: int | None) -> None:
        """One draw of A (``j`` None: removed), of B (``i`` None: inserted) or a pair."""
        last = self.pieces[-1] if self.pieces else None
        ai = i if i is not None else (last.a1 if last is not None else 0)
        bj = j if j is not None else (last.b1 if last is not None else 0)
        if (last is not None and last.kind == kind and (i is None or last.a1 == i)
                and (j is None or last.b1 == j)):
            last.a1 += i is not None
            last.b1 += j is not None
            return
        self.pieces.append(Piece(kind, ai, ai + (i is not None), bj, bj + (j is not None)))

    def pair(self, i: int, j: int) -> None:
        if self.ka[i] != self.kb[j]:
            self.one("changed", i, j)
        else:
            self.one("equal" if self.a[i].state_before == self.b[j].state_before
                     else "shifted", i, j)

    def gap(self, i0: int, i1: int, j0: int, j1: int) -> None:
        """Draws between two matched runs: pairs at one place, the rest one-sided."""
        sub: list[tuple[int, int]] = []
        if i0 < i1 and j0 < j1:
            sub = _gap_pairs(self.a, i0, i1, self.b, j0, j1)
        for i, j in [*sub, (i1, j1)]:
            while i0 < i:
                self.one("removed", i0, None)
                i0 += 1
            while j0 < j:
                self.one("inserted", None, j0)
                j0 += 1
            if i < i1:
                self.pair(i, j)
                i0, j0 = i + 1, j + 1


_ARGS = operator.attrgetter("args")


def _keys(draws: Sequence[Draw], key: Any) -> list[Any]:
    """Alignment keys, built in C: (fields, args dict); equal keys mean equal structure.

    The dict makes a key unhashable, which only the anchor search needs: it freezes.
    """
    return list(zip(map(key, draws), map(_ARGS, draws), strict=True))


def _gap_pairs(a: Sequence[Draw], i0: int, i1: int, b: Sequence[Draw], j0: int,
               j1: int) -> list[tuple[int, int]]:
    """In a gap: pairs at the same place, then pairs with the same values (renames)."""
    pa = list(map(_PLACE, a[i0:i1]))
    pb = list(map(_PLACE, b[j0:j1]))
    out = [(i0 + i + k, j0 + j + k) for i, j, n in match(pa, pb) for k in range(n)]
    rest: list[tuple[int, int]] = []
    bounds = [(i0 - 1, j0 - 1), *out, (i1, j1)]
    for (pi, pj), (ni, nj) in itertools.pairwise(bounds):
        if pi + 1 < ni and pj + 1 < nj:
            va = _keys(a[pi + 1:ni], _VALUE)
            vb = _keys(b[pj + 1:nj], _VALUE)
            rest += [(pi + 1 + i + k, pj + 1 + j + k) for i, j, n in match(va, vb)
                     for k in range(n) if a[pi + 1 + i + k].state_before is not None]
    return sorted(out + rest)
