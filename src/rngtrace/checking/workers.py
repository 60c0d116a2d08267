"""Workers: DataLoader workers that drew identical streams (the same augmentation in
every worker), read by :func:`rngtrace.diffing.workers.copied_streams`.

Two causes look alike in a log and are told apart by the generator: torch seeds its own
generator, ``random`` and NumPy's global generator in each worker, so identical streams
there mean something seeded them alike in every worker (a constant ``worker_init_fn``);
any other generator (``np.random.default_rng(0)`` or ``random.Random(0)`` held by the
Dataset, a ``torch.Generator``) was copied into every worker with the Dataset.
"""

from __future__ import annotations

from ..diffing.workers import CopiedStream, copied_streams
from ..log import Draw, Log
from ..text import plural
from .common import Source
from .model import Evidence, Finding

#: Generators torch seeds per worker (base_seed + worker id).
PER_WORKER = ("default:cpu", "python:random", "numpy:global")


def _first(log: Log, gen: str, worker: int) -> Draw | None:
    return next((d for d in log.draws if d.generator == gen and d.worker == worker
                 and d.consumed), None)


def copied_workers(src: Source) -> list[Finding]:
    out = []
    for c in copied_streams(src.log):
        out.append(_finding(src, c))
    return out


def _finding(src: Source, c: CopiedStream) -> Finding:
    ids = ", ".join(map(str, c.workers))
    first = [_first(src.log, c.generator, w) for w in c.workers]
    site = next((d.site or d.module for d in first if d is not None and (d.site or d.module)),
                None)
    where = c.held_by or (site or c.generator)
    if c.generator in PER_WORKER:
        summary = (f"DataLoader workers {ids} drew identical streams from {c.generator} "
                   f"({plural(c.draws, 'draw')} each, at {site or '?'}): it "
                   "was reseeded alike in every worker")
        why = ("torch seeds this generator differently in each worker; identical streams "
               "mean a worker_init_fn (or Dataset code) seeded it with a constant, so every "
               "worker applies the same random augmentation")
        fix = ("seed it from the worker's own seed in worker_init_fn: "
               "np.random.seed(torch.utils.data.get_worker_info().seed % 2**32)")
    else:
        held = f" ({c.held_by})" if c.held_by else ""
        summary = (f"DataLoader workers {ids} drew identical streams from {c.generator}"
                   f"{held} ({plural(c.draws, 'draw')} each): a generator "
                   "copied into every worker")
        why = ("a generator held by the Dataset is copied into each worker process as it is, "
               "so every worker draws the same values: the same augmentation repeats across "
               "the workers' batches")
        fix = (f"reseed {c.held_by or 'it'} in worker_init_fn from "
               "torch.utils.data.get_worker_info().seed, or draw from torch in __getitem__")
    evidence = tuple(Evidence.of(d, src.label, src.rank) for d in first if d is not None)
    return Finding("copied-worker-stream", "error", summary, (c.generator,), (where,),
                   evidence, why, fix, (src.label,))
