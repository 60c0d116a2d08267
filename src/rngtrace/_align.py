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


def structure_key(d: Draw) -> tuple:
    """What a draw is, apart from its values and its position: the alignment key."""
    return (d.op, d.model, d.module, d.target, tuple(d.shape), d.dtype,
            _freeze(d.args), d.phase, d.step)


def place_key(d: Draw) -> tuple:
    """Where a draw happens; a pair with equal place and other structure is 'changed'."""
    return (d.op, d.model, d.module, d.target, d.phase, d.step)


def value_key(d: Draw) -> tuple:
    """What a draw produced: equal value keys under other names mean a rename."""
    return (d.op, tuple(d.shape), d.dtype, _freeze(d.args), d.state_before, d.consumed)


def intern(keys: Sequence[Hashable], table: dict[Hashable, int]) -> list[int]:
    """Map keys to small integers, shared between the two sequences through ``table``."""
    out = []
    get = table.get
    for k in keys:
        v = get(k)
        if v is None:
            v = table[k] = len(table)
        out.append(v)
    return out


# -- the matcher -----------------------------------------------------------------------
def match(a: Sequence[int], b: Sequence[int], max_d: int = MAX_D) -> list[tuple[int, int]]:
    """Pairs ``(i, j)`` with ``a[i] == b[j]``, increasing in both, longest-first-ish.

    >>> match([1, 2, 3, 4], [1, 9, 9, 2, 3, 4])
    [(0, 0), (1, 3), (2, 4), (3, 5)]
    """
    pairs: list[tuple[int, int]] = []
    stack = [(0, len(a), 0, len(b))]
    while stack:
        alo, ahi, blo, bhi = stack.pop()
        while alo < ahi and blo < bhi and a[alo] == b[blo]:
            pairs.append((alo, blo))
            alo += 1
            blo += 1
        while alo < ahi and blo < bhi and a[ahi - 1] == b[bhi - 1]:
            ahi -= 1
            bhi -= 1
            pairs.append((ahi, bhi))
        if alo == ahi or blo == bhi:
            continue
        anchors = _anchors(a, alo, ahi, b, blo, bhi)
        if anchors:
            pa, pb = alo, blo
            for i, j in anchors:
                stack.append((pa, i, pb, j))
                pairs.append((i, j))
                pa, pb = i + 1, j + 1
            stack.append((pa, ahi, pb, bhi))
            continue
        found = _myers(a, alo, ahi, b, blo, bhi, max_d)
        if found is None:  # too different: pair in place where the keys agree
            found = [(alo + k, blo + k) for k in range(min(ahi - alo, bhi - blo))
                     if a[alo + k] == b[blo + k]]
        pairs.extend(found)
    pairs.sort()
    return pairs


def _anchors(a: Sequence[int], alo: int, ahi: int, b: Sequence[int], blo: int,
             bhi: int) -> list[tuple[int, int]]:
    """Keys unique in both ranges, as the longest run increasing in both (patience)."""
    ca = Counter(a[alo:ahi])
    cb = Counter(b[blo:bhi])
    where_b = {}
    for j in range(blo, bhi):
        k = b[j]
        if cb[k] == 1 and ca.get(k) == 1:
            where_b[k] = j
    if not where_b:
        return []
    cand = [(i, where_b[a[i]]) for i in range(alo, ahi) if a[i] in where_b]
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


def _myers(a: Sequence[int], alo: int, ahi: int, b: Sequence[int], blo: int, bhi: int,
           max_d: int) -> list[tuple[int, int]] | None:
    """Myers' greedy LCS of two ranges; None when the edit distance exceeds ``max_d``."""
    n, m = ahi - alo, bhi - blo
    off = n + m + 1
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
            while x < n and y < m and a[alo + x] == b[blo + y]:
                x += 1
                y += 1
            v[off + k] = x
            if x >= n and y >= m:
                return _backtrack(trace, d, n, m, alo, blo, a, b)
    return None


def _backtrack(trace: list[list[int]], d_end: int, n: int, m: int, alo: int, blo: int,
               a: Sequence[int], b: Sequence[int]) -> list[tuple[int, int]]:
    """Walk Myers' trace back from (n, m); ``trace[d][k + d + 1]`` is V[k] before step d."""
    pairs = []
    x, y = n, m
    for d in range(d_end, 0, -1):
        v = trace[d]
        k = x - y
        down = k == -d or (k != d and v[k - 1 + d + 1] < v[k + 1 + d + 1])
        pk = k + 1 if down else k - 1
        px = v[pk + d + 1]
        mid_x = px if down else px + 1  # where the snake that ends at (x, y) starts
        while x > mid_x:
            x -= 1
            y -= 1
            pairs.append((alo + x, blo + y))
        x, y = px, px - pk
    while x > 0 and y > 0:
        x -= 1
        y -= 1
        pairs.append((alo + x, blo + y))
    pairs.reverse()
    return pairs


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
