"""How each generator starts the resumed training: the restore analysis.

For every generator both parts draw from (DataLoader workers' streams aside: theirs
follow from the base seed), the state the resumed run starts its training in is
compared with the full run's at step K, and the resumed run's preamble tells why:

- a *restore* is a ``set_rng_state``, ``setstate`` or ``set_state`` that changed the
  state (a reseed event not marked :data:`~rngtrace.log.UNCHANGED`), and not a state set
  back (:data:`~rngtrace.log.SET_BACK`: Lightning's ``isolate_rng`` and ``fork_rng`` set
  back what they read a moment before). On an explicit generator a gap counts too
  (``Generator.set_state`` is seen only as its effect, at the next draw);
- a *seeding* is any other reseed that changed the state (``manual_seed``, ``seed``).

A generator that starts where the full run was is ``restored`` (with the call that did
it) or ``same``; one that starts elsewhere is ``not-restored`` (with the seeding it
goes on from, and the full run's step it repeats when its state is one the full run
had), ``restored-elsewhere``, ``loading-draws``, ``reseed-after-restore`` or, made during
training from a stream that starts elsewhere, a ``consequence``.
"""

from __future__ import annotations

from ...log import SET_BACK, UNCHANGED, Draw, Event, Log
from ...text import plural
from .model import Finding
from .parts import Part, numbered

_RESTORES = ("set_rng_state", "set_state", "setstate")


def is_restore(e: Event) -> bool:
    """A state restored (not a seed, not a no-op, not a state set back); a gap of an
    explicit generator, whose ``set_state`` is seen only as its effect."""
    if e.kind == "gap":
        return e.generator.startswith("generator:")
    return (e.kind == "reseed" and not e.detail.endswith(UNCHANGED)
            and SET_BACK not in e.detail and any(r in e.detail for r in _RESTORES))


def is_seeding(e: Event) -> bool:
    """A seeding call that changed the state (``manual_seed``, ``seed`` ...)."""
    return (e.kind == "reseed" and not e.detail.endswith(UNCHANGED)
            and SET_BACK not in e.detail and not is_restore(e))


def call(e: Event) -> str:
    """What an event did, for a sentence: the call, or the state change seen."""
    if e.kind == "gap":
        return "a state change seen at its next draw (Generator.set_state?)"
    return e.detail.removesuffix(UNCHANGED).split(" (", 1)[0]


def _at(e: Event) -> str:
    return f" at {e.site}" if e.site else ""


def starts(full: Log, resumed: Log, a: Part, b: Part, p: int, k: int,
           fresh: set[str]) -> list[Finding]:
    """How each generator starts the resumed training, in order of first draw in the
    full run's part (see the module documentation). ``p`` is the resumed run's first
    training draw; ``fresh`` the numbered generators made during training."""
    first_b: dict[str, Draw] = {}
    for d in b.log.draws:
        if d.worker is None:
            first_b.setdefault(d.generator, d)
    out: list[Finding] = []
    wrong: set[str] = set()
    seen: set[str] = set()
    for d in a.log.draws:
        g = d.generator
        if d.worker is not None or g in seen or g not in first_b:
            continue
        seen.add(g)
        got = first_b[g].state_before
        if g in fresh:
            f = _made_in_training(g, d.state_before == got, _seeded_from(a.log, d), wrong)
        else:
            ctx = _Context(full, resumed, a.names.get(g, g), b.names.get(g, g), p, k)
            f = _why(g, d.state_before, got, ctx)
        if not f.right:
            wrong.add(g)
        out.append(f)
    return out


class _Context:
    """What explaining one generator needs: both logs, its names there, ``p`` and K."""

    def __init__(self, full: Log, resumed: Log, in_full: str, in_resumed: str, p: int,
                 k: int) -> None:
        self.full, self.resumed, self.p, self.k = full, resumed, p, k
        self.in_full, self.in_resumed = in_full, in_resumed
        self.events = [e for e in resumed.events
                       if e.generator == in_resumed and e.before <= p]

    def step_of(self, state: str | None) -> int | None:
        """The full run's step at which this generator (made before step K: the same
        object all along) was in ``state`` (the first draw from it), or None."""
        if state is None:
            return None
        for d in self.full.draws:
            if d.generator == self.in_full and d.worker is None and d.state_before == state:
                return d.step
        return None


def _why(g: str, wanted: str | None, got: str | None, c: _Context) -> Finding:
    restores = [e for e in c.events if is_restore(e)]
    seeds = [e for e in c.events if is_seeding(e)]
    k = c.k
    if not restores:
        if got == wanted:
            last = f" (last seeded by {call(seeds[-1])}{_at(seeds[-1])})" if seeds else ""
            return Finding("same", g, f"{g} starts step {k} where the full run was{last}")
        text = f"{g} was not restored: " + (
            f"its state goes on from {call(seeds[-1])}{_at(seeds[-1])}" if seeds else
            "no seeding or restore of it was recorded before training")
        s = c.step_of(got)
        if s is not None and s < k:
            text += f"; it starts step {k} in the state the full run had at step {s}"
        if g.startswith(("generator:", "numpy:Generator")):
            text += " (a restore with Generator.set_state before its first draw shows " \
                    "only in the states)"
        return Finding("not-restored", g, text)
    r = restores[-1]
    said = f"{g} was restored{_at(r)} ({call(r)})"
    if got == wanted:
        return Finding("restored", g, f"{said}: it starts step {k} where the full run was")
    later = [e for e in c.events[c.events.index(r) + 1:] if is_seeding(e)]
    if later:
        e = later[0]
        return Finding("reseed-after-restore", g, f"{said}, then reseeded: {call(e)}"
                       f"{_at(e)} overwrites the restored state")
    after = [d for d in c.resumed.draws if d.generator == c.in_resumed
             and d.worker is None and r.before <= d.index < c.p]
    if after and after[0].state_before == wanted:
        first = after[0]
        return Finding("loading-draws", g,
                       f"{g} was restored{_at(r)}, then {plural(len(after), 'extra draw')} "
                       f"while loading moved it ({first.op} at {first.site or '?'})")
    restored_to = after[0].state_before if after else got
    s = c.step_of(restored_to)
    where = (f": the full run's state at step {s} (a checkpoint saved at another step?)"
             if s is not None else " (saved at another point, or another generator's state)")
    return Finding("restored-elsewhere", g,
                   f"{said} to a state the full run did not have at step {k}{where}")


def _seeded_from(log: Log, first: Draw) -> str | None:
    """The stream a generator made in training was seeded from: the draw of a
    generator of fixed name just before its first, at the same line (a DataLoader's
    ``RandomSampler`` seeds its generator with a ``random_`` of the default one)."""
    for d in reversed(log.draws[:first.index]):
        if d.worker is None and not numbered(d.generator):
            return d.generator if d.site == first.site and d.op == "aten::random_" else None
    return None


def _made_in_training(g: str, right: bool, source: str | None,
                      wrong: set[str]) -> Finding:
    what = ("a DataLoader sampler's generator, seeded from " + source if source
            else "seeded from another stream")
    if right:
        return Finding("same", g, f"{g} is made during training ({what}) and starts "
                       "where the full run's did")
    if source is None or source in wrong:
        return Finding("consequence", g, f"{g} is made during training ({what}) and "
                       "starts elsewhere: a consequence of "
                       + (source if source else "the above"))
    return Finding("not-restored", g, f"{g} is made during training ({what}) and starts "
                   f"elsewhere, although {source} starts where the full run was")
