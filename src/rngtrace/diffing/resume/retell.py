"""The aligned training draws' diff, told with the restore analysis.

The ordinary :func:`~rngtrace.diff` of the two parts knows nothing of the resume: a
stream that the resumed run did not restore starts from another state, which it calls
"another seed" (the processes' seeds at the windows' start, which a ``manual_seed``
replaced long before step K), "a state change inside one run" (the restore itself) or
"moved with nothing recorded". :func:`retell` puts the restore analysis's sentence in
place of such a cause, so that the report tells one story.
"""

from __future__ import annotations

import dataclasses

from ..model import Cause, CauseKind, Diff
from .model import Finding

# what the ordinary diff calls a stream that starts from another state
_START: tuple[CauseKind, ...] = ("seed", "state", "unknown")


def retell(d: Diff, starts: list[Finding]) -> Diff:
    """``d`` with the causes at the start of a stream that starts elsewhere told by the
    findings (see the module documentation)."""
    wrong = {f.generator: f for f in starts if not f.right}
    first_a = _firsts(d, "a")
    first_b = _firsts(d, "b")
    causes = []
    for c in d.causes:
        f = wrong.get(c.generator)
        at_start = (c.a_index is not None and c.a_index == first_a.get(c.generator)) or (
            c.b_index is not None and c.b_index == first_b.get(c.generator))
        if f is not None and c.kind in _START and at_start:
            c = dataclasses.replace(c, summary=f.text, detail="",
                                    consequence=c.consequence or f.kind == "consequence")
        causes.append(c)
    causes.sort(key=_consequence_last)
    return dataclasses.replace(d, causes=tuple(causes))


def _consequence_last(c: Cause) -> bool:
    return c.consequence


def _firsts(d: Diff, side: str) -> dict[str, int]:
    """The first draw's index of each stream of one side (A's names for both: the
    parts name paired streams alike)."""
    log = d.a if side == "a" else d.b
    out: dict[str, int] = {}
    for draw in log.draws if log is not None else ():
        out.setdefault(draw.generator, draw.index)
    return out
