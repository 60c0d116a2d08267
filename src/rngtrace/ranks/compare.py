"""Aligning the logs of a job's ranks: per parameter, per forward stream, per sampler.

A draw's values are fixed by what it is and the generator state it starts from, so two
ranks drew the same values when their draws have the same op, scalar arguments, local
shape, dtype and state before. Parameters are aligned by state_dict key, forward
streams by module, samplers by call site: never by position, so an extra draw on one
rank shows as that rank's difference, not as everything after it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from ..diffing import Diff, diff
from ..errors import RngtraceError
from ..log import Draw, Log
from .model import RankInfo

_SEED = re.compile(r"manual_seed\((?:seed=)?(-?\d+)")
_DDP = "module."  # DistributedDataParallel keeps the model as its attribute `module`

Key = tuple[str | None, str]


def signature(d: Draw) -> tuple[Any, ...]:
    """What fixes a draw's values: equal signatures drew equal values.

    On CUDA-like meshes DTensor's RNG tracker moves the Philox offset by the shard's
    position inside the op, after the state the recorder reads (which is the same on
    every rank): there the shard's offset is part of what fixes its values. On a CPU
    mesh the local op draws straight from the generator, offset or not.
    """
    tracked = (d.placement is not None and "S(" in d.placement
               and not d.device.startswith(("cpu", "meta")))
    return (d.op, tuple(sorted(d.args.items())), d.local_shape or d.shape, d.dtype,
            d.state_before, d.consumed, d.local_offset if tracked else None)


def stream(generator: str) -> str:
    """A generator's name without its device index: every rank of a GPU job draws from
    its own device's default generator (``default:cuda:0`` on rank 0, ``:1`` on 1)."""
    return "default:cuda" if generator.startswith("default:cuda:") else generator


def order_logs(logs: Sequence[Log], labels: Sequence[str] | None
               ) -> list[tuple[int, str, Log]]:
    """The logs as (rank, label, log), by rank: the header's rank, else the position."""
    if len(logs) < 2:
        raise RngtraceError(f"comparing ranks needs 2 logs or more, not {len(logs)}")
    names = list(labels) if labels is not None else [
        os.path.basename(log.file.path if log.file is not None else "") or f"log {i}"
        for i, log in enumerate(logs)]
    found = [_rank_of(log) for log in logs]
    if any(r is None for r in found):
        found = list(range(len(logs)))  # no rank in some header: the order given
    seen: dict[int, str] = {}
    for r, name in zip(found, names, strict=True):
        assert r is not None
        if r in seen:
            raise RngtraceError(f"two logs for rank {r}: {seen[r]} and {name}")
        seen[r] = name
    return sorted(((r, n, log) for r, n, log in zip(found, names, logs, strict=True)
                   if r is not None), key=lambda t: t[0])


def _rank_of(log: Log) -> int | None:
    d = log.meta.get("dist")
    r = d.get("rank") if isinstance(d, dict) else None
    return r if type(r) is int else None


def seed_at(log: Log, generator: str, index: int) -> tuple[int | None, str | None]:
    """The seed in effect for ``generator`` at draw ``index``, and the site that set it:
    the last reseed before it (when its call names a seed), else the window's seed."""
    last = None
    for e in log.events:
        if e.kind == "reseed" and e.generator == generator and e.before <= index:
            last = e
    if last is not None:
        m = _SEED.search(last.detail)
        return (int(m.group(1)) if m else None), last.site
    info = log.generators.get(generator)
    return (info.initial_seed if info is not None else None), None


def rank_info(rank: int, label: str, log: Log) -> RankInfo:
    d = log.meta.get("dist")
    dist: dict[str, Any] = d if isinstance(d, dict) else {}
    seeds: dict[str, int | None] = {}
    for draw in log.draws:
        if stream(draw.generator) not in seeds and draw.consumed:
            seeds[stream(draw.generator)] = seed_at(log, draw.generator, draw.index)[0]
    return RankInfo(rank, label, dist.get("world_size"), dist.get("local_rank"),
                    dist.get("host"), dist.get("backend"), len(log.draws), seeds)


