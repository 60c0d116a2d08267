"""The records of a check: :class:`Finding`, the :class:`Evidence` it rests on, and the
:class:`CheckReport` that holds them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, get_args

from ..log import Draw

#: What a finding is about; see docs/check.md for each one's evidence and its limits.
Kind = Literal[
    "repeated-stream",       # two draws of one run start from the same state: equal values
    "replicas-differ",       # ranks holding the same part of a parameter drew it differently
    "equal-shards",          # ranks holding different shards of a parameter drew equal ones
    "alike-across-ranks",    # data-parallel ranks drew the same masks or noise
    "stages-share-stream",   # different parameters/modules on different ranks, equal values
    "recompute-differs",     # an activation checkpoint's recompute drew other values
    "copied-worker-stream",  # DataLoader workers drew identical streams
    "stray-consumption",     # draws between the last seeding and training that shift it
    "unseeded",              # a generator drew, never seeded, while the program seeds
]
KINDS: tuple[Kind, ...] = get_args(Kind)

#: ``error``: the training computes something other than intended (equal masks, copied
#: shards, other masks in a recompute); ``warning``: a run that will not reproduce, or
#: whose random streams depend on code that should not matter.
Severity = Literal["error", "warning"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)


@dataclass(frozen=True, slots=True)
class Evidence:
    """One draw a finding rests on, as the log recorded it.

    Attributes:
        log: the label of the log (its file name, or ``rank N``).
        rank: the log's rank in its job, None outside a job.
        index: the draw's index in that log.
        generator: the generator it drew from.
        state: the generator state it started from (``state_before``).
        op, shape, phase, step: what the draw was and when.
        module, target, site: who drew (state_dict path, parameter, user line).
        worker: the DataLoader worker that drew, None in the main process.
        role: what this draw is in the finding (``"forward"``, ``"recompute"``, ``""``).
    """

    log: str
    rank: int | None
    index: int
    generator: str
    state: str | None
    op: str
    shape: tuple[int, ...]
    phase: str
    step: int
    module: str | None
    target: str | None
    site: str | None
    worker: int | None = None
    role: str = ""

    @classmethod
    def of(cls, d: Draw, log: str, rank: int | None, role: str = "") -> Evidence:
        return cls(log, rank, d.index, d.generator, d.state_before, d.op, d.shape, d.phase,
                   d.step, d.module, d.target, d.site, d.worker, role)

    def line(self) -> str:
        """``ddp.rank0.rngtrace.jsonl draw 4: aten::bernoulli_ (4, 10) module.1 forward
        step 0 at job.py:40, default:cpu from 92524c7deba21d0b``."""
        who = self.target or self.module
        where = "" if who is None else f" {who or '(root)'}"
        bits = [f"{self.role}: " if self.role else "",
                f"{self.log} draw {self.index}: {self.op} {_shape(self.shape)}{where}",
                f" {self.phase} step {self.step}",
                f" worker {self.worker}" if self.worker is not None else "",
                f" at {self.site}" if self.site else "",
                f", {self.generator} from {self.state}"]
        return "".join(bits)

    def to_dict(self) -> dict[str, Any]:
        return {"log": self.log, "rank": self.rank, "index": self.index,
                "generator": self.generator, "state": self.state, "op": self.op,
                "shape": list(self.shape), "phase": self.phase, "step": self.step,
                "module": self.module, "target": self.target, "site": self.site,
                "worker": self.worker, "role": self.role}


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


@dataclass(frozen=True, slots=True)
class Finding:
    """One hazard found in the logs.

    Attributes:
        kind: one of :data:`KINDS`.
        severity: ``"error"`` or ``"warning"`` (see :data:`Severity`).
        summary: one line saying what was found.
        generators: the generators involved.
        where: the modules, parameters or sites named (``"module.1 (Dropout)"``).
        evidence: the draws it rests on (a few of them when there are many).
        why: why it matters, one or two sentences.
        fix: what to change.
        logs: the labels of the logs involved.
    """

    kind: Kind
    severity: Severity
    summary: str
    generators: tuple[str, ...]
    where: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    why: str
    fix: str
    logs: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity, "summary": self.summary,
                "generators": list(self.generators), "where": list(self.where),
                "evidence": [e.to_dict() for e in self.evidence], "why": self.why,
                "fix": self.fix, "logs": list(self.logs)}


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What :func:`rngtrace.check` found; iterate it for the findings, ``str()`` for the
    text report, ``to_dict()`` for JSON.

    Attributes:
        logs: the labels of the logs checked, by rank where the logs have ranks.
        ranks: each log's rank (None where its header has none), in the same order.
        findings: errors first, then warnings, each in the order found.
        notes: what could not be checked in these logs, and why (one line each).
    """

    logs: tuple[str, ...]
    ranks: tuple[int | None, ...]
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    def headline(self) -> str:
        """``rngtrace check: 2 logs, 3 findings (2 errors, 1 warning)``."""
        from .report import headline

        return headline(self)

    def to_dict(self) -> dict[str, Any]:
        return {"logs": list(self.logs), "ranks": list(self.ranks),
                "findings": [f.to_dict() for f in self.findings], "notes": list(self.notes)}

    def __str__(self) -> str:
        from .report import render

        return render(self)

    def _repr_html_(self) -> str:  # what a Jupyter notebook shows
        from ..log import notebook_html

        return notebook_html(self)
