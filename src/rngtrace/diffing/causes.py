"""Why the streams part: walk each aligned stream and name the causes.

Each stream is walked in order. While the two runs agree (``equal``), a structural
piece (inserted, removed, changed) is a cause; the ``shifted`` draws after it are what
it shifts. A shift that starts with no structural piece before it is explained by what
the logs recorded at that point: a reseed or gap event, another seed at the start of the
stream, a call that consumed the stream differently. While the runs already disagree,
a structural piece made by the same call as its shifted neighbours is a consequence (a
rejection loop such as ``trunc_normal_`` drew another number of times), never a cause.
Afterwards, removed and inserted draws of the same module with the same structure are
merged into one "reordered" (same stream) or "generator" (other stream) cause, and
what a person calls one change is grouped: an inserted or removed subtree by its root
(the outermost module the other run lacks), a new parameter by its name, anything else
by its line of code. The candidates become :class:`~rngtrace.diffing.Cause` records,
with what they count, in :mod:`.cause_text`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..log import UNCHANGED, Draw, Event, EventKind, Log
from ..text import module_label
from .align import Piece, StreamPair, structure_key
from .model import ONE_RUN, CauseKind, HunkKind, Run, Side
from .names import Known


@dataclass(slots=True)
class StreamView:
    pair: StreamPair
    a: Sequence[Draw]
    b: Sequence[Draw]
    pieces: list[Piece]

    @property
    def name(self) -> str:
        return self.pair.a_name if self.pair.a_name is not None else str(self.pair.b_name)


@dataclass(eq=False)
class Candidate:
    """A cause while it is being worked out (mutable; becomes a :class:`Cause`)."""

    kind: CauseKind
    stream: StreamView
    pieces: list[Piece]
    run: Run
    draws: list[Draw]  # the draws the cause is about (one side; A's for pairs)
    b_draws: list[Draw] = field(default_factory=list)  # B's side of a changed pair
    consequence: bool = False
    while_shifted: bool = False
    detail: str = ""
    events: list[tuple[Side, Event]] = field(default_factory=list)
    partner: Candidate | None = None  # the other half of a move
    jumped: list[str] = field(default_factory=list)  # modules a moved module jumped over
    merged_into: Candidate | None = None
    members: list[Candidate] = field(default_factory=list)
    root: str | None = None  # the outermost module only one run has (inserted/removed)
    workers: list[int] = field(default_factory=list)  # the same draws in these workers
    new_target: bool = False  # a parameter only one run has, in a module both have

    @property
    def first(self) -> Draw | None:
        return self.draws[0] if self.draws else (self.b_draws[0] if self.b_draws else None)


def explain(a: Log, b: Log, streams: list[StreamView],
            labels: tuple[str, str]) -> list[Candidate]:
    """The causes, first first, consequences last; sets ``Piece.cause`` on every piece."""
    first_shift = {st.name: _first_change(st) for st in streams}
    cands: list[Candidate] = []
    for st in streams:
        cands += _walk(a, b, st, first_shift)
    _find_moves(cands)
    _find_worker_moves(cands)
    _place(cands, a, b)
    groups = _group(cands)
    groups.sort(key=lambda c: (c.consequence, min((p.hunk for m in c.members
                                                   for p in m.pieces), default=1 << 62)))
    return groups


def _first_change(st: StreamView) -> tuple[int, int] | None:
    """Log indices (A, B) where this stream first differs, None if it never does."""
    for p in st.pieces:
        if p.kind != "equal":
            return (index_of(st.a, p.a0), index_of(st.b, p.b0))
    return None


def index_of(draws: Sequence[Draw], pos: int) -> int:
    if pos < len(draws):
        return draws[pos].index
    return draws[-1].index + 1 if draws else 1 << 62


# the run a structural piece's draws are in: B's for inserted, A's for removed
_ONLY_IN: dict[HunkKind, Run] = {"inserted": "b", "removed": "a"}


def _walk(a: Log, b: Log, st: StreamView,
          first_shift: dict[str, tuple[int, int] | None]) -> list[Candidate]:
    out: list[Candidate] = []
    sync: bool | None = None  # None: at the start, or right after a structural piece
    cur: Candidate | None = None  # what explains the current shifted region
    prev_equal: Piece | None = None
    for n, p in enumerate(st.pieces):
        if p.kind == "equal":
            sync, cur, prev_equal = True, None, p
            la, lb = st.a[p.a1 - 1], st.b[p.b1 - 1]
            if la.state_after != lb.state_after and la.consumed and lb.consumed:
                # the same call from the same state left other states: whatever comes
                # next on this stream is already shifted
                cur = Candidate("consumption", st, [], "both", [la], [lb])
                out.append(cur)
                sync = False
            continue
        if p.kind == "shifted":
            if cur is None:
                cur = _transition(a, b, st, p, prev_equal if sync else None, first_shift)
                out.append(cur)
            cur.pieces.append(p)
            p.cause = cur
            sync = False
            continue
        side_a = list(st.a[p.a0:p.a1])
        side_b = list(st.b[p.b0:p.b1])
        if sync is False and _same_call(st, n):
            c = Candidate("count", st, [p], "both", side_a or side_b, side_b if side_a else [],
                      consequence=True)
            out.append(c)
            p.cause = c
            continue
        run = _ONLY_IN.get(p.kind, "both")
        for module_draws_a, module_draws_b in _by_module(p.kind, side_a, side_b):
            c = Candidate(p.kind, st, [p], run, module_draws_a or module_draws_b,
                      module_draws_b if module_draws_a else [],
                      while_shifted=sync is False)
            out.append(c)
            if p.cause is None:
                p.cause = c
        if sync is not False:
            cur = p.cause
            sync = None
    return out


def _by_module(kind: str, side_a: list[Draw], side_b: list[Draw]
               ) -> list[tuple[list[Draw], list[Draw]]]:
    """Split a structural piece into runs of one module (paired pieces stay whole)."""
    if kind == "changed":
        return [(side_a, side_b)]
    draws = side_a or side_b
    runs: list[list[Draw]] = []
    for d in draws:
        if runs and (runs[-1][0].model, runs[-1][0].module) == (d.model, d.module):
            runs[-1].append(d)
        else:
            runs.append([d])
    return [(r, []) if side_a else ([], r) for r in runs]


def _same_call(st: StreamView, n: int) -> bool:
    """A structural piece whose draws all come from the call that made a neighbour."""
    p = st.pieces[n]
    calls: set[tuple] = set()
    for m in (n - 1, n + 1):
        if 0 <= m < len(st.pieces) and st.pieces[m].kind == "shifted":
            q = st.pieces[m]
            i = q.a1 - 1 if m < n else q.a0
            j = q.b1 - 1 if m < n else q.b0
            calls |= {_call(st.a[i]), _call(st.b[j])}
    if not calls:
        return False
    draws = [*st.a[p.a0:p.a1], *st.b[p.b0:p.b1]]
    return all(_call(d) in calls for d in draws)


def _call(d: Draw) -> tuple:
    return (d.site, d.code, d.api, d.model, d.module)


def _transition(a: Log, b: Log, st: StreamView, p: Piece, prev: Piece | None,
                first_shift: dict[str, tuple[int, int] | None]) -> Candidate:
    """Why a stream that agreed (or just started) is shifted from piece ``p`` on."""
    da, db = st.a[p.a0], st.b[p.b0]
    lo_a = st.a[prev.a1 - 1].index if prev is not None else -1
    lo_b = st.b[prev.b1 - 1].index if prev is not None else -1
    events: list[tuple[Side, Event]] = [
        ("a", e) for e in _events(a, st.pair.a_name, lo_a, da.index)]
    events += [("b", e) for e in _events(b, st.pair.b_name, lo_b, db.index)]
    if events:
        runs = {r for r, _ in events}
        c = Candidate("state", st, [], "both" if len(runs) == 2 else runs.pop(), [da], [db],
                  events=events)
        return c
    if prev is not None:
        pa, pb = st.a[prev.a1 - 1], st.b[prev.b1 - 1]
        if pa.state_after != pb.state_after:
            return Candidate("consumption", st, [], "both", [pa], [pb])
        return Candidate("unknown", st, [], "both", [da], [db])
    ga, gb = a.generators.get(st.pair.a_name or ""), b.generators.get(st.pair.b_name or "")
    seed_a = ga.initial_seed if ga is not None else None
    seed_b = gb.initial_seed if gb is not None else None
    state_a = ga.state if ga is not None else None
    state_b = gb.state if gb is not None else None
    c = Candidate("seed", st, [], "both", [da], [db])
    if seed_a == seed_b and state_a == state_b:
        c.kind = "unknown"
    elif st.name.startswith("generator:"):
        # A generator created after another stream had already shifted was most likely
        # seeded from it (a DataLoader seeds its sampler from the default generator).
        for name, where in first_shift.items():
            if name != st.name and where is not None and where[0] < da.index \
                    and where[1] < db.index:
                c.consequence = True
                c.detail = name
                break
    return c


# the events that can explain why a stream's state moved
_STATE_EVENTS: tuple[EventKind, ...] = ("reseed", "gap", "unread")


def _events(log: Log, gen: str | None, lo: int, hi: int) -> list[Event]:
    """The events that changed ``gen``'s state between draws ``lo`` and ``hi``."""
    return [e for e in log.events
            if e.generator == gen and e.kind in _STATE_EVENTS
            and lo < e.before <= hi
            and not e.detail.endswith(UNCHANGED)]


