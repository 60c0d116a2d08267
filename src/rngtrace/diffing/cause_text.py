"""From cause candidates to :class:`~rngtrace.diffing.Cause` records: counts and words.

:func:`build` takes the grouped candidates :func:`rngtrace.diffing.causes.explain` found and
counts, for each, its own draws and values, what it shifts (later draws of its stream,
their values, the parameters they initialise), where it happens in each log and its
lines of code; then one function per kind of cause (:data:`_TEXT`) writes the line a
person reads and the detail that line needs (why a consequence is not a cause, that a
re-initialisation pass re-draws what was built earlier).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..log import Draw, Log
from ..text import fold_names, module_label, name_list, noun, plural
from .causes import Candidate, index_of
from .model import ONE_RUN, Cause, CauseKind

# causes that explain a shift by a moment rather than by draws of their own
_TRANSITIONS: tuple[CauseKind, ...] = ("seed", "state", "unknown", "consumption")
# causes that have a module, a parameter and a line of code of their own
_LOCATED: tuple[CauseKind, ...] = ("inserted", "removed", "reordered", "changed",
                                    "generator", "count", "consumption")


@dataclass
class _Context:
    a: Log
    b: Log
    labels: tuple[str, str]
    _first: dict[tuple[str | None, str], int] | None = None

    @property
    def first_a(self) -> dict[tuple[str | None, str], int]:
        """(model, target) -> index of its first draw in A (built when first needed)."""
        if self._first is None:
            self._first = {}
            for d in reversed(self.a.draws):
                if d.target is not None:
                    self._first[(d.model, d.target)] = d.index
        return self._first


def build(groups: list[Candidate], a: Log, b: Log, labels: tuple[str, str]) -> list[Cause]:
    """Turn grouped candidates into :class:`Cause` records, with what each shifts."""
    ctx = _Context(a, b, labels)
    return [_cause(g, ctx) for g in groups]


def _cause(g: Candidate, ctx: _Context) -> Cause:
    pieces = [p for m in g.members for p in m.pieces]
    st = g.stream
    sh_draws = [d for p in pieces if p.kind == "shifted" for d in st.a[p.a0:p.a1]]
    targets = tuple(dict.fromkeys(d.target for d in sh_draws
                                  if d.target is not None and not d.discarded))
    own = [d for m in g.members for d in m.draws]
    f = g.first
    transition = g.kind in _TRANSITIONS
    structural = [p for p in pieces if p.kind != "shifted"] or pieces
    a_index: int | None = None
    b_index: int | None = None
    if structural:
        p0 = min(structural, key=lambda p: p.hunk)
        a_index = index_of(st.a, p0.a0) if st.a else None
        b_index = index_of(st.b, p0.b0) if st.b else None
    if transition and g.draws:
        a_index, b_index = g.draws[0].index, g.b_draws[0].index if g.b_draws else None
    summary, detail = _TEXT.get(g.kind, _unknown)(g, ctx)
    if g.kind in ONE_RUN and targets and a_index is not None:
        detail = _join(detail, _reinit(sh_draws, a_index, ctx))
    if g.kind in ONE_RUN and f is not None and f.module is None \
            and not g.workers:
        detail = _join(detail, _loader(g, ctx))
    site = f.site if f is not None else None
    code = f.code if f is not None else None
    where = f if f is not None and g.kind in _LOCATED else None
    if g.kind == "state":
        site, code = g.events[0][1].site, g.events[0][1].detail
    elif transition and g.kind != "consumption":
        site = code = None
    roots = _roots(g)
    module = where.module if where is not None else None
    module_type = where.module_type if where is not None else None
    if roots and module is not None and roots[0] != module:
        module, module_type = roots[0], None
    return Cause(
        kind=g.kind, summary=summary, run=g.run, generator=st.name,
        module=module, module_type=module_type,
        target=where.target if where is not None else None,
        modules=tuple(roots or _modules(g)) if where is not None else (),
        site=site, code=code, a_index=a_index, b_index=b_index,
        draws=0 if transition else len(own),
        values=0 if transition else sum(d.numel for d in own if d.consumed),
        shifted_draws=len(sh_draws), shifted_values=sum(d.numel for d in sh_draws if d.consumed),
        shifted_targets=targets, consequence=g.consequence, detail=detail,
        hunks=tuple(sorted({p.hunk for p in pieces})),
        lines=_lines(own) if g.kind in ONE_RUN else (),
    )


def _modules(g: Candidate) -> list[str]:
    out: list[str] = []
    for m in g.members:
        f = m.first
        if f is not None and module_label(f.module) not in out:
            out.append(module_label(f.module))
    return out


def _roots(g: Candidate) -> list[str]:
    return list(dict.fromkeys(m.root for m in g.members if m.root is not None))


def _lines(own: list[Draw]) -> tuple[tuple[str | None, str | None, int], ...]:
    counts: dict[tuple[str | None, str | None], int] = {}
    for d in own:
        counts[(d.site, d.code)] = counts.get((d.site, d.code), 0) + 1
    return tuple((s, c, n) for (s, c), n in counts.items())


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _reinit(sh_draws: list[Draw], at: int, ctx: _Context) -> str:
    """Say so when a cause shifts parameters built before it: a second init pass."""
    again = [d for d in sh_draws if d.target is not None and not d.discarded
             and ctx.first_a.get((d.model, d.target), at) < at < d.index]
    earlier = list(dict.fromkeys(str(d.target) for d in again))
    if not earlier:
        return ""
    again = again[:1]
    where = f" ({again[0].site})" if again[0].site else ""
    return (f"It also shifts {plural(len(earlier), 'parameter')} "
            f"built before it ({earlier[0]}...): a re-initialisation pass{where} re-draws "
            f"every module after construction (Hugging Face's post_init, "
            f"model.apply(_init_weights)), so those draws come after the insertion too.")


_LOADER = "DataLoader.__iter__"  # the api of the draw that starts a DataLoader's iterator


def _loader(g: Candidate, ctx: _Context) -> str:
    """Draws outside modules made while a DataLoader was iterated in one run only: the
    other run's DataLoader draws them in worker processes, which its log does not see."""
    here, log, there = ((ctx.labels[1], ctx.b, ctx.labels[0]) if g.kind == "inserted"
                        else (ctx.labels[0], ctx.a, ctx.labels[1]))
    own = [d for m in g.members for d in m.draws]
    first = min(d.index for d in own)
    start = next((d for d in reversed(log.draws[:first])
                  if d.api is not None and d.api.endswith(_LOADER)), None)
    if start is None or any(d.site == start.site for d in own):
        return ""
    return (f"{here} makes them while a DataLoader is iterated (its iterator starts at draw "
            f"{start.index}), in its own process: num_workers=0. {there} does not: with "
            f"num_workers > 0 the Dataset draws in worker processes, from generators seeded "
            f"per worker, and only the iterator's own draw stays here.")


