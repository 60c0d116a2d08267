"""From cause candidates to :class:`~rngtrace.diffing.Cause` records: counts and summaries.

:func:`build` takes the grouped candidates :func:`rngtrace.diffing.causes.explain` found and
counts, for each, its own draws and values, what it shifts (later draws of its stream,
their values, the parameters they initialise) and where it happens in each log, then
writes the one line a person reads (:func:`_describe`), which asks each log whether it
has the module or parameter at all (:class:`_Known`).
"""

from __future__ import annotations

from ..log import Draw, Log, module_label
from .causes import Candidate, index_of
from .model import Cause

# causes that explain a shift by a moment rather than by draws of their own
_TRANSITIONS = ("seed", "state", "unknown", "consumption")
# causes that have a module, a parameter and a line of code of their own
_LOCATED = ("inserted", "removed", "reordered", "changed", "generator", "count",
            "consumption")


def build(groups: list[Candidate], a: Log, b: Log, labels: tuple[str, str]) -> list[Cause]:
    """Turn grouped candidates into :class:`Cause` records, with what each shifts."""
    known_a, known_b = _Known(a), _Known(b)
    out = []
    for g in groups:
        pieces = [p for m in g.members for p in m.pieces]
        shifted = [p for p in pieces if p.kind == "shifted"]
        st = g.stream
        sh_draws = [d for p in shifted for d in st.a[p.a0:p.a1]]
        targets = dict.fromkeys(d.target for d in sh_draws
                                if d.target is not None and not d.discarded)
        own = [d for m in g.members for d in m.draws]
        modules: list[str] = []
        for m in g.members:
            f = m.first
            if f is not None and module_label(f.module) not in modules:
                modules.append(module_label(f.module))
        f = g.first
        transition = g.kind in _TRANSITIONS
        structural = [p for p in pieces if p.kind != "shifted"] or pieces
        p0 = min(structural, key=lambda p: p.hunk)
        a_index: int | None = index_of(st.a, p0.a0) if st.a else None
        b_index: int | None = index_of(st.b, p0.b0) if st.b else None
        if transition and g.draws:
            a_index, b_index = g.draws[0].index, g.b_draws[0].index if g.b_draws else None
        ga = a.generators.get(st.pair.a_name or "")
        gb = b.generators.get(st.pair.b_name or "")
        seeds = (ga.initial_seed if ga else None, gb.initial_seed if gb else None)
        summary, detail = _describe(g, modules, own, known_a, known_b, labels, seeds)
        site = f.site if f is not None else None
        code = f.code if f is not None else None
        where = f if f is not None and g.kind in _LOCATED else None
        if g.kind == "state":
            site, code = g.events[0][1].site, g.events[0][1].detail
        elif transition and g.kind != "consumption":
            site = code = None
        out.append(Cause(
            kind=g.kind, summary=summary, run=g.run, generator=st.name,
            module=where.module if where is not None else None,
            module_type=where.module_type if where is not None else None,
            target=where.target if where is not None else None,
            modules=tuple(modules) if where is not None else (), site=site, code=code,
            a_index=a_index, b_index=b_index,
            draws=0 if transition else len(own),
            values=0 if transition else sum(d.numel for d in own if d.consumed),
            shifted_draws=len(sh_draws),
            shifted_values=sum(d.numel for d in sh_draws if d.consumed),
            shifted_targets=tuple(targets), consequence=g.consequence, detail=detail,
            hunks=tuple(sorted({p.hunk for p in pieces})),
        ))
    return out


class _Known:
    """Which modules (or their descendants) and targets a log has, for a few queries."""

    def __init__(self, log: Log) -> None:
        self._log = log
        self._paths: set[tuple[str | None, str]] | None = None
        self._targets: set | None = None

    def module(self, model: str | None, path: str) -> bool:
        if self._paths is None:
            paths = {(d.model, d.module) for d in self._log.draws if d.module is not None}
            paths.update(self._log.called or ())
            level = paths
            while level:  # add the ancestors, one level at a time (levels shrink fast)
                level = {(m, p.rpartition(".")[0]) for m, p in level if p} - paths
                paths |= level
            self._paths = paths
        return (model, path) in self._paths

    def target(self, model: str | None, target: str) -> bool:
        if self._targets is None:
            self._targets = {(d.model, d.target) for d in self._log.draws
                             if d.target is not None}
            self._targets.update(self._log.with_grad or ())
        return (model, target) in self._targets


