"""An eager log against a compiled one: pair the draws, and say why their values differ.

Under ``torch.compile`` with Inductor, a graph's random nodes draw from Inductor's own
Philox streams, seeded by one draw of the default generator per graph call (see
:mod:`rngtrace.recording.compiled`); the recorder logs one draw per random node, with
the generator states around that seed draw and ``Draw.graph`` set. Compared with an
eager run of the same model, the draws are the same places (module, op, shape) but
other values, and the dispatcher names dropout differently (eager CPU
``aten::bernoulli_``, the compiled node's original op ``aten::native_dropout``).

:func:`comparable` makes the two logs comparable before the alignment: dropout's names
and arguments are made one, the ``_orig_mod.`` of torch.compile's wrapper is dropped from
module paths, the compiled draws' states are marked as Inductor's (a compiled draw
never claims the values of an eager draw from the same state), and a compiled
checkpoint recompute (which consumes nothing) pairs with the eager one (which does).
:func:`explain` then gives the shifts that follow the first compiled draw one cause,
``"compiled"``, instead of the seed or consumption causes they would otherwise get, and
puts the original draws back into the hunks.

Graphs of other backends (``Draw.graph == "fx"``) run the eager kernels: their draws
take the same values as eager ones and only dropout's name needs making one.

>>> from rngtrace.log import Draw, Log
>>> def d(i, op, state, graph=None):
...     return Draw(i, op, "drop", "Dropout", None, "forward", 0, (2,), "float32", "cpu",
...                 2, {}, "default:cpu", state, state + "'", True, None, None, None,
...                 graph=graph)
>>> eager = Log(draws=[d(0, "aten::bernoulli_", "s0")])
>>> comp = Log(draws=[d(0, "aten::native_dropout", "s0", graph="0/0:forward")])
>>> a, b, how = comparable(eager, comp)
>>> b.draws[0].op, b.draws[0].state_before, how.side, how.calls
('aten::bernoulli_', 'inductor:s0', 'b', 1)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..log import Draw, Log
from ..text import plural
from .model import Cause, Diff, Hunk, Side
from .usage import unused_consumers

_DROPOUT = frozenset({"aten::bernoulli_", "aten::native_dropout", "aten::bernoulli",
                      "aten::dropout", "aten::feature_dropout"})
_AS = "aten::bernoulli_"  # the one name dropout gets in the copies compared
_ORIG = "_orig_mod"

WHY = ("compiled: Inductor draws dropout masks from its own Philox streams, seeded by one "
       "draw of the default generator per graph call")


@dataclass(frozen=True, slots=True)
class Compiled:
    """What :func:`comparable` found: which side ran Inductor graphs, and how much."""

    side: Side  # the log with Inductor-compiled draws
    calls: int  # graph calls (distinct seed draws) in that log
    draws: int  # draws made inside Inductor graphs
    first: int  # index of the first of them


def _inductor(d: Draw) -> bool:
    return d.graph is not None and d.graph != "fx"


def _calls(draws: list[Draw]) -> int:
    """Graph calls: runs of compiled draws sharing one seed draw (one state pair)."""
    seen = set()
    for d in draws:
        seen.add((d.graph, d.generator, d.state_before, d.state_after, d.step))
    return len(seen)


def _strip(path: str | None) -> str | None:
    if path is None or _ORIG not in path:
        return path
    return ".".join(p for p in path.split(".") if p != _ORIG)


def _copy(log: Log, compiled: bool, one_model: bool) -> Log:
    """A copy of ``log`` as compared (the draws are rewritten, the log is not)."""
    out = []
    for d in log.draws:
        change: dict = {}
        if one_model and d.model is not None:  # "M" in one run, "OptimizedModule" in the other
            change["model"] = None
        if d.op in _DROPOUT:
            change.update(op=_AS, args={})
        if d.module is not None and _ORIG in d.module:
            change.update(module=_strip(d.module), target=_strip(d.target))
        if compiled and _inductor(d):
            change["state_before"] = f"inductor:{d.state_before}"
        if d.replay and not d.consumed:  # a compiled recompute reads saved seeds; an
            change["consumed"] = True     # eager one restores the state and draws again
        out.append(dataclasses.replace(d, **change) if change else d)
    return dataclasses.replace(log, draws=out)


def comparable(a: Log, b: Log) -> tuple[Log, Log, Compiled | None]:
    """``a`` and ``b`` as the alignment should see them, and what was compiled; the logs
    themselves when neither ran a compiled graph."""
    ca = [d for d in a.draws if d.graph is not None]
    cb = [d for d in b.draws if d.graph is not None]
    if not ca and not cb:
        return a, b, None
    ia = [d for d in ca if _inductor(d)]
    ib = [d for d in cb if _inductor(d)]
    how = None
    if bool(ia) != bool(ib):  # one side compiled with Inductor: its values are its own
        side: Side = "a" if ia else "b"
        ds = ia or ib
        how = Compiled(side, _calls(ds), len(ds), ds[0].index)
    one = all(len({d.model for d in log.draws} - {None}) <= 1 for log in (a, b))
    return (_copy(a, bool(ia) and not ib, one), _copy(b, bool(ib) and not ia, one), how)


def explain(d: Diff, a: Log, b: Log, how: Compiled | None) -> Diff:
    """``d`` (of the :func:`comparable` copies) with the original draws put back and,
    when one side was compiled, one ``"compiled"`` cause for the shifts it made."""
    hunks = [dataclasses.replace(h, a_draws=tuple(a.draws[x.index] for x in h.a_draws),
                                 b_draws=tuple(b.draws[x.index] for x in h.b_draws))
             for h in d.hunks]
    d = dataclasses.replace(d, hunks=tuple(hunks), a=a, b=b,
                            unused_a=tuple(unused_consumers(a)),
                            unused_b=tuple(unused_consumers(b)))
    if how is None:
        return d
    mine = [n for n, h in enumerate(hunks) if h.kind == "shifted" and _after(h, how)]
    if not mine:
        return d
    # Causes all of whose hunks the compilation explains go; the others stay, renumbered.
    taken = set(mine)
    keep = [c for c in d.causes if not c.hunks or not set(c.hunks) <= taken]
    renumber = {id(c): n + 1 for n, c in enumerate(keep)}
    old = {n: renumber.get(id(c)) for n, c in enumerate(d.causes)}
    out = []
    for n, h in enumerate(hunks):
        at = 0 if n in taken else (old.get(h.cause) if h.cause is not None else None)
        out.append(dataclasses.replace(h, cause=at))
    log = a if how.side == "a" else b
    first = log.draws[how.first]
    shifted = [x for n in mine for x in hunks[n].draws]
    label = d.labels[0 if how.side == "a" else 1]
    cause = Cause(
        kind="compiled", summary=WHY, run=how.side, generator=first.generator,
        module=first.module, module_type=first.module_type, target=None,
        modules=tuple(dict.fromkeys(x.where for x in shifted)), site=first.site,
        code=first.code, a_index=first.index if how.side == "a" else None,
        b_index=first.index if how.side == "b" else None,
        shifted_draws=len(shifted), shifted_values=sum(x.numel for x in shifted),
        shifted_targets=tuple(dict.fromkeys(x.target for x in shifted if x.target)),
        detail=(f"{label} made {plural(how.draws, 'draw')} inside compiled graphs in "
                f"{plural(how.calls, 'graph call')}; paired with the other run's by module "
                f"and original op (dropout: aten::native_dropout ~ aten::bernoulli_; the model's "
                f"name and torch.compile's _orig_mod. left out)"),
        hunks=tuple(mine))
    return dataclasses.replace(d, hunks=tuple(out), causes=(cause, *keep))


def _after(h: Hunk, how: Compiled) -> bool:
    """Does the hunk lie at or after the first compiled draw (on the compiled side)?"""
    start = h.a_index if how.side == "a" else h.b_index
    return start >= how.first
