"""Checking a resumed run against the uninterrupted one: ``diff(full, resumed, resumed_at=K)``.

A run resumed from a checkpoint saved after optimizer step K should draw, from then on,
exactly what the uninterrupted run drew from step K. It does not when a generator's state
was not saved or not restored (Lightning's checkpoint holds none), when only some were,
when something draws while the checkpoint loads, or when the program reseeds after the
restore. :func:`resume_diff` takes both logs (each recorded from its process's start),
and:

- splits the resumed log: its construction and checkpoint loading are a *preamble*; its
  training starts at the draws that repeat, kind for kind, the uninterrupted run's draws
  of step K (or, when they do not, after its last construction draw or reseed before
  its first optimizer step); its step ``s`` is the uninterrupted run's step ``K + s``;
- compares the training draws exactly, stream by stream (DataLoader workers' streams
  each on their own): same kinds, same states before and after;
- names every generator whose state at the resume point differs from the uninterrupted
  run's at step K, and why: not restored, restored to another state, extra draws after
  the restore while loading, a reseed after the restore;
- adds the ordinary :func:`~rngtrace.diff` of the two aligned parts, for the details.

The resumed run is identical when every stream draws exactly the same from step K on
(over the steps both runs did). Explicit generators' ``set_state`` and NumPy Generators'
``bit_generator.state = ...`` are not seen as events: such a restore shows only in the
states.

>>> from rngtrace import Draw, Log
>>> def draw(i, step, state, phase="forward"):
...     return Draw(i, "aten::bernoulli_", "drop", "Dropout", None, phase, step, (4,),
...                 "float32", "cpu", 4, {}, "default:cpu", state, state + "'", True,
...                 "train.py:9", None, None)
>>> full = Log(draws=[draw(0, 0, "s0"), draw(1, 1, "s1"), draw(2, 2, "s2")], steps=3)
>>> resumed = Log(draws=[draw(0, 0, "s1"), draw(1, 1, "x")], steps=2)
>>> check = resume_diff(full, resumed, resumed_at=1)
>>> check.identical, [f.kind for f in check.findings]
(False, [])
>>> print(check.findings_text())
default:cpu: step 2 (of the full run) draws other values: 1 of 2 draws differ
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import RngtraceError
from ..log import Draw, Log, plural
from .model import Diff

_RESTORES = ("set_rng_state", "set_state", "setstate")


@dataclass(frozen=True, slots=True)
class Finding:
    """Why one generator does not start step K where the uninterrupted run did.

    ``kind``: ``not-restored``, ``restored-elsewhere``, ``loading-draws``,
    ``reseed-after-restore``."""

    kind: str
    generator: str
    text: str


@dataclass
class ResumeDiff:
    """The result of :func:`resume_diff`; ``identical`` is the exit status's question."""

    resumed_at: int
    labels: tuple[str, str]
    identical: bool
    findings: list[Finding]
    mismatches: list[str]  # one line per stream whose training draws differ
    preamble: int  # draws of the resumed run before its training
    steps: int  # optimizer steps compared
    diff: Diff

    def findings_text(self) -> str:
        return "\n".join([f.text for f in self.findings] + self.mismatches)

    def report(self) -> str:
        a, b = self.labels
        head = (f"{b} resumed at step {self.resumed_at} of {a}: "
                + ("identical" if self.identical else "DIFFERENT")
                + f" over {plural(self.steps, 'step')} ({plural(self.preamble, 'draw')} "
                  "of construction and loading before)")
        lines = [head]
        if self.findings or self.mismatches:
            lines += ["", self.findings_text()]
        if not self.identical:
            lines += ["", f"The aligned training draws (step {self.resumed_at} on):",
                      self.diff.report()]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"resumed_at": self.resumed_at, "identical": self.identical,
                "preamble": self.preamble, "steps": self.steps,
                "findings": [dataclasses.asdict(f) for f in self.findings],
                "mismatches": self.mismatches, "diff": self.diff.to_dict()}


def _sig(d: Draw) -> tuple[Any, ...]:
    return (d.op, d.module, d.target, d.shape, d.generator, d.numel,
            tuple(sorted(d.args.items())))


def _exact(d: Draw) -> tuple[Any, ...]:
    return (*_sig(d), d.state_before, d.state_after)


def split(resumed: Log, step_k: list[Draw]) -> int:
    """Index of the resumed run's first training draw (see the module documentation)."""
    main = [d for d in resumed.draws if d.worker is None]
    zero = [d for d in main if d.step == 0]
    m = len(step_k)
    if m and len(zero) >= m and [_sig(d) for d in zero[-m:]] == [_sig(d) for d in step_k]:
        return zero[-m].index
    p = 0
    for d in zero:
        if d.phase == "init":
            p = d.index + 1
    for e in resumed.events:
        if e.kind == "reseed" and e.before <= len(zero):
            p = max(p, e.before)
    return p


