"""Why two runs differ: align two logs on structure, classify the cause, report it.

:func:`diff` aligns the draws of two logs per generator stream, on what each draw *is*
(op, model, module, target, shape, dtype, scalar arguments, phase, step), not on its
position, so that one inserted module comes out as one small ``inserted`` hunk followed
by ``shifted`` draws instead of hundreds of mismatches. A draw's values are identified
by the generator state it started from: the same structure from the same state is
``equal``, from another state ``shifted``. The result, a :class:`Diff`, names the causes
(module inserted, definitions reordered, another seed, a reseed ...) first. The pipeline:
:mod:`.match` and :mod:`.align` pair the draws, :mod:`.causes` finds why the streams part,
:mod:`.cause_text` turns that into :class:`Cause` records, :mod:`.assemble` builds the
:class:`Diff` (:mod:`.model`), and :mod:`.report` writes the text a person reads.

>>> import torch, rngtrace
>>> def build(*names):
...     torch.manual_seed(0)
...     with rngtrace.record() as log:
...         torch.nn.ModuleDict({n: torch.nn.Linear(2, 2) for n in names})
...     return log
>>> d = rngtrace.diff(build("a", "c"), build("a", "b", "c"))
>>> d.identical, d.first_divergence.kind, d.first_divergence.module
(False, 'inserted', 'b')
>>> [h.kind for h in d.hunks]
['equal', 'inserted', 'shifted']
>>> d.cause.summary
'module only in B: b (Linear), 2 draws'
"""

from __future__ import annotations

import gc
from typing import overload

from ..errors import IncomparableLogsError
from ..log import Log, cpu_state_digest
from . import compiled
from .assemble import assemble
from .model import (
    CAUSE_KINDS,
    HUNK_KINDS,
    Cause,
    CauseKind,
    Diff,
    Hunk,
    HunkKind,
    Stream,
    Unused,
)
from .report import unused_lines
from .resume import ResumeDiff, resume_diff
from .usage import unused_consumers
from .workers import CopiedStream, copied_streams

__all__ = ["CAUSE_KINDS", "HUNK_KINDS", "Cause", "CauseKind", "CopiedStream", "Diff", "Hunk",
           "HunkKind", "ResumeDiff", "Stream", "Unused", "copied_streams", "diff",
           "unused_consumers", "unused_lines"]


@overload
def diff(a: Log, b: Log, *, labels: tuple[str, str] = ...) -> Diff: ...
@overload
def diff(a: Log, b: Log, *, labels: tuple[str, str] = ..., resumed_at: int) -> ResumeDiff: ...


def diff(a: Log, b: Log, *, labels: tuple[str, str] = ("A", "B"),
         resumed_at: int | None = None) -> Diff | ResumeDiff:
    """Compare two logs: where the random streams part, why, and what it changed.

    The draws of each generator are aligned on their own (a change in the default
    stream leaves an explicit generator's draws equal) and on structure, not position;
    see the module documentation for the semantics and :class:`Diff` for the result.
    The cost grows as O(n log n) in the number of draws for logs that differ in a few
    places (100,000 draws: well under a second on a laptop core).

    >>> import torch, rngtrace
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> with rngtrace.record() as a:
    ...     torch.nn.Linear(2, 2)  # doctest: +ELLIPSIS
    Linear(...)
    >>> torch.manual_seed(1)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> with rngtrace.record() as b:
    ...     torch.nn.Linear(2, 2)  # doctest: +ELLIPSIS
    Linear(...)
    >>> d = rngtrace.diff(a, b)
    >>> d.cause.kind, d.cause.summary
    ('seed', 'different seed on default:cpu: 0 in A, 1 in B')
    >>> d.affected_targets
    ('weight', 'bias')

    Args:
        a, b: the two logs (``rngtrace.load`` reads them from files).
        labels: how the report names the two runs (e.g. the file names).
        resumed_at: ``b`` is ``a`` resumed from a checkpoint saved after this optimizer
            step: check it draws what ``a`` drew from there (a
            :class:`~rngtrace.diffing.resume.ResumeDiff`; see :mod:`.resume`).

    Raises:
        IncomparableLogsError: the logs digest CPU states differently (one recorded by
            rngtrace 0.1, see :data:`~rngtrace.log.CPU_STATE_DIGEST`).
    """
    _check_comparable(a, b, labels)
    if resumed_at is not None:
        return resume_diff(a, b, resumed_at=resumed_at, labels=labels)
    # The alignment allocates a few tuples per draw; with millions of draws alive the
    # cyclic collector would rescan them again and again (4-5x the time at 1M draws).
    # Nothing built here needs it, so it is paused for the call and restored after.
    enabled = gc.isenabled()
    gc.disable()
    try:
        # an eager and a compiled run: compare what both can see (docs/compile.md)
        ca, cb, how = compiled.comparable(a, b)
        if ca is a and cb is b:
            return assemble(a, b, labels)
        return compiled.explain(assemble(ca, cb, labels), a, b, how)
    finally:
        if enabled:
            gc.enable()


def _check_comparable(a: Log, b: Log, labels: tuple[str, str]) -> None:
    """Refuse logs whose CPU states were digested in different ways: every state would
    differ, and the report would blame the random numbers for a change of rngtrace."""
    da, db = cpu_state_digest(a), cpu_state_digest(b)
    if da is not None and db is not None and da != db:
        raise IncomparableLogsError(
            f"{labels[0]} digests CPU generator states with {da}, {labels[1]} with {db} "
            f"(blake2b-64: rngtrace 0.1): their states cannot be compared; record both "
            f"with the same rngtrace version")
