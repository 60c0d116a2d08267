"""DataLoader workers: their Python and NumPy draws, recorded in each worker, merged.

Workers are other processes: a forked worker inherits the window's patches and a copy of
its :class:`~.pystreams.PyStreams`, but not its log. While a window
is open, a DataLoader fetch (``_MapDatasetFetcher.fetch`` and its iterable twin, which
call the Dataset's ``__getitem__``) is a boundary for the NumPy Generators the Dataset
holds, and in a worker every record is kept in that process and appended to a part file
of its own (one per worker process, in a temporary directory of the window) at the end
of each fetch, before the batch is sent back. When the window closes, the parts are read
and added to the log after the window's own draws, ordered by worker, each draw with
``Draw.worker`` set to the worker's id and ``step`` the optimizer steps done when the
worker started. Torch's per-worker seeding of ``random`` and NumPy's global generator is
expected and not logged. Torch's draws in a worker (``torch.rand`` in ``__getitem__``)
are recorded too, by the worker's copy of the op-level recorder (the dispatch mode is
inherited), with the generator, the states and the Dataset method that drew; names are
not resolved against the models there (``module`` is the Dataset method or the module's
provisional name).

A worker's part only holds what its fetches drew: a worker still running when the window
closes (``persistent_workers``, ``record(steps=N)`` stopping mid-epoch) adds nothing
after that.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from torch.utils.data import get_worker_info
from torch.utils.data._utils import fetch as _fetch

from .pystreams import current

if TYPE_CHECKING:
    from ..basics.patches import Patches
    from .pystreams import PyStreams


class WorkerPart:
    """The records of one worker process, appended to its part file at each fetch's end."""

    def __init__(self, directory: str, step: int) -> None:
        self._directory = directory
        self._step = step  # the window's optimizer steps when the worker started
        self._lines: list[str] = []
        self._seq = 0

    def active(self) -> bool:
        """Whether this process is a DataLoader worker that has started."""
        return get_worker_info() is not None

    def draw(self, fields: dict[str, Any]) -> None:
        info = get_worker_info()
        if info is None:  # a fork that is not a DataLoader worker (or not yet started)
            return
        rec = dict(fields, worker=info.id, step=self._step, shape=list(fields["shape"]),
                   seq=self._seq)
        self._seq += 1
        self._lines.append(json.dumps(rec))

    def flush(self) -> None:
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        try:
            with open(os.path.join(self._directory, f"{os.getpid()}.jsonl"), "a") as f:
                f.write("\n".join(lines) + "\n")
        except OSError:
            pass  # the window closed and took the directory: nothing to add to


def install(streams: PyStreams, patches: Patches) -> None:
    """Make the fetches boundaries, and a directory for the workers' parts."""
    for cls in (_fetch._MapDatasetFetcher, _fetch._IterableDatasetFetcher):
        orig = cls.__dict__.get("fetch")
        if orig is not None:
            patches.replace_if(cls, "fetch", _wrap_fetch(orig), orig)
    streams.keep_parts_in(tempfile.mkdtemp(prefix="rngtrace-workers-"))


def _wrap_fetch(orig: Callable[..., Any]) -> Callable[..., Any]:
    def fetch(self: Any, possibly_batched_index: Any) -> Any:
        ps = current()
        if ps is None or not ps.active():
            return orig(self, possibly_batched_index)
        return ps.fetch(orig, self, possibly_batched_index)

    fetch.__doc__ = orig.__doc__
    return fetch


def _in_child() -> None:
    ps = current()
    if ps is not None:
        ps.forked(WorkerPart)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_child)


def collect(streams: PyStreams) -> list[dict[str, Any]]:
    """The workers' records (Draw fields, ``step`` and ``worker`` included), by worker;
    removes the parts. Empty in a worker, or when no worker drew."""
    directory = streams.take_parts()
    if directory is None:
        return []
    records = []
    try:
        for name in os.listdir(directory):
            with open(os.path.join(directory, name)) as f:
                pid = int(name.split(".")[0])
                for line in f:
                    rec = json.loads(line)
                    records.append((rec["worker"], pid, rec.pop("seq"), rec))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    records.sort(key=lambda r: r[:3])
    out = []
    for *_, rec in records:
        rec["shape"] = tuple(rec["shape"])
        out.append(rec)
    return out
