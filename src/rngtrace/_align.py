"""Aligning two logs: structure keys, a near-linear matcher, generator pairing.

The matcher pairs equal keys of two integer sequences, in order, the way ``diff``
does, without quadratic cost in the usual case (few differences in long logs):

1. the common prefix and suffix are paired in one pass;
2. keys that occur exactly once in both remaining ranges are anchors; the longest
   increasing run of them (patience sorting, O(n log n)) splits the range, and each
   piece is matched again;
3. a piece with no unique key left goes to Myers' O((n+m)·D) algorithm, with the edit
   distance D bounded; past the bound the piece is paired position by position where
   the keys agree (an honest, cheap answer for pieces that differ everywhere).

Each step is linear in the piece it looks at, so the total is O(n log n) for logs that
differ in a few places, and never worse than O(n · MAX_D) per piece.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from .log import Draw, GeneratorInfo, Log

MAX_D = 256  # edit distance Myers may explore in one anchorless piece


def _freeze(v: Any) -> Hashable:
    if isinstance(v, list | tuple):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    return v


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


def value_key(d: Draw) -> tuple:
    """What a draw produced: equal value keys under other names mean a rename."""
    args = d.args
    return (*_VALUE(d), len(args), *args, *args.values())


# -- the matcher -----------------------------------------------------------------------
Run = tuple[int, int, int]  # (i, j, length): a[i + k] == b[j + k] for k < length


def match(a: Sequence[Hashable], b: Sequence[Hashable], max_d: int = MAX_D) -> list[Run]:
    """Runs ``(i, j, n)`` of equal items, increasing in both sequences, sorted.

    Items are compared with ``==`` (slices, in C); they are hashed only to find anchors.

    >>> match([1, 2, 3, 4], [1, 9, 9, 2, 3, 4])
    [(0, 0, 1), (1, 3, 3)]
    """
    runs: list[Run] = []
    stack = [(0, len(a), 0, len(b))]
    while stack:
        alo, ahi, blo, bhi = stack.pop()
        k = _prefix(a, alo, b, blo, min(ahi - alo, bhi - blo))
        if k:
            runs.append((alo, blo, k))
            alo, blo = alo + k, blo + k
        k = _suffix(a, ahi, b, bhi, min(ahi - alo, bhi - blo))
        if k:
            ahi, bhi = ahi - k, bhi - k
            runs.append((ahi, bhi, k))
        if alo == ahi or blo == bhi:
            continue
        found = _myers(a, alo, ahi, b, blo, bhi, max_d)
        if found is not None:
            runs += found
            continue
        fa, fb = _hashable(a[alo:ahi]), _hashable(b[blo:bhi])
        anchors = _anchors(fa, fb)
        if anchors:
            pa, pb = alo, blo
            for i, j in anchors:
                i, j = alo + i, blo + j
                if pa < i and pb < j:
                    stack.append((pa, i, pb, j))
                runs.append((i, j, 1))
                pa, pb = i + 1, j + 1
            stack.append((pa, ahi, pb, bhi))
            continue
        runs += [(alo + i, blo + j, n) for i, j, n in _greedy(fa, fb)]
    runs.sort()
    return _merge(runs)


def _merge(runs: list[Run]) -> list[Run]:
    out: list[Run] = []
    for i, j, n in runs:
        if out and out[-1][0] + out[-1][2] == i and out[-1][1] + out[-1][2] == j:
            pi, pj, pn = out[-1]
            out[-1] = (pi, pj, pn + n)
        else:
            out.append((i, j, n))
    return out


def _prefix(a: Sequence[Hashable], i: int, b: Sequence[Hashable], j: int, limit: int) -> int:
    """Length of the common run of ``a[i:]`` and ``b[j:]`` (at most ``limit``).

    Compares slices, so the scan runs in C; galloping keeps it linear in the answer.
    """
    if limit <= 0 or a[i] != b[j]:
        return 0
    lo, step = 1, 1
    while lo < limit:
        hi = min(limit, lo + step)
        if a[i + lo:i + hi] == b[j + lo:j + hi]:
            lo, step = hi, step * 2
            continue
        while hi - lo > 1:  # [0, lo) agree, the first disagreement is in [lo, hi)
            mid = (lo + hi) // 2
            if a[i + lo:i + mid] == b[j + lo:j + mid]:
                lo = mid
            else:
                hi = mid
        return lo
    return limit


def _suffix(a: Sequence[Hashable], ahi: int, b: Sequence[Hashable], bhi: int,
            limit: int) -> int:
    """Length of the common run ending at ``a[ahi - 1]`` and ``b[bhi - 1]``."""
    if limit <= 0 or a[ahi - 1] != b[bhi - 1]:
        return 0
    lo, step = 1, 1
    while lo < limit:
        hi = min(limit, lo + step)
        if a[ahi - hi:ahi - lo] == b[bhi - hi:bhi - lo]:
            lo, step = hi, step * 2
            continue
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if a[ahi - mid:ahi - lo] == b[bhi - mid:bhi - lo]:
                lo = mid
            else:
                hi = mid
        return lo
    return limit


def _hashable(items: Sequence[Any]) -> list[Hashable]:
    """The items themselves when hashable, else frozen copies (keys hold args dicts)."""
    try:
        set(items[:1])
        return list(items)
    except TypeError:
        pass
    try:  # the usual alignment key: (fields, args dict)
        out: list[Hashable] = [(fields, tuple(args.items())) for fields, args in items]
        set(out)
        return out
    except (TypeError, ValueError, AttributeError):
        return [_freeze(x) for x in items]


def _anchors(a: list[Hashable], b: list[Hashable]) -> list[tuple[int, int]]:
    """Items unique in both lists, as the longest run increasing in both (patience)."""
    ca = Counter(a)
    cb = Counter(b)
    where_b = {}
    for j, k in enumerate(b):
        if cb[k] == 1 and ca.get(k) == 1:
            where_b[k] = j
    if not where_b:
        return []
    cand = [(i, where_b[k]) for i, k in enumerate(a) if k in where_b]
    # longest increasing subsequence of the b positions, in O(n log n)
    tails: list[int] = []  # smallest tail b position of a run of each length
    tail_at: list[int] = []  # index into cand of that tail
    back = [-1] * len(cand)
    for n, (_, j) in enumerate(cand):
        k = bisect.bisect_left(tails, j)
        if k == len(tails):
            tails.append(j)
            tail_at.append(n)
        else:
            tails[k] = j
            tail_at[k] = n
        back[n] = tail_at[k - 1] if k else -1
    out = []
    n = tail_at[-1]
    while n >= 0:
        out.append(cand[n])
        n = back[n]
    out.reverse()
    return out


def _greedy(a: list[Hashable], b: list[Hashable]) -> list[Run]:
    """A linear fallback for pieces that differ in many places and share no unique item.

    Walks both lists: equal items pair; an item the other side never has is inserted or
    removed; otherwise both are passed as a replacement. Exact for insertions and
    removals of new items (an extra module in a repetitive stream), cheap always.
    """
    in_a, in_b = set(a), set(b)
    runs: list[Run] = []
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            k = _prefix(a, i, b, j, min(len(a) - i, len(b) - j))
            runs.append((i, j, k))
            i, j = i + k, j + k
        elif b[j] not in in_a:
            j += 1
        elif a[i] not in in_b:
            i += 1
        else:
            i, j = i + 1, j + 1
    return runs


def _myers(a: Sequence[Hashable], alo: int, ahi: int, b: Sequence[Hashable], blo: int,
           bhi: int, max_d: int) -> list[Run] | None:
    """Myers' greedy LCS of two ranges as runs; None past ``max_d`` edits.

    Snakes are followed with :func:`_prefix` (C-speed), so a piece that differs in a
    few places costs about its length plus D squared.
    """
    n, m = ahi - alo, bhi - blo
    off = max_d + 2
    v = [0] * (2 * off + 1)
    trace: list[list[int]] = []
    for d in range(min(n + m, max_d) + 1):
        trace.append(v[off - d - 1: off + d + 2])
        for k in range(-d, d + 1, 2):
            if k == -d or (k != d and v[off + k - 1] < v[off + k + 1]):
                x = v[off + k + 1]
            else:
                x = v[off + k - 1] + 1
            y = x - k
            if x < n and y < m and a[alo + x] == b[blo + y]:
                x += _prefix(a, alo + x, b, blo + y, min(n - x, m - y))
            v[off + k] = x
            if x >= n and x - k >= m:
                return _backtrack(trace, d, n, m, alo, blo)
    return None


def _backtrack(trace: list[list[int]], d_end: int, n: int, m: int, alo: int,
               blo: int) -> list[Run]:
    """Walk Myers' trace back from (n, m); ``trace[d][k + d + 1]`` is V[k] before step d."""
    runs: list[Run] = []
    x, y = n, m
    for d in range(d_end, 0, -1):
        v = trace[d]
        k = x - y
        down = k == -d or (k != d and v[k - 1 + d + 1] < v[k + 1 + d + 1])
        pk = k + 1 if down else k - 1
        px = v[pk + d + 1]
        mid_x = px if down else px + 1  # where the snake that ends at (x, y) starts
        if x > mid_x:
            runs.append((alo + mid_x, blo + mid_x - k, x - mid_x))
        x, y = px, px - pk
    if x > 0:
        runs.append((alo, blo, x))
    runs.reverse()
    return runs


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


