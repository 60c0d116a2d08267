"""The records of a fingerprint and of a restore check; torch-free.

A :class:`Fingerprint` is a small versioned record of every generator a training depends
on: per generator (:class:`GeneratorPrint`) a digest of its whole state (the digests a
log uses: XXH3-64 of a torch CPU state, ``"SEED:OFFSET"`` for CUDA, blake2b-64 for Python
and NumPy) and, where the generator is a Mersenne Twister (torch CPU, ``random``, NumPy's
legacy generator), a digest of its 624-word block, of the block after the next twist, and
its position in the block: enough to tell "restored, then drew N words" from "another
state" without storing the state. A NumPy PCG64 generator keeps its 128-bit state and
increment (two integers: the distance between two states is computable). No full state
is stored: a check tells "restored to another state" from "not restored" with a second
fingerprint taken before the checkpoint was loaded (``before=``).

Format versions (``FORMAT``): 1, the first.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

from ..errors import RngtraceError

FORMAT = 1
_KEY = "rngtrace_fingerprint"  # the key holding the format version

#: What a generator is: a torch generator (CPU or CUDA), Python's ``random`` (or a
#: ``random.Random``), NumPy's legacy generator (the global one or a ``RandomState``) or a
#: NumPy ``Generator``.
PrintKind = Literal["torch", "python", "numpy-legacy", "numpy"]


@dataclass(frozen=True, slots=True)
class GeneratorPrint:
    """One generator's state, digested.

    Attributes:
        name: ``default:cpu``, ``default:cuda:N``, ``python:random``, ``numpy:global``
            (as in a log), or where it was found (``loader.sampler.generator``).
        kind: one of :data:`PrintKind`.
        digest: the whole state's digest.
        seed: the seed it was last seeded with, where the state holds it (torch).
        block, next_block, pos: for a Mersenne Twister, digests of its 624-word block
            and of the block after the next twist, and the words used in the block.
        offset: a CUDA generator's Philox offset.
        pcg: a PCG64 generator's state and increment.
    """

    name: str
    kind: PrintKind
    digest: str
    seed: int | None = None
    block: str | None = None
    next_block: str | None = None
    pos: int | None = None
    offset: int | None = None
    pcg: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        if self.pcg is not None:
            out["pcg"] = [str(self.pcg[0]), str(self.pcg[1])]  # 128-bit: strings for JSON
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GeneratorPrint:
        fields = {f.name for f in dataclasses.fields(cls)}
        args = {k: v for k, v in d.items() if k in fields}  # tolerate added fields
        if args.get("kind") not in get_args(PrintKind) or not isinstance(
                args.get("name"), str) or not isinstance(args.get("digest"), str):
            raise RngtraceError(f"not a generator of an rngtrace fingerprint: {d!r:.80}")
        if "pcg" in args:
            args["pcg"] = (int(args["pcg"][0]), int(args["pcg"][1]))
        return cls(**args)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """The generators a training depends on, digested (see the module documentation);
    :func:`rngtrace.fingerprint` takes one. JSON-serialisable with :meth:`to_dict`."""

    generators: tuple[GeneratorPrint, ...]

    def get(self, name: str) -> GeneratorPrint | None:
        return next((g for g in self.generators if g.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {_KEY: FORMAT, "generators": [g.to_dict() for g in self.generators]}

    @classmethod
    def from_dict(cls, d: Any) -> Fingerprint:
        """Read :meth:`to_dict`'s output; an :class:`~rngtrace.RngtraceError` for
        anything else, or a newer format."""
        if not isinstance(d, dict) or _KEY not in d:
            raise RngtraceError("not an rngtrace fingerprint")
        version = d[_KEY]
        if not isinstance(version, int) or version > FORMAT:
            raise RngtraceError(f"fingerprint format {version!r} is newer than this "
                                f"rngtrace's ({FORMAT})")
        gens = d.get("generators")
        if not isinstance(gens, list):
            raise RngtraceError("not an rngtrace fingerprint: no list of generators")
        return cls(tuple(GeneratorPrint.from_dict(g) for g in gens))


#: How a generator stands after a resume (see :func:`rngtrace.check_restored`).
CheckKind = Literal["restored", "drew-after-restore", "not-restored", "restored-elsewhere",
                    "differs", "missing"]
CHECK_KINDS: tuple[CheckKind, ...] = get_args(CheckKind)
#: The kinds of a generator that goes on from the checkpoint's state.
RESTORED: tuple[CheckKind, ...] = ("restored", "drew-after-restore")


@dataclass(frozen=True, slots=True)
class GeneratorCheck:
    """One generator after a resume: ``kind`` (one of :data:`CheckKind`), a sentence
    that starts with its name, and how to fix it (``""`` when nothing is wrong)."""

    name: str
    kind: CheckKind
    text: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.kind in RESTORED


@dataclass(frozen=True, slots=True)
class RestoreCheck:
    """The result of :func:`rngtrace.check_restored`: each generator of the saved
    fingerprint, and whether all go on from the checkpoint's states (``ok``)."""

    generators: tuple[GeneratorCheck, ...]

    @property
    def ok(self) -> bool:
        return all(g.ok or g.kind == "missing" for g in self.generators)

    @property
    def problems(self) -> tuple[GeneratorCheck, ...]:
        return tuple(g for g in self.generators if not g.ok and g.kind != "missing")

    def report(self) -> str:
        """One line per generator, the problems first, each with its fix."""
        head = ("every generator goes on from the checkpoint's state" if self.ok else
                f"{len(self.problems)} of {len(self.generators)} generators do not go "
                "on from the checkpoint's state")
        lines = [f"rngtrace: {head}"]
        for g in sorted(self.generators, key=lambda g: g.ok or g.kind == "missing"):
            lines.append(f"  {g.text}" + (f"; {g.fix}" if g.fix else ""))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "generators": [dataclasses.asdict(g) for g in self.generators]}
