"""The matcher of the alignment: equal runs of two sequences, in near-linear time.

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
from typing import Any

MAX_D = 256  # edit distance Myers may explore in one anchorless piece


def _freeze(v: Any) -> Hashable:
    if isinstance(v, list | tuple):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    return v


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