def _names(modules: list[str]) -> str:
    if len(modules) <= 3:
        return ", ".join(modules)
    return f"{', '.join(modules[:3])} and {len(modules) - 3} more"


def _count(members: int, draws: int) -> str:
    if members > 1 and draws % members == 0:
        return f"{draws // members} draw{'s' if draws // members != 1 else ''} each"
    return f"{draws} draw{'s' if draws != 1 else ''}"


def _describe(g: Candidate, modules: list[str], own: list[Draw], known_a: _Known,
              known_b: _Known, labels: tuple[str, str],
              seeds: tuple[int | None, int | None]) -> tuple[str, str]:
    la, lb = labels
    f = g.first
    kind_of = f"({f.module_type})" if f is not None and f.module_type else ""
    n = len(g.members)
    if g.kind in ("inserted", "removed"):
        here, there = (lb, la) if g.kind == "inserted" else (la, lb)
        other = known_a if g.kind == "inserted" else known_b
        verb = g.kind
        if f is None or f.module is None:
            what = f"{verb} in {here}: a draw outside any module ({f.api if f else '?'})"
        elif not other.module(f.model, f.module):
            what = f"module {verb} in {here}: {_names(modules)} {kind_of}".rstrip()
        elif f.target is not None and not other.target(f.model, f.target):
            params = [m.first.target for m in g.members if m.first is not None]
            what = (f"parameter {verb} in {here}: {_names([str(t) for t in params])} "
                    f"(in {f.module_type} {module_label(f.module)})")
        else:
            what = f"draws {verb} in {here}: in {_names(modules)} {kind_of}".rstrip()
        return f"{what}, {_count(n, len(own))} (not in {there})", ""
    if g.kind == "reordered":
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
    if g.kind == "generator":
        ga = g.stream.name
        gb = g.partner.stream.name if g.partner is not None else "?"
        return (f"different generator: {_names(modules)} draws from {ga} in {la}, "
                f"from {gb} in {lb}", "")
    if g.kind == "changed":
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
    if g.kind == "count":
        kind = g.pieces[0].kind
        call = f"{f.api} at {f.site}" if f is not None else "a call"
        if kind == "changed":
            what = "drew another shape"
        else:
            what = (f"drew {len(own)} more time{'s' if len(own) != 1 else ''} in "
                    f"{lb if kind == 'inserted' else la}")
        return (f"{call} {what}: a data-dependent loop (rejection sampling) in an already "
                f"shifted stream; a consequence, not a cause", "")
    if g.kind == "seed":
        st = g.stream
        if g.consequence:
            return (f"{st.name} starts from another seed: it was seeded after {g.detail} "
                    f"had shifted (a DataLoader seeds its sampler from the default "
                    f"generator); a consequence, not a cause", "")
        sa, sb = seeds
        if sa != sb:
            return f"different seed on {st.name}: {sa} in {la}, {sb} in {lb}", ""
        return (f"{st.name} starts from another state with the same seed ({sa}): "
                f"something drew or set the state before the window opened", "")
    if g.kind == "state":
        parts = []
        for run, e in g.events:
            who = la if run == "a" else lb
            if e.kind == "reseed":
                parts.append(f"{who} calls {e.detail} on {e.generator} before draw {e.before}"
                             + (f" at {e.site}" if e.site else ""))
            else:
                parts.append(f"the state of {e.generator} changed in {who} before draw "
                             f"{e.before} with no traced draw")
        return "state changed inside one run: " + "; ".join(parts), ""
    if g.kind == "consumption" and f is not None and f.op == "module":
        where = (f"the code outside modules ending at draw {f.index}" if f.module is None
                 else f"the call of {module_label(f.module)} ({f.module_type}) at draw "
                      f"{f.index}")
        return (f"{where} consumed {g.stream.name} differently in {la} and {lb} (a "
                f"module-level log sees that the state moved, not which draw moved it: "
                f"record with level='op' to name it)", "")
    if g.kind == "consumption":
        fb = g.b_draws[0] if g.b_draws else f
        return (f"the same call consumed {g.stream.name} differently: {f.op if f else '?'} "
                f"in {module_label(f.module) if f else '?'} (draw {f.index if f else '?'} "
                f"of {la}, {fb.index if fb else '?'} of {lb}) left other states", "")
    return (f"{g.stream.name} moved with nothing recorded to explain it (before draw "
            f"{f.index if f else '?'} of {la})", "")
