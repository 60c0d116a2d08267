"""The records of a comparison: :class:`Diff`, its :class:`Hunk` s, :class:`Cause` s,
:class:`Stream` s and :class:`Unused` consumers. :func:`rngtrace.diff` makes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from ..log import Draw, Log
from ..text import module_label

#: The kinds of :class:`Hunk`, in the order a report explains them.
HunkKind = Literal["equal", "shifted", "inserted", "removed", "changed"]
HUNK_KINDS: tuple[HunkKind, ...] = get_args(HunkKind)

#: The kinds of :class:`Cause`.
CauseKind = Literal[
    "inserted",     # a module, parameter or call draws in B only
    "removed",      # ... in A only
    "reordered",    # the same draws in another order (definitions reordered)
    "changed",      # the same place draws with another shape or arguments, or was renamed
    "seed",         # the stream starts from another seed or state
    "state",        # a reseed, an untraced state change ("gap") or unread calls, one run
    "generator",    # the same draws moved to another generator
    "consumption",  # the same call from the same state left another state (torch version?)
    "count",        # a data-dependent loop drew another number of times (a consequence)
    "unknown",      # the state moved with nothing recorded to explain it
    "compiled",     # one run drew inside Inductor-compiled graphs (see diffing.compiled)
]
CAUSE_KINDS: tuple[CauseKind, ...] = get_args(CauseKind)

#: The kinds (of hunks and causes) of draws that only one run made: B for ``inserted``,
#: A for ``removed``.
ONE_RUN: tuple[CauseKind, ...] = ("inserted", "removed")

#: One of the two runs compared.
Side = Literal["a", "b"]

#: Where a :class:`Cause` is: in run A, run B, or both.
Run = Literal["a", "b", "both"]

#: Why an :class:`Unused` consumer is unused.
Reason = Literal["never called", "no gradient"]


@dataclass(frozen=True, slots=True)
class Hunk:
    """A run of draws of one generator stream that the alignment treats alike.

    Attributes:
        kind: ``"equal"`` (same draws from the same states: same values),
            ``"shifted"`` (same draws from other states: other values),
            ``"inserted"`` (in B only), ``"removed"`` (in A only), ``"changed"``
            (the same place drew with another shape or arguments, or under another name).
        generator: the stream, named as in A (as in B for a stream only B has).
        b_generator: the same stream's name in B (explicit generators are numbered
            in order of first use, so the names can differ).
        a_index, a_stop: ``Draw.index`` of the hunk's first A draw and one past its
            last; for ``inserted`` both are the insertion point (the index of the next
            A draw of the stream). Draws of other streams may lie in between.
        b_index, b_stop: the same in B.
        a_draws, b_draws: the hunk's draws in each log (``a_draws`` is empty for
            ``inserted``, ``b_draws`` for ``removed``; paired one to one otherwise).
        cause: index into :attr:`Diff.causes` of the cause this hunk is (structural
            hunks) or that shifted it; None for ``equal`` hunks and unexplained ones.
    """

    kind: HunkKind
    generator: str
    b_generator: str
    a_index: int
    a_stop: int
    b_index: int
    b_stop: int
    a_draws: tuple[Draw, ...]
    b_draws: tuple[Draw, ...]
    cause: int | None = None

    @property
    def draws(self) -> tuple[Draw, ...]:
        """The hunk's draws: A's, or B's for ``inserted``."""
        return self.a_draws or self.b_draws

    @property
    def module(self) -> str | None:
        """The module of the hunk's first draw."""
        return self.draws[0].module if self.draws else None

    @property
    def target(self) -> str | None:
        """The target (state_dict key) of the hunk's first draw, if any."""
        return self.draws[0].target if self.draws else None

    @property
    def values(self) -> int:
        """Values drawn by the hunk's draws (A's, or B's for ``inserted``)."""
        return sum(d.numel for d in self.draws if d.consumed)

    def __len__(self) -> int:
        return max(len(self.a_draws), len(self.b_draws))

    def __repr__(self) -> str:  # the draws stay out: a hunk can hold a million
        return (f"<Hunk {self.kind} {self.generator} A {self.a_index}:{self.a_stop} "
                f"B {self.b_index}:{self.b_stop}, {len(self)} draws, "
                f"module={self.module!r}>")

    def to_dict(self) -> dict[str, Any]:
        """The hunk as data; draws are given by index (see :meth:`Diff.to_dict`)."""
        return {
            "kind": self.kind, "generator": self.generator, "b_generator": self.b_generator,
            "a_index": self.a_index, "a_stop": self.a_stop,
            "b_index": self.b_index, "b_stop": self.b_stop,
            "a_draws": len(self.a_draws), "b_draws": len(self.b_draws),
            "module": self.module, "target": self.target, "values": self.values,
            "cause": self.cause,
        }