def _names(modules: list[str], limit: int = 3) -> str:
    return name_list(modules, limit)


def _count(members: int, draws: int) -> str:
    if members > 1 and draws % members == 0:
        return f"{plural(draws // members, 'draw')} each"
    return plural(draws, "draw")


def _only_in(g: Candidate, ctx: _Context) -> tuple[str, str]:
    here = ctx.labels[1] if g.kind == "inserted" else ctx.labels[0]
    there = ctx.labels[0] if g.kind == "inserted" else ctx.labels[1]
    f = g.first
    own = sum(len(m.draws) for m in g.members)
    if g.workers and f is not None:
        ws = ", ".join(map(str, sorted(g.workers)))
        way = "into" if g.kind == "removed" else "out of"
        return (f"draws moved {way} DataLoader workers: {f.api or f.op} at {f.site}, "
                f"{_count(1, own)} in {here}'s own process, in "
                f"{noun(len(g.workers), 'worker')} {ws} of {there}",
                "With num_workers > 0 the Dataset draws in worker processes, each from its "
                "own generator (seeded from the DataLoader's base seed): the process's "
                "stream no longer has these draws, and what it draws after them shifts.")
    if f is None or f.module is None:
        return f"draws only in {here} outside any module ({f.api if f else '?'}), " \
               f"{_count(1, own)}", ""
    roots = _roots(g)
    if roots:
        return f"module only in {here}: {_subtrees(g, roots)}, {_count(len(roots), own)}", ""
    if g.new_target:
        params = list(dict.fromkeys(str(m.first.target) for m in g.members
                                    if m.first is not None))
        return (f"parameter only in {here}: {_names(params)} (in {f.module_type} "
                f"{module_label(f.module)}), {_count(len(params), own)}", "")
    kind_of = f" ({f.module_type})" if f.module_type else ""
    return f"draws only in {here}: in {_names(_modules(g))}{kind_of}, " \
           f"{_count(len(g.members), own)}", _unread(g, ctx)