def groups_of(sigs: dict[int, Any]) -> tuple[tuple[int, ...], ...]:
    """Ranks grouped by equal values, in rank order (``{0: a, 1: b, 2: a}`` gives
    ``((0, 2), (1,))``)."""
    out: dict[Any, list[int]] = {}
    for r in sorted(sigs):
        out.setdefault(sigs[r], []).append(r)
    return tuple(tuple(g) for g in out.values())


def by_key(draws: Sequence[Draw], pick: Any) -> dict[Any, list[Draw]]:
    """Draws grouped by ``pick(draw)`` (None: left out), in order of first draw."""
    out: dict[Any, list[Draw]] = {}
    for d in draws:
        k = pick(d)
        if k is not None:
            out.setdefault(k, []).append(d)
    return out


def init_key(d: Draw) -> Key | None:
    if d.target is None or d.discarded or not d.consumed or d.phase != "init":
        return None
    return (d.model, d.target)


def forward_key(d: Draw) -> tuple[str | None, str | None, str] | None:
    return (d.model, d.module, d.op) if d.phase == "forward" and d.consumed else None


def sampler_key(d: Draw) -> tuple[str, str | None] | None:
    if d.op != "aten::randperm" or not d.consumed:
        return None
    return ("explicit" if d.generator.startswith("generator:") else stream(d.generator),
            d.site)


class Aligner:
    """The ranks' logs, with the pairwise diffs computed once when a cause is asked."""

    def __init__(self, ranked: list[tuple[int, str, Log]]) -> None:
        self.logs = {r: log for r, _, log in ranked}
        self._diffs: dict[tuple[int, int], Diff] = {}

    def relation(self, keyed: dict[int, dict[Any, list[Draw]]], key: Any
                 ) -> tuple[str, tuple[tuple[int, ...], ...], list[Draw]]:
        """Relation, groups, and the first present rank's draws for ``key``."""
        sigs = {r: tuple(signature(d) for d in k[key]) for r, k in keyed.items() if key in k}
        first = next(keyed[r][key] for r in sorted(sigs))
        groups = groups_of(sigs)
        if len(sigs) < len(keyed):
            return "missing", groups, first
        return ("same" if len(groups) == 1 else "differ"), groups, first

    def why(self, groups: tuple[tuple[int, ...], ...], keyed: dict[int, dict[Any, list[Draw]]],
            key: Any, target: str | None) -> str:
        """One line: why the first rank of the first two groups drew other values."""
        a, b = groups[0][0], groups[1][0]
        da, db = keyed[a][key][0], keyed[b][key][0]
        seeds = {r: seed_at(self.logs[r], keyed[r][key][0].generator,
                            keyed[r][key][0].index) for r in keyed if key in keyed[r]}
        if len({s for s, _ in seeds.values()}) > 1:
            per = ", ".join(f"rank {r}: {s}" for r, (s, _) in sorted(seeds.items()))
            sites = sorted({site for _, site in seeds.values() if site})
            return (f"another seed per rank on {stream(da.generator)} ({per})"
                    + (f", set at {', '.join(sites)}" if sites else ""))
        if stream(da.generator) != stream(db.generator) and not da.generator.startswith(
                "generator:"):
            return f"another generator: {da.generator} on rank {a}, {db.generator} on rank {b}"
        d = self._diffs.get((a, b))
        if d is None:
            d = self._diffs[(a, b)] = diff(self.logs[a], self.logs[b],
                                           labels=(f"rank {a}", f"rank {b}"))
        causes = [c for c in d.causes if not c.consequence]
        hit = next((c for c in causes if target is not None and
                    (c.target == target or target in c.shifted_targets)), None)
        c = hit or (causes[0] if causes else None)
        if c is None:
            return f"other generator states on rank {a} and rank {b} (nothing recorded explains it)"
        return c.summary + (f" at {c.site}" if c.site else "")


def parallelism(logs: Sequence[Log]) -> str:
    ddp = any(d.module is not None and (d.module == "module" or d.module.startswith(_DDP))
              for log in logs for d in log.draws)
    sharded = any(d.placement is not None and "S(" in d.placement
                  for log in logs for d in log.draws)
    seen = [name for name, yes in (("DDP", ddp), ("sharded", sharded)) if yes]
    return "+".join(seen) or "none seen"


def key_name(key: Key, models: set[str | None]) -> str:
    model, target = key
    return f"{model}:{target}" if len(models) > 1 and model is not None else target
