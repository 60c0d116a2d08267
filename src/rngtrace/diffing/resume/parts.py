"""The two parts a resume check compares: the full run from step K, the resumed run's
training, each with steps shifted and numbered generators paired by what made them.

A run resumed after step K starts its training where its draws repeat, kind for kind,
the full run's draws of step K (:func:`split`); what comes before is its preamble.
The full run loses the draws the checkpoint already holds (:func:`before_save`) and the
last draws of generators made before K that end at K (:func:`ended`). Numbered
generators (a DataLoader sampler's per-epoch ``generator:N``) are renumbered in each part
and paired across the parts by what made them (:func:`pair_numbered`), not by their
states: a resumed run that replays the full run's first epoch seeds its second
sampler as the full run seeded its first.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

from ...log import Draw, Event, Log
from ...text import plural


class Part(NamedTuple):
    """The draws of one run that a resume check compares, renumbered."""

    log: Log
    names: dict[str, str]  # new name -> the name in the run's own log
    origin: list[int]  # each draw's index in the run's own log


def sig(d: Draw) -> tuple[Any, ...]:
    return (d.op, d.module, d.target, d.shape, d.generator, d.numel,
            tuple(sorted(d.args.items())))


def exact(d: Draw) -> tuple[Any, ...]:
    return (*sig(d), d.state_before, d.state_after)


def kind(d: Draw) -> tuple[Any, ...]:
    """What a draw is, with numbered generators by kind only (their numbers differ)."""
    s = sig(d)
    return (*s[:4], numbered(d.generator) or d.generator, *s[5:])


def numbered(name: str) -> str | None:
    """``"generator:"`` for ``generator:3``, ``"python:Random#"`` for ``python:Random#2``:
    names numbered in order of first use, renumbered within a part; None for others."""
    for k, sep in (("generator", ":"), ("python:Random", "#"), ("numpy:Generator", "#")):
        if name.startswith(k + sep) and name[len(k) + 1:].isdigit():
            return k + sep
    return None


def split(resumed: Log, step_k: list[Draw]) -> int:
    """Index of the resumed run's first training draw: where its step-0 draws end with
    the longest run that repeats, kind for kind, ``step_k`` (the full run's draws of
    step K); failing that, after its last construction draw or reseed before its first
    optimizer step."""
    main = [d for d in resumed.draws if d.worker is None]
    zero = [d for d in main if d.step == 0]
    for m in range(min(len(step_k), len(zero)), 0, -1):  # the longest tail that repeats
        if [kind(d) for d in zero[-m:]] == [kind(d) for d in step_k[-m:]]:
            return zero[-m].index
    p = 0
    for d in zero:
        if d.phase == "init":
            p = d.index + 1
    for e in resumed.events:
        if e.kind == "reseed" and e.before <= len(zero):
            p = max(p, e.before)
    return p


def ended(draws: list[Draw], k: int) -> set[str]:
    """Numbered generators of the full run first used before step ``k`` and last at step
    ``k``: the tail of an object the checkpoint did not carry (a DataLoader sampler's
    per-epoch generator draws a last ``randperm`` when the epoch's loop asks for the batch
    after the last one, after step K). The resumed run never had them."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for d in draws:
        first.setdefault(d.generator, d.step)
        last[d.generator] = d.step
    return {g for g in first if first[g] < k and last[g] == k and numbered(g)}


def part(log: Log, keep: Callable[[Draw], bool], shift: int,
         keep_event: Callable[[Event], bool]) -> Part:
    """The kept draws, renumbered, steps shifted, numbered generators renumbered in
    order of first use in the part; events renumbered to match. A part starts in the
    middle of its streams: its generators carry no seed (the process's seed at the
    window's start says nothing of step K) and their first state in the part, except
    numbered ones, which carry nothing: they pair by name (:func:`pair_numbered`)."""
    draws: list[Draw] = []
    new_index: dict[int, int] = {}
    names: dict[str, str] = {}  # original -> new
    counts: dict[str, int] = {}
    first: dict[str, str | None] = {}
    for d in log.draws:
        if not keep(d):
            continue
        new_index[d.index] = len(draws)
        gen = names.get(d.generator)
        if gen is None:
            k = numbered(d.generator)
            if k is None:
                gen = d.generator
            else:
                counts[k] = counts.get(k, 0) + 1
                gen = f"{k}{counts[k]}"
            names[d.generator] = gen
        first.setdefault(gen, d.state_before)
        if d.worker is not None:
            gen = f"{gen}@worker{d.worker}"
        draws.append(dataclasses.replace(d, index=len(draws), step=d.step + shift,
                                         generator=gen))
    events = []
    kept = list(new_index)  # increasing
    for e in log.events:
        if keep_event(e):
            j = bisect.bisect_left(kept, e.before)
            events.append(dataclasses.replace(e, before=j if j < len(kept) else len(draws),
                                              generator=names.get(e.generator, e.generator)))
    gens = {names[n]: dataclasses.replace(g, name=names[n], initial_seed=None,
                                          state=None if numbered(n) else first.get(names[n]))
            for n, g in log.generators.items() if n in names}
    out = Log(draws=draws, events=events, generators=gens, meta=dict(log.meta),
              steps=max((d.step for d in draws), default=0), level=log.level)
    return Part(out, {new: old for old, new in names.items()}, list(new_index))