def resume_diff(full: Log, resumed: Log, *, resumed_at: int,
                labels: tuple[str, str] = ("FULL", "RESUMED")) -> ResumeDiff:
    """Check that ``resumed`` (restarted from a checkpoint after optimizer step
    ``resumed_at`` of ``full``) draws what ``full`` drew from that step on."""
    from . import diff

    k = resumed_at
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise RngtraceError(f"resumed_at must be a step number (0 or more), not {k!r}")
    if k > full.steps:
        raise RngtraceError(f"resumed at step {k}, but the full run did only "
                            f"{plural(full.steps, 'optimizer step')}")
    span = full.steps - k
    limit = None if span == resumed.steps else min(span, resumed.steps)
    f_main = [d for d in full.draws if d.worker is None]
    p = split(resumed, [d for d in f_main if d.step == k])

    def keep_full(d: Draw) -> bool:
        return d.step >= k and (limit is None or d.step - k < limit)

    def keep_resumed(d: Draw) -> bool:
        return (d.worker is not None or d.index >= p) and (limit is None or d.step < limit)

    a = _part(full, keep_full, -k, lambda e: e.before >= _first(full, keep_full))
    b = _part(resumed, keep_resumed, 0, lambda e: e.before >= p)
    findings = _findings(full, resumed, a, b, p)
    mismatches = _compare(a, b, k)
    return ResumeDiff(k, labels, not mismatches, findings, mismatches, p,
                      span if limit is None else limit, diff(a, b, labels=labels))


def _first(log: Log, keep: Any) -> int:
    return next((d.index for d in log.draws if keep(d)), len(log.draws))


def _part(log: Log, keep: Any, shift: int, keep_event: Any) -> Log:
    """The kept draws, renumbered, steps shifted; events renumbered to match."""
    draws: list[Draw] = []
    new_index: dict[int, int] = {}
    for d in log.draws:
        if keep(d):
            new_index[d.index] = len(draws)
            gen = d.generator if d.worker is None else f"{d.generator}@worker{d.worker}"
            draws.append(dataclasses.replace(d, index=len(draws), step=d.step + shift,
                                             generator=gen))
    events = []
    for e in log.events:
        if keep_event(e):
            after = [i for i in new_index if i >= e.before]
            before = new_index[after[0]] if after else len(draws)
            events.append(dataclasses.replace(e, before=before))
    return Log(draws=draws, events=events, generators=dict(log.generators),
               meta=dict(log.meta), steps=max((d.step for d in draws), default=0),
               level=log.level)


def _streams(log: Log) -> dict[str, list[Draw]]:
    out: dict[str, list[Draw]] = {}
    for d in log.draws:
        out.setdefault(d.generator, []).append(d)
    return out


def _compare(a: Log, b: Log, k: int) -> list[str]:
    """One line per stream whose draws differ, naming the first step where they do."""
    sa, sb = _streams(a), _streams(b)
    lines = []
    for g in [*sa, *(n for n in sb if n not in sa)]:
        da, db = sa.get(g, []), sb.get(g, [])
        if [_exact(d) for d in da] == [_exact(d) for d in db]:
            continue
        if not da or not db:
            lines.append(f"{g}: drawn from step {k} only in "
                         f"{'the resumed run' if not da else 'the full run'} "
                         f"({plural(len(da or db), 'draw')})")
            continue
        n = sum(1 for x, y in zip(da, db, strict=False) if _exact(x) != _exact(y))
        n += abs(len(da) - len(db))
        first = next((x for x, y in zip(da, db, strict=False) if _exact(x) != _exact(y)),
                     da[min(len(da), len(db)) - 1])
        lines.append(f"{g}: step {first.step + k} (of the full run) draws other values: "
                     f"{n} of {max(len(da), len(db))} draws differ")
    return lines


def _findings(full: Log, resumed: Log, a: Log, b: Log, p: int) -> list[Finding]:
    """Generators whose state at the resume point differs, and why."""
    out = []
    start_b: dict[str, str | None] = {}
    for d in b.draws:
        start_b.setdefault(d.generator, d.state_before)
    for d in a.draws:
        g = d.generator
        if g not in start_b or "@worker" in g or start_b.pop(g) == d.state_before:
            start_b.pop(g, None)
            continue
        out.append(_why(resumed, g, d.state_before, p))
    return out


def _why(resumed: Log, g: str, wanted: str | None, p: int) -> Finding:
    """Why the resumed run's ``g`` does not start training in state ``wanted``."""
    events = [e for e in resumed.events if e.generator == g and e.kind == "reseed"]
    restores = [e for e in events if e.before <= p and any(r in e.detail for r in _RESTORES)]
    if not restores:
        return Finding("not-restored", g, f"{g} was not restored: the checkpoint has no RNG "
                       "state for it, or it was not set"
                       + (" (Generator.set_state is not seen as an event)"
                          if g.startswith(("generator:", "numpy:Generator")) else ""))
    r = restores[-1]
    at = f" at {r.site}" if r.site else ""
    later = [e for e in events if e.before >= r.before and e is not r]
    if later:
        e = later[0]
        return Finding("reseed-after-restore", g,
                       f"{g} was reseeded after its restore{at}: {e.detail}"
                       + (f" at {e.site}" if e.site else "")
                       + " overwrites the restored state")
    after = [d for d in resumed.draws
             if d.generator == g and d.worker is None and r.before <= d.index < p]
    if after and after[0].state_before == wanted:
        first = after[0]
        return Finding("loading-draws", g,
                       f"{g} was restored{at}, then {plural(len(after), 'extra draw')} "
                       f"while loading moved it ({first.op} at {first.site or '?'})")
    return Finding("restored-elsewhere", g,
                   f"{g} was restored{at} to a state the full run did not have at the "
                   "resume step (saved at another point, or another generator's state)")

