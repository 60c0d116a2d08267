"""Where a process sits in a ``torch.distributed`` job: rank fields, per-rank log names,
and the local shard of a DTensor drawn into.

A process is part of a job when torchrun's ``RANK`` is set in its environment or a
process group is initialised. Its log header then holds ``meta["dist"]``: ``rank``,
``local_rank``, ``world_size``, ``backend`` (None until the program initialises the
process group; refreshed when the window closes) and ``host``; and ``record(path=...)``
writes ``<stem>.rank<R>.rngtrace.jsonl`` instead of the path given, so that the ranks of
one job do not write one file.

>>> rank_path("out/train.rngtrace.jsonl", 1)
'out/train.rank1.rngtrace.jsonl'
>>> rank_path("run.jsonl", 0), rank_path("log", 3), rank_path("r{rank}.jsonl", 2)
('run.rank0.jsonl', 'log.rank3', 'r2.jsonl')
"""

from __future__ import annotations

import functools
import os
import socket
from typing import Any

import torch

from ..basics.patches import Patches

SUFFIX = ".rngtrace.jsonl"


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "")
    return int(value) if value.strip().isdigit() else None


def rank_meta() -> dict[str, Any] | None:
    """The job this process belongs to, or None outside one (see the module doc)."""
    rank, world, local = _env_int("RANK"), _env_int("WORLD_SIZE"), _env_int("LOCAL_RANK")
    backend = None
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        backend = str(dist.get_backend())
    if rank is None:
        return None
    return {"rank": rank, "local_rank": local, "world_size": world, "backend": backend,
            "host": socket.gethostname()}


def refresh(meta: dict[str, Any]) -> None:
    """Update ``meta["dist"]`` as a window closes: the program may have initialised the
    process group (and so chosen the backend) after the header was written."""
    now = rank_meta()
    if now is not None:
        meta["dist"] = {**meta.get("dist", {}), **{k: v for k, v in now.items()
                                                     if v is not None}}


class GroupWatch:
    """Keeps a window's ``meta["dist"]`` current: refreshed just before the program calls
    ``torch.distributed.destroy_process_group`` (after which the backend is forgotten)
    and when the window closes. Only the function is wrapped; it runs unchanged."""

    def __init__(self) -> None:
        self._meta: dict[str, Any] | None = None
        self._patches = Patches()

    def open(self, meta: dict[str, Any]) -> None:
        self._meta = meta
        dist = torch.distributed
        if not dist.is_available():
            return
        orig = dist.destroy_process_group

        @functools.wraps(orig)
        def destroy_process_group(*args: Any, **kwargs: Any) -> Any:
            refresh(meta)
            return orig(*args, **kwargs)

        self._patches.replace_if(dist, "destroy_process_group", destroy_process_group, orig)

    def close(self) -> None:
        self._patches.restore()
        if self._meta is not None:
            refresh(self._meta)


def rank_path(path: str | os.PathLike[str], rank: int) -> str:
    """``path`` for rank ``rank``: ``{rank}`` in it is replaced, else ``.rank<R>`` goes
    before ``.rngtrace.jsonl`` (or before the last extension)."""
    path = os.fspath(path)
    if "{rank}" in path:
        return path.replace("{rank}", str(rank))
    head, name = os.path.split(path)
    if name.endswith(SUFFIX) and len(name) > len(SUFFIX):
        stem, ext = name[: -len(SUFFIX)], SUFFIX
    else:
        stem, ext = os.path.splitext(name)
    return os.path.join(head, f"{stem}.rank{rank}{ext}")


def job_path(path: str | os.PathLike[str]) -> str | os.PathLike[str]:
    """``path`` as this process should write it: per rank inside a job, else unchanged."""
    meta = rank_meta()
    return path if meta is None else rank_path(path, meta["rank"])


def shard_fields(t: Any) -> tuple[tuple[int, ...] | None, tuple[int, ...] | None, str | None]:
    """For a DTensor (an FSDP2-sharded parameter is one): its local shard's shape, the
    shard's offset in the global tensor, and the placements (``"Shard(dim=0)"``); three
    Nones for a plain tensor. The dispatch mode sees the DTensor-level op, whose shape
    is the global one."""
    placements = getattr(t, "placements", None)
    mesh = getattr(t, "device_mesh", None)
    if placements is None or mesh is None or not isinstance(t, torch.Tensor):
        return None, None, None
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

    shape, offset = compute_local_shape_and_global_offset(tuple(t.shape), mesh, placements)
    return (tuple(int(x) for x in shape), tuple(int(x) for x in offset),
            ", ".join(str(p) for p in placements))