def _find_moves(cands: list[Candidate]) -> None:
    """Pair removed and inserted runs of the same module with the same draws."""
    removed: dict[tuple, list[Candidate]] = {}
    for c in cands:
        if c.kind == "removed":
            removed.setdefault(_signature(c.draws), []).append(c)
    for c in cands:
        if c.kind != "inserted":
            continue
        match = removed.get(_signature(c.draws))
        if not match:
            continue
        r = match.pop(0)
        same = r.stream is c.stream
        r.kind = "reordered" if same else "generator"
        r.run, r.partner, r.b_draws = "both", c, c.draws
        r.pieces += c.pieces
        for p in c.pieces:
            if p.cause is c:
                p.cause = r
        c.merged_into = r
        if same:
            r.jumped = _between(r.stream, c.pieces[0], r.pieces[0])
        r.while_shifted = r.while_shifted and c.while_shifted


def _find_worker_moves(cands: list[Candidate]) -> None:
    """Draws of one run's own process that the other run makes in DataLoader workers
    (same op, same line of code): one cause, the process's side, naming the workers."""
    here: dict[tuple, Candidate] = {}
    for c in cands:
        f = c.first
        if c.kind in ONE_RUN and f is not None and f.worker is None:
            here.setdefault((c.kind, f.op, f.site), c)
    for c in cands:
        f = c.first
        if c.kind not in ONE_RUN or f is None or f.worker is None \
                or c.merged_into is not None:
            continue
        other = "removed" if c.kind == "inserted" else "inserted"
        m = here.get((other, f.op, f.site))
        if m is None:
            continue
        c.merged_into = m
        if f.worker not in m.workers:
            m.workers.append(f.worker)
        for p in c.pieces:
            if p.cause is c:
                p.cause = m