@dataclass(frozen=True, slots=True)
class Cause:
    """One reason the streams part, with what it shifts.

    Attributes:
        kind: one of :data:`CAUSE_KINDS`.
        summary: one line for a person (``"module inserted in B: blocks.0.attn.linear
            (Linear), 2 draws"``).
        run: where the thing is: ``"a"``, ``"b"`` or ``"both"``.
        generator: the stream (A's name).
        module, module_type, target: the first module (and parameter) concerned.
        modules: every module concerned (several when the same line did it again).
        site, code: the user code line that made the first draw concerned.
        a_index, b_index: ``Draw.index`` where it happens in each log.
        draws, values: draws and values of the cause itself (the inserted draws ...).
        shifted_draws, shifted_values, shifted_targets: what it shifts: later draws
            of the stream (until the streams agree again), their values, and the
            parameters and buffers those draws initialise.
        consequence: True when this difference follows from an earlier one (a loop
            that drew another number of times in an already shifted stream, a
            generator seeded from a shifted stream): reported, never as a cause.
        detail: what a person needs to read the summary right, or ``""``: why a
            consequence is not a cause, that a re-initialisation pass re-draws modules
            built earlier, what a module-level log cannot see.
        hunks: indices into :attr:`Diff.hunks` of the hunks it is made of.
        lines: the lines of code of its own draws, ``(site, code, draws)``, in order
            of first draw (an inserted layer has one per submodule it builds).
    """

    kind: CauseKind
    summary: str
    run: Run
    generator: str
    module: str | None
    module_type: str | None
    target: str | None
    modules: tuple[str, ...]
    site: str | None
    code: str | None
    a_index: int | None
    b_index: int | None
    draws: int = 0
    values: int = 0
    shifted_draws: int = 0
    shifted_values: int = 0
    shifted_targets: tuple[str, ...] = ()
    consequence: bool = False
    detail: str = ""
    hunks: tuple[int, ...] = ()
    lines: tuple[tuple[str | None, str | None, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "summary": self.summary, "run": self.run,
            "generator": self.generator, "module": self.module,
            "module_type": self.module_type, "target": self.target,
            "modules": list(self.modules), "site": self.site, "code": self.code,
            "a_index": self.a_index, "b_index": self.b_index, "draws": self.draws,
            "values": self.values, "shifted_draws": self.shifted_draws,
            "shifted_values": self.shifted_values,
            "shifted_targets": list(self.shifted_targets),
            "consequence": self.consequence, "detail": self.detail,
            "hunks": list(self.hunks), "lines": [list(x) for x in self.lines],
        }


@dataclass(frozen=True, slots=True)
class Stream:
    """One generator stream as the two runs saw it, and how its draws compare.

    ``a_name``/``b_name`` are None for a stream one run never used; ``counts`` maps
    each hunk kind to its number of draws (pairs count once).
    """

    a_name: str | None
    b_name: str | None
    a_draws: int
    b_draws: int
    a_seed: int | None
    b_seed: int | None
    counts: dict[HunkKind, int]

    @property
    def name(self) -> str:
        return self.a_name if self.a_name is not None else str(self.b_name)

    def to_dict(self) -> dict[str, Any]:
        return {"a_name": self.a_name, "b_name": self.b_name, "a_draws": self.a_draws,
                "b_draws": self.b_draws, "a_seed": self.a_seed, "b_seed": self.b_seed,
                "counts": dict(self.counts)}


@dataclass(frozen=True, slots=True)
class Unused:
    """A module or parameter that drew at init but was never used in the window.

    ``reason`` is ``"never called"`` (the module never ran forward) or ``"no
    gradient"`` (its module ran but the parameter got no gradient: unused, frozen, or a
    buffer). Its draws still moved the generator for everything built after it.
    """

    model: str | None
    module: str | None
    module_type: str | None
    targets: tuple[str, ...]
    reason: Reason
    draws: int
    values: int
    site: str | None
    code: str | None
    first: int  # index of its first draw

    @property
    def where(self) -> str:
        return module_label(self.module)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "module": self.module, "module_type": self.module_type,
                "targets": list(self.targets), "reason": self.reason, "draws": self.draws,
                "values": self.values, "site": self.site, "code": self.code,
                "first": self.first}


