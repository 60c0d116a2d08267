"""Checking one run for RNG hazards, without a second run to compare with.

:func:`check` reads the logs of one run (one log, or one per rank of a job) and returns
a :class:`CheckReport` of :class:`Finding` records, each with its evidence (draw
indices and generator states), why it matters and the fix. Every finding rests on
draws the log recorded; what a check cannot see is said in ``docs/check.md``. The
checks, one module each: :mod:`.streams` (repeated streams), :mod:`.parallel` (what the
ranks of a job must draw alike or apart), :mod:`.recompute` (activation-checkpoint
recomputes), :mod:`.workers` (DataLoader workers), :mod:`.seeding` (stray consumption,
unseeded generators); :mod:`.report` writes the text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..log import Log
from .common import arrange
from .model import KINDS, SEVERITIES, CheckReport, Evidence, Finding, Kind, Severity
from .parallel import parallel
from .recompute import recomputes
from .seeding import stray, unseeded
from .streams import repeated_streams
from .workers import copied_workers

__all__ = ["KINDS", "SEVERITIES", "CheckReport", "Evidence", "Finding", "Kind", "Severity",
           "check"]


def check(logs: Log | Sequence[Log], labels: Sequence[str] | None = None) -> CheckReport:
    """Find RNG hazards in the logs of one run: one log, or one per rank of a job.

    Each log is checked for repeated streams, recomputes that draw other values than
    their forward, DataLoader workers with identical streams, stray consumption between
    the seeding and the first training step, and generators that draw unseeded; logs
    with ranks in their headers (``meta["dist"]``) are also checked against what the
    ranks of a job must draw alike or apart. See docs/check.md for each finding's
    evidence and limits. ``len(report)`` is the number of findings (``rngtrace check``
    exits 1 when it is not 0), errors first.

    >>> import torch, rngtrace
    >>> def layer():
    ...     _ = torch.manual_seed(0)       # the same seed before each layer
    ...     return torch.nn.Linear(4, 4)
    >>> with rngtrace.record() as log:
    ...     model = torch.nn.Sequential(layer(), layer())
    >>> report = rngtrace.check(log)
    >>> [(f.kind, f.severity, f.where) for f in report]
    [('repeated-stream', 'error', ('0.weight', '1.weight', '0.bias', '1.bias'))]
    >>> report.headline()
    'rngtrace check: log: 1 finding (1 error)'

    Args:
        logs: a :class:`~rngtrace.Log`, or several (``rngtrace.load`` reads them).
        labels: how findings name each log (default: its file name, else ``log N``).

    Raises:
        RngtraceError: a light-mode log (``level="module"``), or two logs of one rank.
        IncomparableLogsError: logs whose CPU states were digested in different ways.
    """
    sources = arrange(logs, labels)
    findings, notes = [], []
    for src in sources:
        findings += repeated_streams(src)
        findings += recomputes(src)
        findings += copied_workers(src)
        for found, said in (stray(src), unseeded(src)):
            findings += found
            notes += said
    ranked = [s for s in sources if s.rank is not None]
    if len(ranked) > 1 and len(ranked) == len(sources):
        findings += parallel(sources)
    elif len(sources) > 1:
        notes.append("the logs have no rank in their headers: checked one by one, not as "
                     "the ranks of one job")
    merged = _merge(findings)
    merged.sort(key=lambda f: f.severity != "error")
    return CheckReport(tuple(s.label for s in sources), tuple(s.rank for s in sources),
                       tuple(merged), tuple(notes))


def _merge(findings: list[Finding]) -> list[Finding]:
    """The same finding in several logs (every rank of a job) once, naming them all."""
    out: dict[tuple, Finding] = {}
    for f in findings:
        key = (f.kind, f.severity, f.summary, f.why, f.fix)
        seen = out.get(key)
        out[key] = f if seen is None else dataclasses.replace(
            seen, logs=seen.logs + f.logs, evidence=seen.evidence + f.evidence)
    return list(out.values())