def _unread(g: Candidate, ctx: _Context) -> str:
    """A module-level record that may hold draws of calls the light mode was not reading
    (an ``unread`` event right before it): say so, with the calls."""
    f = g.first
    log = ctx.b if g.kind == "inserted" else ctx.a
    for e in log.events:
        if f is not None and e.kind == "unread" and e.generator == f.generator \
                and e.before == f.index:
            return (f"The light mode was not reading some module calls then: {e.detail}. "
                    "Record again (a window reads every call in its first steps) or with "
                    "level='op' to see which drew.")
    return ""


def _subtrees(g: Candidate, roots: list[str]) -> str:
    """``blocks.0.attn.linear, blocks.1.attn.linear (Linear)``, ``encoder.layer.12 (6
    modules in it draw)``, ``lora_A in 24 places (enc.0.q.lora_A, ...)``."""
    f = g.first
    inside = {module_label(m.first.module) for m in g.members if m.first is not None}
    what = _names(roots)
    if len(fold_names(roots)) < len(roots):
        what += f" ({len(roots):,} modules)"
    if inside == set(roots):
        return f"{what} ({f.module_type})" if f is not None and f.module_type else what
    if len(roots) > 1:
        return what
    n = len(inside)
    it = "it" if len(roots) == 1 else "them"
    return f"{what} ({plural(n, 'module')} in {it} draw)"


def _reordered(g: Candidate, ctx: _Context) -> tuple[str, str]:
    pairs = []
    for m in g.members:
        mf = m.first
        moved = module_label(mf.module) if mf is not None else "?"
        jumped = [j for j in m.jumped if j != moved]
        pairs.append(f"{moved} and {_names(jumped)}" if jumped else moved)
    text = f"definitions reordered: {pairs[0]} draw in the other order"
    if len(pairs) > 1:
        text += f"; also {_names(pairs[1:])}"
    return text + " (same draws, other order)", ""


def _generator(g: Candidate, ctx: _Context) -> tuple[str, str]:
    gb = g.partner.stream.name if g.partner is not None else "?"
    return (f"different generator: {_names(_modules(g))} draws from {g.stream.name} in "
            f"{ctx.labels[0]}, from {gb} in {ctx.labels[1]}", "")


def _changed(g: Candidate, ctx: _Context) -> tuple[str, str]:
    la, lb = ctx.labels
    f = g.first
    fb = g.b_draws[0] if g.b_draws else None
    if f is None or fb is None:
        return "changed", ""
    if (f.module, f.target) != (fb.module, fb.target):
        return (f"renamed: {module_label(f.module)} in {la} is "
                f"{module_label(fb.module)} in {lb} (same draws, same values)", "")
    what = f.target or module_label(f.module)
    if tuple(f.shape) != tuple(fb.shape):
        return (f"shape changed: {what} draws {tuple(f.shape)} in {la}, "
                f"{tuple(fb.shape)} in {lb}", "")
    if f.args != fb.args:
        return f"arguments changed: {what} draws with {f.args} in {la}, {fb.args} in {lb}", ""
    return f"changed: {what} ({f.dtype} in {la}, {fb.dtype} in {lb})", ""


