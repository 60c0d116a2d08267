"""Recompute: an activation checkpoint's recompute must draw what its forward drew.

A checkpointed region runs its forward again during backward; with dropout inside, the
recompute must replay the forward's masks, or the gradients are taken for other masks
than the loss. A backward draw is a recompute of a forward draw when both are of the
same module, op, shape and generator in the same optimizer step. In eager code (and
``aot_eager`` graphs) it replays when it starts from the state its forward started from
(``preserve_rng_state=True`` restores it; a hand-written checkpoint may too). A replay
inside a graph consumes nothing and repeats the forward by construction: an Inductor
backward graph reading the forward graph's seeds, an ``aot_eager`` graph's
``run_with_rng_state``. A random node of an Inductor backward graph that draws seeds of
its own recomputes the masks with new randomness.
"""

from __future__ import annotations

from ..log import Draw, Log
from ..text import plural
from .common import Source, changed, describe, drawn, inductor, names
from .model import Evidence, Finding

_EVIDENCE = 3  # recomputes shown as evidence


def _forwards(log: Log) -> dict[tuple, list[Draw]]:
    out: dict[tuple, list[Draw]] = {}
    for d in log.draws:
        if d.phase == "forward" and drawn(d) and not d.replay and d.worker is None:
            out.setdefault(_key(d), []).append(d)
    return out


def _key(d: Draw) -> tuple:
    return (d.step, d.model, d.module, d.op, d.shape, d.generator)


def mismatches(log: Log) -> list[tuple[Draw, Draw]]:
    """(recompute, the forward draw it should repeat) for each recompute that does not."""
    fwd = _forwards(log)
    out = []
    for d in log.draws:
        if d.phase != "backward" or d.worker is not None or d.state_before is None:
            continue
        match = fwd.get(_key(d))
        if not match or not d.op:
            continue
        if d.replay and not d.consumed:
            continue  # replayed from a saved state inside the graph (Inductor's seeds,
            # aot_eager's run_with_rng_state): the forward's values by construction
        if inductor(d):
            if d.consumed:
                out.append((d, match[0]))
            continue
        if not any(f.state_before == d.state_before for f in match):
            prior = [f for f in match if f.index < d.index]
            out.append((d, prior[-1] if prior else match[0]))
    return out


def recomputes(src: Source) -> list[Finding]:
    """One finding per log: every recompute that draws other values than its forward."""
    found = mismatches(src.log)
    if not found:
        return []
    mods = names([describe(r) for r, _ in found])
    compiled = [r for r, _ in found if inductor(r)]
    if compiled:
        graphs = names([r.graph or "" for r in compiled])
        summary = (f"compiled backward graph {graphs} draws fresh random numbers for {mods} "
                   f"({plural(len(found), 'draw')}) instead of replaying "
                   "the forward's")
        why = ("the backward recomputes the masks with new randomness, so the gradients are "
               "taken for other masks than the loss was (the partitioner recomputes random "
               "ops when torch._functorch.config.activation_memory_budget is below 1.0)")
        fix = ("keep activation_memory_budget at 1.0 for models with dropout, or save the "
               "masks (do not let the partitioner recompute random ops)")
    else:
        r, f = found[0]
        fresh = not any(e.generator == r.generator and f.index < e.before <= r.index
                        and changed(e) for e in src.log.events)
        how = ("nothing set the generator back before it: the recompute continued the "
               "stream (checkpoint(..., preserve_rng_state=False))" if fresh else
               "the generator was set to another state than the forward's before it")
        summary = (f"activation-checkpoint recompute of {mods} draws from other states than "
                   f"its forward ({plural(len(found), 'draw')}): {how}")
        why = ("the recompute draws other dropout masks than the forward did, so the "
               "gradients are taken for other masks than the loss was")
        fix = ("checkpoint with preserve_rng_state=True (torch's default) wherever a "
               "checkpointed region draws random numbers")
    evidence = []
    for r, f in found[:_EVIDENCE]:
        evidence += [Evidence.of(f, src.label, src.rank, "forward"),
                     Evidence.of(r, src.label, src.rank, "recompute")]
    gens = tuple(dict.fromkeys(r.generator for r, _ in found))
    where = tuple(dict.fromkeys(describe(r) for r, _ in found))
    return [Finding("recompute-differs", "error", summary, gens, where, tuple(evidence),
                    why, fix, (src.label,))]
