"""DataLoader workers that drew identical streams from a generator copied into them.

torch seeds ``random``, NumPy's global generator and its own in each worker, but a
generator held by the Dataset (``self.rng = np.random.default_rng(0)``,
``random.Random(0)``) is copied into every worker as it is: each worker then draws the
same values. In a log, the workers' draws carry ``Draw.worker``; a generator whose
streams in two or more workers are the same (the same states, draw for draw, from the
same first state) is flagged, with the attribute that holds it (``held_by``) and the fix.

>>> from rngtrace import Draw, Log
>>> def d(i, w, state):
...     return Draw(i, "numpy.Generator", "DS.__getitem__", "DS", None, "other", 0, (), "",
...                 "cpu", 2, {"held_by": "DS.rng"}, "numpy:Generator#1", state, state + "'",
...                 True, None, None, None, worker=w)
>>> found = copied_streams(Log(draws=[d(0, 0, "a"), d(1, 1, "a")]))
>>> found[0].line()  # doctest: +ELLIPSIS
'workers 0, 1 drew identical streams from numpy:Generator#1 (DS.rng, 1 draw each): ...'
"""

from __future__ import annotations

from dataclasses import dataclass

from ..log import Log
from ..text import plural


@dataclass(frozen=True, slots=True)
class CopiedStream:
    """One generator that several workers drew the same values from."""

    generator: str
    workers: tuple[int, ...]
    held_by: str | None  # the attribute holding it (``"MyDataset.rng"``), when known
    draws: int  # draws per worker compared

    def line(self) -> str:
        where = f"{self.held_by}, " if self.held_by else ""
        fix = (f"seed {self.held_by or 'it'} per worker in worker_init_fn (e.g. from "
               "torch.utils.data.get_worker_info().seed), or draw from torch")
        ids = ", ".join(str(w) for w in self.workers)
        return (f"workers {ids} drew identical streams from {self.generator} ({where}"
                f"{plural(self.draws, 'draw')} each): a generator copied into every "
                f"worker; {fix}")


def copied_streams(log: Log) -> list[CopiedStream]:
    """Generators whose streams are the same in two or more DataLoader workers.

    Streams are compared on the states each draw started from, over the draws every
    worker in the group made (the shortest stream's length); workers whose first states
    differ (torch's per-worker seeding of ``random`` and NumPy's global generator) are
    not flagged.
    """
    streams: dict[str, dict[int, list[str | None]]] = {}
    held: dict[str, str] = {}
    for d in log.draws:
        if d.worker is None or not d.consumed:
            continue
        streams.setdefault(d.generator, {}).setdefault(d.worker, []).append(d.state_before)
        h = d.args.get("held_by")
        if isinstance(h, str):
            held.setdefault(d.generator, h)
    found = []
    for gen, by_worker in streams.items():
        groups: dict[tuple[str | None, ...], list[int]] = {}
        n = min(len(s) for s in by_worker.values())
        for w, states in sorted(by_worker.items()):
            groups.setdefault(tuple(states[:n]), []).append(w)
        for workers in groups.values():
            if len(workers) > 1:
                found.append(CopiedStream(gen, tuple(workers), held.get(gen), n))
    return found
