"""The records of a comparison of ranks: :class:`RankReport` and what it holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: How the draws of one parameter (or one stream) relate across ranks.
RELATIONS = (
    "same",       # every rank drew the same values (same ops, arguments, shapes, states)
    "differ",     # some ranks drew other values (groups say which)
    "missing",    # some ranks never drew it
)


@dataclass(frozen=True, slots=True)
class RankInfo:
    """One log of the job: its rank and where it ran.

    ``rank`` comes from the header's ``meta["dist"]`` (the log's position among the
    logs given when the header has none); ``seeds`` maps each generator to the seed in
    effect at its first draw (the last ``manual_seed`` before it, else the window's).
    """

    rank: int
    label: str
    world_size: int | None
    local_rank: int | None
    host: str | None
    backend: str | None
    draws: int
    seeds: dict[str, int | None]

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "label": self.label, "world_size": self.world_size,
                "local_rank": self.local_rank, "host": self.host, "backend": self.backend,
                "draws": self.draws, "seeds": dict(self.seeds)}


@dataclass(frozen=True, slots=True)
class Relation:
    """How one parameter's initial draws (or one forward or sampler stream) compare
    across ranks.

    Attributes:
        kind: ``"parameter"``, ``"forward"`` (a module's draws in forward: dropout
            masks) or ``"sampler"`` (``randperm``: a sampler's permutation).
        name: the state_dict key (``"0.weight"``), the module path, or the sampler's
            generator and call site.
        relation: one of :data:`RELATIONS`.
        groups: the ranks, grouped by identical draws, each group sorted, groups by
            their lowest rank (``((0,), (1,))``: every rank its own values).
        draws: draws per rank (the first rank's count).
        placement: ``"replicated"`` for plain tensors, else the DTensor placements
            (``"S(0)"``: sharded on dim 0) of the first rank's draw.
        verdict: ``"ok"``, ``"bug"`` or ``"harmless"`` (differs, but DDP broadcasts
            rank 0's parameters when it wraps the model).
        why: for ``differ``, the cause as one line (another seed per rank, extra
            draws on a rank, a reseed on a rank); ``""`` otherwise.
        meaning: what the relation means for the parallelism seen, one line.
    """

    kind: str
    name: str
    relation: str
    groups: tuple[tuple[int, ...], ...]
    draws: int
    placement: str
    verdict: str
    why: str = ""
    meaning: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "relation": self.relation,
                "groups": [list(g) for g in self.groups], "draws": self.draws,
                "placement": self.placement, "verdict": self.verdict, "why": self.why,
                "meaning": self.meaning}


@dataclass(frozen=True, slots=True)
class RankReport:
    """What :func:`rngtrace.compare_ranks` found; ``str()`` gives the text report.

    Attributes:
        ranks: the logs, by rank.
        parallelism: what the logs show of the job's layout: ``"DDP"`` (module names
            under DDP's ``module.``), ``"sharded"`` (DTensor/FSDP2 parameters), both
            joined by ``+``, or ``"none seen"``.
        parameters: one :class:`Relation` per parameter or buffer drawn at init, in
            the order the first rank drew them.
        forward: one per module that drew in forward (dropout), in order.
        samplers: one per ``randperm`` stream (DataLoader samplers).
        problems: one line per thing that looks like a bug, most important first.
    """

    ranks: tuple[RankInfo, ...]
    parallelism: str
    parameters: tuple[Relation, ...]
    forward: tuple[Relation, ...]
    samplers: tuple[Relation, ...]
    problems: tuple[str, ...]

    @property
    def same(self) -> bool:
        """True when every parameter's initial draws agree across ranks (exit code 0)."""
        return all(r.relation == "same" for r in self.parameters)

    @property
    def first_difference(self) -> Relation | None:
        """The first parameter whose initial draws differ across ranks."""
        return next((r for r in self.parameters if r.relation != "same"), None)

    def to_dict(self) -> dict[str, Any]:
        return {"same": self.same, "parallelism": self.parallelism,
                "ranks": [r.to_dict() for r in self.ranks],
                "parameters": [r.to_dict() for r in self.parameters],
                "forward": [r.to_dict() for r in self.forward],
                "samplers": [r.to_dict() for r in self.samplers],
                "problems": list(self.problems)}

    def __str__(self) -> str:
        from .report import render

        return render(self)

    def _repr_html_(self) -> str:  # what a Jupyter notebook shows
        from ..log import notebook_html

        return notebook_html(self)
