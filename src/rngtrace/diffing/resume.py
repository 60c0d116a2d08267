"""Checking a resumed run against the uninterrupted one: ``diff(full, resumed, resumed_at=K)``.

A run resumed from a checkpoint saved after optimizer step K should draw, from then on,
exactly what the uninterrupted run drew from step K. It does not when a generator's state
was not saved or not restored (Lightning's checkpoint holds none), when only some were,
when something draws while the checkpoint loads, or when the program reseeds after the
restore. :func:`resume_diff` takes both logs (each recorded from its process's start),
and:

- leaves out, in the full run, the last draws of generators made before step K that
  end at step K (a DataLoader sampler's per-epoch generator draws once more when the loop
  asks for the batch after the epoch's last, after the checkpoint was saved);
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
from typing import Any, Literal

from ..errors import RngtraceError
from ..log import Draw, Event, Log
from ..text import plural
from .model import Diff

_RESTORES = ("set_rng_state", "set_state", "setstate")


#: Why a generator does not start step K where the uninterrupted run did; ``consequence``:
#: a generator made during training and seeded from a stream that differs.
FindingKind = Literal["not-restored", "restored-elsewhere", "loading-draws",
                      "reseed-after-restore", "consequence"]


@dataclass(frozen=True, slots=True)
class Finding:
    """Why one generator does not start step K where the uninterrupted run did
    (``kind``, one of :data:`FindingKind`)."""

    kind: FindingKind
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


def _kind(d: Draw) -> tuple[Any, ...]:
    """What a draw is, with numbered generators by kind only (their numbers differ)."""
    sig = _sig(d)
    return (*sig[:4], _numbered(d.generator) or d.generator, *sig[5:])


def split(resumed: Log, step_k: list[Draw]) -> int:
    """Index of the resumed run's first training draw (see the module documentation)."""
    main = [d for d in resumed.draws if d.worker is None]
    zero = [d for d in main if d.step == 0]
    for m in range(min(len(step_k), len(zero)), 0, -1):  # the longest tail that repeats
        if [_kind(d) for d in zero[-m:]] == [_kind(d) for d in step_k[-m:]]:
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
    ended = _ended(f_main, k)
    p = split(resumed, [d for d in f_main if d.step == k and d.generator not in ended])
    dropped: set[int] = set()

    def keep_full(d: Draw) -> bool:
        return d.step >= k and (limit is None or d.step - k < limit) and (
            d.generator not in ended) and d.index not in dropped

    def keep_resumed(d: Draw) -> bool:
        return (d.worker is not None or d.index >= p) and (limit is None or d.step < limit)

    def keep_event(e: Event) -> bool:
        return e.before >= _first(full, keep_full)

    b, b_names, _ = _part(resumed, keep_resumed, 0, lambda e: e.before >= p)
    a, a_names, origin = _part(full, keep_full, -k, keep_event)
    dropped.update(_before_save(a, origin, b))
    if dropped:
        a, a_names, origin = _part(full, keep_full, -k, keep_event)
    fresh = {new for new, old in a_names.items()
             if next(d.step for d in full.draws if d.generator == old) >= k}
    findings = _findings(resumed, a, b, p, b_names, fresh)
    mismatches = _compare(a, b, k)
    return ResumeDiff(k, labels, not mismatches, findings, mismatches, p,
                      span if limit is None else limit, diff(a, b, labels=labels))


def _before_save(a: Log, origin: list[int], b: Log) -> list[int]:
    """Indices (in the full log; ``origin`` maps ``a``'s) of the draws of step K made
    before the checkpoint was saved: where the resumed run starts a stream in a state
    the full run reached only after some of its step-K draws (the loop drew after the
    optimizer step, then saved), those draws came before the save."""
    start_b: dict[str, str | None] = {}
    for d in b.draws:
        start_b.setdefault(d.generator, d.state_before)
    streams: dict[str, list[Draw]] = {}
    for d in a.draws:
        streams.setdefault(d.generator, []).append(d)
    out: list[int] = []
    for g, ds in streams.items():
        want = start_b.get(g)
        j = next((i for i, d in enumerate(ds) if d.state_before == want), 0)
        if j and all(d.step == 0 for d in ds[:j]):
            out += [origin[d.index] for d in ds[:j]]
    return out