def _signature(draws: list[Draw]) -> tuple:
    return tuple(sorted(Counter(structure_key(d) for d in draws).items(), key=repr))


_PAIRED: tuple[HunkKind, ...] = ("equal", "shifted", "changed")  # draws in both runs


def _between(st: StreamView, p: Piece, q: Piece) -> list[str]:
    """Modules of the paired draws between two pieces of a stream (what a move jumped)."""
    i, j = st.pieces.index(p), st.pieces.index(q)
    out: list[str] = []
    for r in st.pieces[min(i, j) + 1:max(i, j)]:
        if r.kind in _PAIRED:
            for d in st.a[r.a0:r.a1]:
                name = module_label(d.module)
                if name not in out:
                    out.append(name)
    return out


# causes of one root, parameter name or line are one cause (see _group_key)
_GROUPED: tuple[CauseKind, ...] = ("inserted", "removed", "reordered", "changed",
                                   "generator", "count")


def _place(cands: list[Candidate], a: Log, b: Log) -> None:
    """Note, for each insertion or removal, the outermost module (or the parameter)
    that the other run does not have: what a person would call inserted."""
    known: dict[str, Known] = {}
    for c in cands:
        f = c.first
        if c.kind not in ONE_RUN or f is None or f.module is None:
            continue
        side = "a" if c.kind == "inserted" else "b"
        other = known.get(side)
        if other is None:
            other = known[side] = Known.of(a if side == "a" else b)
        c.root = other.outermost_unknown(f.model, f.module)
        if c.root is None and f.target is not None:
            c.new_target = not other.target(f.model, f.target)


def _group_key(c: Candidate) -> tuple:
    """Candidates with one key are one cause: the same inserted subtree (its root's
    name: ``linear`` in every block, or ``layer.*`` for numbered entries), the same
    new parameter name, or else the same line of code."""
    f = c.first
    if f is None or c.kind not in _GROUPED:
        return (id(c),)
    if c.root is not None or c.new_target:
        name = c.root if c.root is not None else str(f.target)
        leaf = name.rpartition(".")[2]
        if leaf.isdigit():
            leaf = ".".join("*" if x.isdigit() else x for x in name.split("."))
        return (c.kind, c.run, c.stream.name, f.model, c.root is not None, leaf)
    return (c.kind, c.run, c.stream.name, f.code, f.module_type, f.op, c.consequence)


def _group(cands: list[Candidate]) -> list[Candidate]:
    """Merge the candidates that are one cause for a person (see :func:`_group_key`)."""
    groups: dict[tuple, Candidate] = {}
    out: list[Candidate] = []
    for c in cands:
        if c.merged_into is not None:
            continue
        key = _group_key(c)
        g = groups.get(key)
        if g is None:
            groups[key] = c
            c.members = [c]
            out.append(c)
        else:
            g.members.append(c)
            g.consequence = g.consequence and c.consequence
            for p in c.pieces:
                if p.cause is c:
                    p.cause = g
    return out