def pair_numbered(a: Part, b: Part) -> Part:
    """``b`` with its numbered generators renamed after ``a``'s that were made the same
    way: the same kind, first drawn by the same op at the same line in the same step
    (the n-th such in each part pair up); those left pair in order of first use (a
    generator made before training, which one run first draws elsewhere), and the rest
    get numbers after ``a``'s."""
    made_a, made_b = _made(a), _made(b)
    wanted: dict[tuple[Any, ...], list[str]] = {}
    for name, key in made_a.items():
        wanted.setdefault(key, []).append(name)
    rename: dict[str, str] = {}
    left = []
    for name, key in made_b.items():
        if wanted.get(key):
            rename[name] = wanted[key].pop(0)
        else:
            left.append(name)
    spare = [n for names in wanted.values() for n in names]
    spare.sort(key=list(made_a).index)
    taken = set(made_a)
    for name in left:
        k = str(numbered(name))
        same = next((n for n in spare if n.startswith(k)), None)
        if same is not None:
            spare.remove(same)
            rename[name] = same
            continue
        n = 1 + max((int(t[len(k):]) for t in taken | set(rename.values())
                     if t.startswith(k)), default=0)
        rename[name] = f"{k}{n}"
    return _renamed(b, rename) if any(k != v for k, v in rename.items()) else b


def _made(p: Part) -> dict[str, tuple[Any, ...]]:
    """What made each numbered generator of a part: its kind and its first draw's op,
    line and step, in order of first use."""
    out: dict[str, tuple[Any, ...]] = {}
    for d in p.log.draws:
        if d.worker is None and numbered(d.generator):
            out.setdefault(d.generator, (numbered(d.generator), d.op, d.site, d.step))
    return out


def _renamed(p: Part, rename: dict[str, str]) -> Part:
    def new(name: str) -> str:
        base, at, worker = name.partition("@")
        return rename.get(base, base) + at + worker

    log = p.log
    out = Log(draws=[dataclasses.replace(d, generator=new(d.generator)) for d in log.draws],
              events=[dataclasses.replace(e, generator=new(e.generator))
                      for e in log.events],
              generators={new(n): dataclasses.replace(g, name=new(n))
                          for n, g in log.generators.items()},
              meta=log.meta, steps=log.steps, level=log.level)
    return Part(out, {new(n): old for n, old in p.names.items()}, p.origin)


def before_save(a: Part, b: Log) -> list[int]:
    """Indices (in the full log) of the draws of step K made before the checkpoint was
    saved: where the resumed run starts a stream in a state the full run reached only
    after some of its step-K draws (the loop drew after the optimizer step, then
    saved), those draws came before the save."""
    start_b: dict[str, str | None] = {}
    for d in b.draws:
        start_b.setdefault(d.generator, d.state_before)
    streams: dict[str, list[Draw]] = {}
    for d in a.log.draws:
        streams.setdefault(d.generator, []).append(d)
    out: list[int] = []
    for g, ds in streams.items():
        want = start_b.get(g)
        j = next((i for i, d in enumerate(ds) if d.state_before == want), 0)
        if j and all(d.step == 0 for d in ds[:j]):
            out += [a.origin[d.index] for d in ds[:j]]
    return out


def streams(log: Log) -> dict[str, list[Draw]]:
    out: dict[str, list[Draw]] = {}
    for d in log.draws:
        out.setdefault(d.generator, []).append(d)
    return out


def compare(a: Log, b: Log, k: int) -> list[str]:
    """One line per stream whose draws differ, naming the first step where they do."""
    sa, sb = streams(a), streams(b)
    lines = []
    for g in [*sa, *(n for n in sb if n not in sa)]:
        da, db = sa.get(g, []), sb.get(g, [])
        if [exact(d) for d in da] == [exact(d) for d in db]:
            continue
        if not da or not db:
            lines.append(f"{g}: drawn from step {k} only in "
                         f"{'the resumed run' if not da else 'the full run'} "
                         f"({plural(len(da or db), 'draw')})")
            continue
        n = sum(1 for x, y in zip(da, db, strict=False) if exact(x) != exact(y))
        n += abs(len(da) - len(db))
        first = next((x for x, y in zip(da, db, strict=False) if exact(x) != exact(y)),
                     da[min(len(da), len(db)) - 1])
        lines.append(f"{g}: step {first.step + k} (of the full run) draws other values: "
                     f"{n} of {max(len(da), len(db))} draws differ")
    return lines