def _ended(draws: list[Draw], k: int) -> set[str]:
    """Numbered generators of the full run first used before step ``k`` and last at step
    ``k``: the tail of an object the checkpoint did not carry (a DataLoader sampler's
    per-epoch generator draws a last ``randperm`` when the epoch's loop asks for the batch
    after the last one, after step K). The resumed run never had them."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for d in draws:
        first.setdefault(d.generator, d.step)
        last[d.generator] = d.step
    return {g for g in first if first[g] < k and last[g] == k and _numbered(g)}


def _first(log: Log, keep: Any) -> int:
    return next((d.index for d in log.draws if keep(d)), len(log.draws))


def _numbered(name: str) -> str | None:
    """``"generator"`` for ``generator:3``, ``"python:Random"`` for ``python:Random#2``:
    names numbered in order of first use, renumbered within a part; None for others."""
    for kind, sep in (("generator", ":"), ("python:Random", "#"), ("numpy:Generator", "#")):
        if name.startswith(kind + sep) and name[len(kind) + 1:].isdigit():
            return kind + sep
    return None


def _part(log: Log, keep: Any, shift: int,
          keep_event: Any) -> tuple[Log, dict[str, str], list[int]]:
    """The kept draws, renumbered, steps shifted, numbered generators renumbered in
    order of first use in the part (a sampler's per-epoch generator is ``generator:2``
    at step 2 of the full run, ``generator:1`` in the resumed one); events renumbered to
    match. Also the new names' originals, and each kept draw's index in ``log``."""
    draws: list[Draw] = []
    new_index: dict[int, int] = {}
    names: dict[str, str] = {}  # original -> new
    counts: dict[str, int] = {}
    for d in log.draws:
        if keep(d):
            new_index[d.index] = len(draws)
            gen = names.get(d.generator)
            if gen is None:
                kind = _numbered(d.generator)
                if kind is None:
                    gen = d.generator
                else:
                    counts[kind] = counts.get(kind, 0) + 1
                    gen = f"{kind}{counts[kind]}"
                names[d.generator] = gen
            if d.worker is not None:
                gen = f"{gen}@worker{d.worker}"
            draws.append(dataclasses.replace(d, index=len(draws), step=d.step + shift,
                                             generator=gen))
    events = []
    for e in log.events:
        if keep_event(e):
            after = [i for i in new_index if i >= e.before]
            before = new_index[after[0]] if after else len(draws)
            events.append(dataclasses.replace(e, before=before,
                                              generator=names.get(e.generator, e.generator)))
    gens = {names.get(n, n): dataclasses.replace(g, name=names.get(n, n))
            for n, g in log.generators.items() if n in names or _numbered(n) is None}
    part = Log(draws=draws, events=events, generators=gens, meta=dict(log.meta),
               steps=max((d.step for d in draws), default=0), level=log.level)
    return part, {new: old for old, new in names.items()}, list(new_index)


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


def _findings(resumed: Log, a: Log, b: Log, p: int, b_names: dict[str, str],
              fresh: set[str]) -> list[Finding]:
    """Generators whose state at the resume point differs, and why. ``fresh``: numbered
    generators the full run first used at or after the resume step (made in training)."""
    out = []
    start_b: dict[str, str | None] = {}
    for d in b.draws:
        start_b.setdefault(d.generator, d.state_before)
    for d in a.draws:
        g = d.generator
        if g not in start_b or "@worker" in g or start_b.pop(g) == d.state_before:
            start_b.pop(g, None)
            continue
        if g in fresh:
            out.append(Finding("consequence", g, f"{g} is made during training (a "
                               "DataLoader sampler's generator, seeded from another "
                               "stream) and starts elsewhere: a consequence of the above"))
            continue
        out.append(_why(resumed, g, b_names.get(g, g), d.state_before, p))
    return out


def _why(resumed: Log, g: str, original: str, wanted: str | None, p: int) -> Finding:
    """Why the resumed run's ``g`` (``original`` in its log) does not start training in
    state ``wanted``."""
    events = [e for e in resumed.events if e.generator == original and e.kind == "reseed"]
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
             if d.generator == original and d.worker is None and r.before <= d.index < p]
    if after and after[0].state_before == wanted:
        first = after[0]
        return Finding("loading-draws", g,
                       f"{g} was restored{at}, then {plural(len(after), 'extra draw')} "
                       f"while loading moved it ({first.op} at {first.site or '?'})")
    return Finding("restored-elsewhere", g,
                   f"{g} was restored{at} to a state the full run did not have at the "
                   "resume step (saved at another point, or another generator's state)")