@dataclass(frozen=True)
class Diff:
    """The comparison of two logs; see :func:`diff`.

    Attributes:
        hunks: the whole alignment, every stream, ordered by position in A (then B).
        causes: why the streams part, the first cause first; consequences
            (``Cause.consequence``) come after the causes.
        streams: each generator stream and its counts.
        affected_targets: state_dict keys whose initial values differ (drawn from
            other states, with another shape, or in one run only), in order of A.
        new_targets: those of ``affected_targets`` that only one run has.
        unused_a, unused_b: consumers that drew at init but were never used, per run
            (empty when the log saw no forward and backward).
        labels: how the report names the two runs.
        notes: facts worth knowing (other torch versions, an incomplete log).
        renamed: what B names otherwise, when it draws the same values as A into
            modules of other names (``"(root) is base_model.model (35 modules)"``); B's
            draws in hunks and causes then carry A's names. ``""`` when nothing was.
        added: the streams only one run has that move nothing the runs share: each
            draw fills, at init, something the other run lacks
            (:mod:`~rngtrace.diffing.additions`); no cause is looked for in them.
    """

    hunks: tuple[Hunk, ...]
    causes: tuple[Cause, ...]
    streams: tuple[Stream, ...]
    affected_targets: tuple[str, ...]
    unused_a: tuple[Unused, ...] = ()
    unused_b: tuple[Unused, ...] = ()
    labels: tuple[str, str] = ("A", "B")
    notes: tuple[str, ...] = ()
    new_targets: tuple[str, ...] = ()
    renamed: str = ""
    added: tuple[str, ...] = ()
    a: Log | None = field(default=None, repr=False, compare=False)
    b: Log | None = field(default=None, repr=False, compare=False)

    @property
    def identical(self) -> bool:
        """The two runs drew the same values in the same places, and left their
        generators in the same states (no cause: the same last call can end in
        other states under another torch version)."""
        return not self.causes and all(h.kind == "equal" for h in self.hunks)

    @property
    def agrees(self) -> bool:
        """The two runs agree on everything they share: identical, or differing only
        by :attr:`added` streams (``rngtrace diff`` then exits 0)."""
        added = self.added
        return not self.causes and all(
            h.kind == "equal" or h.generator in added or h.b_generator in added
            for h in self.hunks)

    @property
    def first_divergence(self) -> Hunk | None:
        """The first hunk (in A's order) whose values differ; None when identical."""
        for h in self.hunks:
            if h.kind != "equal":
                return h
        return None

    @property
    def cause(self) -> Cause | None:
        """The first cause (never a consequence); None when identical."""
        for c in self.causes:
            if not c.consequence:
                return c
        return None

    def report(self, width: int = 100) -> str:
        """The text a person reads: the cause first, then what it did, wrapped to
        ``width`` columns (0: no wrapping)."""
        from .report import render

        return render(self, width=width)

    def __str__(self) -> str:
        return self.report()

    def _repr_html_(self) -> str:  # what a Jupyter notebook shows
        from ..log import notebook_html

        return notebook_html(self)

    def __repr__(self) -> str:
        what = "identical" if self.identical else (
            f"cause={self.cause.kind!r} in {self.cause.module!r}" if self.cause else "different")
        return f"<rngtrace.Diff {what}, {len(self.hunks)} hunks, {len(self.causes)} causes>"

    def to_dict(self) -> dict[str, Any]:
        """The same as :meth:`report`, as JSON-serialisable data."""
        return {
            "identical": self.identical,
            "agrees": self.agrees,
            "added": list(self.added),
            "labels": list(self.labels),
            "first_divergence": (None if self.first_divergence is None
                                 else self.first_divergence.to_dict()),
            "causes": [c.to_dict() for c in self.causes],
            "streams": [s.to_dict() for s in self.streams],
            "hunks": [h.to_dict() for h in self.hunks],
            "affected_targets": list(self.affected_targets),
            "new_targets": list(self.new_targets), "renamed": self.renamed,
            "unused": {"a": [u.to_dict() for u in self.unused_a],
                       "b": [u.to_dict() for u in self.unused_b]},
            "notes": list(self.notes),
        }