def _count_changed(g: Candidate, ctx: _Context) -> tuple[str, str]:
    f = g.first
    call = f"{f.api} at {f.site}" if f is not None else "a call"
    own = sum(len(m.draws) for m in g.members)
    if g.pieces[0].kind == "changed":
        what = "drew another shape"
    else:
        run = ctx.labels[1] if g.pieces[0].kind == "inserted" else ctx.labels[0]
        what = f"drew {plural(own, 'more time', 'more times')} in {run}"
    return (f"{call} {what}", "A data-dependent loop (rejection sampling) in an already "
            "shifted stream: a consequence, not a cause.")


def _seed(g: Candidate, ctx: _Context) -> tuple[str, str]:
    la, lb = ctx.labels
    name = g.stream.name
    if g.consequence:
        return (f"{name} starts from another seed",
                f"It was seeded after {g.detail} had shifted (a DataLoader seeds its "
                f"sampler from the default generator): a consequence, not a cause.")
    ga = ctx.a.generators.get(g.stream.pair.a_name or "")
    gb = ctx.b.generators.get(g.stream.pair.b_name or "")
    sa = ga.initial_seed if ga else None
    sb = gb.initial_seed if gb else None
    if sa != sb:
        return f"different seed on {name}: {sa} in {la}, {sb} in {lb}", ""
    return (f"{name} starts from another state with the same seed ({sa})",
            "Something drew from it or set its state before the window opened.")


def _state(g: Candidate, ctx: _Context) -> tuple[str, str]:
    parts = []
    for run, e in g.events:
        who = ctx.labels[0] if run == "a" else ctx.labels[1]
        if e.kind == "reseed":
            parts.append(f"{who} calls {e.detail} on {e.generator} before draw {e.before}"
                         + (f" at {e.site}" if e.site else ""))
        elif e.kind == "unread":  # the light mode's learned quiet calls
            parts.append(f"in {who}, module calls the light mode was no longer reading "
                         f"drew from {e.generator} before draw {e.before} ({e.detail})")
        else:
            parts.append(f"the state of {e.generator} changed in {who} before draw "
                         f"{e.before} with no traced draw")
    return "state changed inside one run: " + "; ".join(parts), ""


def _consumption(g: Candidate, ctx: _Context) -> tuple[str, str]:
    la, lb = ctx.labels
    f = g.first
    if f is not None and f.op == "module":
        where = (f"the code outside modules ending at draw {f.index}" if f.module is None
                 else f"the call of {module_label(f.module)} ({f.module_type}) at draw "
                      f"{f.index}")
        return (f"{where} consumed {g.stream.name} differently in {la} and {lb}",
                "A module-level log sees that the state moved, not which draw moved it: "
                "record with level='op' to name it.")
    fb = g.b_draws[0] if g.b_draws else f
    return (f"the same call consumed {g.stream.name} differently: {f.op if f else '?'} "
            f"in {module_label(f.module) if f else '?'} (draw {f.index if f else '?'} "
            f"of {la}, {fb.index if fb else '?'} of {lb}) left other states",
            "The same op from the same state: another torch version, another device or "
            "kernel, or a kernel whose consumption depends on the data.")


def _unknown(g: Candidate, ctx: _Context) -> tuple[str, str]:
    f = g.first
    return (f"{g.stream.name} moved with nothing recorded to explain it (before draw "
            f"{f.index if f else '?'} of {ctx.labels[0]})", "")


_TEXT: dict[CauseKind, Callable[[Candidate, _Context], tuple[str, str]]] = {
    "inserted": _only_in, "removed": _only_in, "reordered": _reordered,
    "generator": _generator, "changed": _changed, "count": _count_changed, "seed": _seed,
    "state": _state, "consumption": _consumption, "unknown": _unknown,
}