def _first_draws(log: Log) -> dict[str, Draw]:
    first: dict[str, Draw] = {}
    for d in log.draws:
        if d.generator not in first:
            first[d.generator] = d
    return first


def _names(log: Log, first: dict[str, Draw]) -> list[str]:
    names = [n for n in log.generators if n in first]
    names += [n for n in first if n not in log.generators]
    return names


def _num(name: str) -> int:
    tail = name.rpartition(":")[2]
    return int(tail) if tail.isdigit() else 0


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

    kind: str
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
    ka = _keys(a, _STRUCTURE)
    kb = _keys(b, _STRUCTURE)
    pieces: list[Piece] = []

    def add(kind: str, i: int | None, j: int | None) -> None:
        last = pieces[-1] if pieces else None
        ai = last.a1 if last is not None else 0
        bj = last.b1 if last is not None else 0
        if i is not None:
            ai = i
        if j is not None:
            bj = j
        if (last is not None and last.kind == kind and (i is None or last.a1 == i)
                and (j is None or last.b1 == j)):
            last.a1 += i is not None
            last.b1 += j is not None
            return
        pieces.append(Piece(kind, ai, ai + (i is not None), bj, bj + (j is not None)))

    def pair(i: int, j: int) -> None:
        if ka[i] != kb[j]:
            add("changed", i, j)
        elif a[i].state_before == b[j].state_before:
            add("equal", i, j)
        else:
            add("shifted", i, j)

    def gap(i0: int, i1: int, j0: int, j1: int) -> None:
        sub: list[tuple[int, int]] = []
        if i0 < i1 and j0 < j1:
            sub = _gap_pairs(a, i0, i1, b, j0, j1)
        for i, j in [*sub, (i1, j1)]:
            while i0 < i:
                add("removed", i0, None)
                i0 += 1
            while j0 < j:
                add("inserted", None, j0)
                j0 += 1
            if i < i1:
                pair(i, j)
                i0, j0 = i + 1, j + 1

    # The hot part: a matched run is cut where "same state before" changes, with the
    # comparisons done in C (map/index), so a long equal run costs little Python.
    sa = [d.state_before for d in a]
    sb = [d.state_before for d in b]
    pi, pj = 0, 0
    for i, j, n in match(ka, kb):
        if i != pi or j != pj:
            gap(pi, i, pj, j)
        same = list(map(operator.eq, sa[i:i + n], sb[j:j + n]))
        k = 0
        while k < n:
            v = same[k]
            try:
                k2 = same.index(not v, k)
            except ValueError:
                k2 = n
            kind = "equal" if v else "shifted"
            last = pieces[-1] if pieces else None
            if last is not None and last.kind == kind and last.a1 == i + k \
                    and last.b1 == j + k:
                last.a1 += k2 - k
                last.b1 += k2 - k
            else:
                pieces.append(Piece(kind, i + k, i + k2, j + k, j + k2))
            k = k2
        pi, pj = i + n, j + n
    gap(pi, len(a), pj, len(b))
    return pieces


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
