"""Checking a resumed run against the uninterrupted one: ``diff(full, resumed, resumed_at=K)``.

A run resumed from a checkpoint saved after optimizer step K should draw, from then on,
exactly what the uninterrupted run drew from step K. It does not when a generator's state
was not saved or not restored (Lightning's checkpoint holds none), when only some were,
when something draws while the checkpoint loads, or when the program reseeds after the
restore. :func:`resume_diff` takes both logs (each recorded from its process's start):

1. :mod:`.parts` cuts the two parts to compare: the full run from step K, the resumed
   run's training (its construction and checkpoint loading are its *preamble*), steps
   shifted, numbered generators paired by what made them;
2. :mod:`.starts` says how each generator starts the resumed training: restored, not
   restored (and from what), restored to another state, moved by draws while loading,
   reseeded after the restore, or made in training from a stream that starts elsewhere;
3. the training draws are compared exactly, stream by stream (DataLoader workers'
   streams each on their own): same kinds, same states before and after;
4. the ordinary :func:`~rngtrace.diff` of the two parts gives the details, its causes
   told with the restore analysis (:mod:`.retell`).

The resumed run is identical when every stream draws exactly the same from step K on
(over the steps both runs did). The records are in :mod:`.model`.

>>> from rngtrace import Draw, Log
>>> def draw(i, step, state, phase="forward"):
...     return Draw(i, "aten::bernoulli_", "drop", "Dropout", None, phase, step, (4,),
...                 "float32", "cpu", 4, {}, "default:cpu", state, state + "'", True,
...                 "train.py:9", None, None)
>>> full = Log(draws=[draw(0, 0, "s0"), draw(1, 1, "s1"), draw(2, 2, "s2")], steps=3)
>>> resumed = Log(draws=[draw(0, 0, "s1"), draw(1, 1, "x")], steps=2)
>>> check = resume_diff(full, resumed, resumed_at=1)
>>> check.identical, [(f.kind, f.generator) for f in check.starts]
(False, [('same', 'default:cpu')])
>>> print(check.findings_text())
default:cpu: step 2 (of the full run) draws other values: 1 of 2 draws differ
"""

from __future__ import annotations

from ...errors import RngtraceError
from ...log import Draw, Log
from ...text import plural
from .model import FINDING_KINDS, Finding, FindingKind, ResumeDiff
from .parts import Part, before_save, compare, ended, pair_numbered, part, split
from .retell import retell
from .starts import starts

__all__ = ["FINDING_KINDS", "Finding", "FindingKind", "ResumeDiff", "resume_diff"]


def resume_diff(full: Log, resumed: Log, *, resumed_at: int,
                labels: tuple[str, str] = ("FULL", "RESUMED")) -> ResumeDiff:
    """Check that ``resumed`` (restarted from a checkpoint after optimizer step
    ``resumed_at`` of ``full``) draws what ``full`` drew from that step on."""
    from .. import diff

    k = resumed_at
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise RngtraceError(f"resumed_at must be a step number (0 or more), not {k!r}")
    if k > full.steps:
        raise RngtraceError(f"resumed at step {k}, but the full run did only "
                            f"{plural(full.steps, 'optimizer step')}")
    span = full.steps - k
    limit = None if span == resumed.steps else min(span, resumed.steps)
    f_main = [d for d in full.draws if d.worker is None]
    gone = ended(f_main, k)
    p = split(resumed, [d for d in f_main if d.step == k and d.generator not in gone])
    dropped: set[int] = set()

    def keep_full(d: Draw) -> bool:
        return d.step >= k and (limit is None or d.step - k < limit) and (
            d.generator not in gone) and d.index not in dropped

    def keep_resumed(d: Draw) -> bool:
        return (d.worker is not None or d.index >= p) and (limit is None or d.step < limit)

    def full_part() -> Part:
        start = next((d.index for d in full.draws if keep_full(d)), len(full.draws))
        return part(full, keep_full, -k, lambda e: e.before >= start)

    b = part(resumed, keep_resumed, 0, lambda e: e.before >= p)
    a = full_part()
    dropped.update(before_save(a, b.log))
    if dropped:
        a = full_part()
    b = pair_numbered(a, b)
    made = {new for new, old in a.names.items()
            if next(d.step for d in full.draws if d.generator == old) >= k}
    found = starts(full, resumed, a, b, p, k, made)
    mismatches = compare(a.log, b.log, k)
    aligned = retell(diff(a.log, b.log, labels=labels), found)
    return ResumeDiff(k, labels, not mismatches, [f for f in found if not f.right],
                      mismatches, p, span if limit is None else limit, aligned, found)

