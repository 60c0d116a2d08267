"""The binary search of ``rngtrace bisect``, with commits that cannot be tested.

The commits are numbered 0..n-1, oldest first; the last is BAD, known to differ from
GOOD. Like ``git bisect``, the search assumes that the commits drawing as GOOD come
first; a commit that cannot run is skipped (``git bisect skip``): its nearest
neighbour to the middle is tested instead, and when skipped commits end up next to the
first differing one, each of them may be the first (:meth:`Search.candidates`).
"""

from __future__ import annotations


class Search:
    """Binary search for the first of ``n`` commits (oldest first; the last is BAD,
    known to differ) that differs from GOOD, with skipped commits.

    Invariant: the first differing commit lies in ``(lo, hi]``: the commit at ``lo``
    draws as GOOD (-1: GOOD itself), the one at ``hi`` differs. Each test moves a
    bound or adds a skipped commit; the search ends when no commit in between is left
    untested and unskipped.
    """

    def __init__(self, n: int) -> None:
        self._lo, self._hi = -1, n - 1
        self._skipped: set[int] = set()

    def next(self) -> int | None:
        """The next commit to test: the middle of ``(lo, hi)``, or the nearest one to it
        that is not skipped (the earlier on a tie); None when done."""
        left = self._left()
        if not left:
            return None
        mid = (self._lo + self._hi) // 2
        return min(left, key=lambda i: (abs(i - mid), i))

    def mark(self, i: int, result: str) -> None:
        if result == "same":
            self._lo = i
        elif result == "differs":
            self._hi = i
        else:
            self._skipped.add(i)

    def candidates(self) -> list[int]:
        """The commits the first differing one may be: ``hi``, and the skipped commits
        before it that no test excluded."""
        return [i for i in range(self._lo + 1, self._hi + 1)
                if i == self._hi or i in self._skipped]

    def steps_left(self) -> int:
        """About how many tests are left (without skips)."""
        return (len(self._left()) + 1).bit_length() - 1 if self._left() else 0

    def _left(self) -> list[int]:
        return [i for i in range(self._lo + 1, self._hi) if i not in self._skipped]
