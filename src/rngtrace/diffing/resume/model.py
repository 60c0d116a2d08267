"""The records of a resume check: :class:`Finding` (how one generator starts the
resumed training) and :class:`ResumeDiff` (the whole check), with its text."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

from ...text import plural
from ..model import Diff

#: How a generator starts the resumed training (step K). Where the full run was:
#: ``restored`` (a restore before training set it there), ``same`` (no restore seen: a
#: generator made during training, or seeded alike in both runs). Elsewhere:
#: ``not-restored``, ``restored-elsewhere`` (set to another state), ``loading-draws``
#: (restored, then moved by draws while loading), ``reseed-after-restore``, or
#: ``consequence`` (made during training and seeded from a stream that starts elsewhere).
FindingKind = Literal["restored", "same", "not-restored", "restored-elsewhere",
                      "loading-draws", "reseed-after-restore", "consequence"]
FINDING_KINDS: tuple[FindingKind, ...] = get_args(FindingKind)
#: The kinds of a generator that starts where the full run was.
RIGHT: tuple[FindingKind, ...] = ("restored", "same")


@dataclass(frozen=True, slots=True)
class Finding:
    """How one generator starts the resumed training (``kind``, one of
    :data:`FindingKind`), in a sentence that starts with its name."""

    kind: FindingKind
    generator: str
    text: str

    @property
    def right(self) -> bool:
        """Whether the generator starts where the full run was."""
        return self.kind in RIGHT


@dataclass
class ResumeDiff:
    """The result of :func:`~rngtrace.diffing.resume.resume_diff`; ``identical`` is the
    exit status's question.

    ``starts`` says, for every generator both runs draw from after the resume point,
    how it starts there (restored, not restored ...); ``findings`` are those that start
    elsewhere, and ``mismatches`` one line per stream whose training draws differ.
    ``diff`` is the ordinary comparison of the two aligned parts, its causes told with
    the findings (the start of a stream that was not restored is that, not "another
    seed").
    """

    resumed_at: int
    labels: tuple[str, str]
    identical: bool
    findings: list[Finding]
    mismatches: list[str]  # one line per stream whose training draws differ
    preamble: int  # draws of the resumed run before its training
    steps: int  # optimizer steps compared
    diff: Diff
    starts: list[Finding] = dataclasses.field(default_factory=list)

    def findings_text(self) -> str:
        return "\n".join([f.text for f in self.findings] + self.mismatches)

    def report(self) -> str:
        a, b = self.labels
        k = self.resumed_at
        head = (f"{b} resumed at step {k} of {a}: "
                + ("identical" if self.identical else "DIFFERENT")
                + f" over {plural(self.steps, 'step')} ({plural(self.preamble, 'draw')} "
                  "of construction and loading before)")
        lines = [head]
        if self.starts:
            lines += ["", f"How each generator starts step {k}:"]
            lines += [f"  {f.text}" for f in self.starts]
        if self.mismatches:
            lines += ["", f"What differs from step {k} on:"]
            lines += [f"  {m}" for m in self.mismatches]
        if not self.identical:
            lines += ["", f"The aligned training draws (step {k} on):", self.diff.report()]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"resumed_at": self.resumed_at, "identical": self.identical,
                "preamble": self.preamble, "steps": self.steps,
                "starts": [dataclasses.asdict(f) for f in self.starts],
                "findings": [dataclasses.asdict(f) for f in self.findings],
                "mismatches": self.mismatches, "diff": self.diff.to_dict()}
