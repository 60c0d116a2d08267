"""What every check needs: the logs with their labels and ranks, what a seeding event
is, which draws a restore undid, and when two draws drew the same values."""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import IncomparableLogsError, RngtraceError
from ..log import UNCHANGED, Draw, Event, Log, cpu_state_digest
from ..ranks.compare import signature

_LOADER_API = "torch.utils.data."  # DataLoader.__iter__, samplers: the data pipeline
_CALL = re.compile(r"^([\w.]+)\((.*)\)$")


@dataclass(frozen=True, slots=True)
class Source:
    """A log being checked, with the label and rank findings name it by."""

    label: str
    rank: int | None
    log: Log


def arrange(logs: Log | Sequence[Log], labels: Sequence[str] | None) -> list[Source]:
    """The logs as sources, by rank where every header has one (else in the order
    given); refuses light-mode logs, two logs of one rank, and mixed digests."""
    items = [logs] if isinstance(logs, Log) else list(logs)
    if not items:
        raise RngtraceError("check needs at least one log")
    if labels is not None and len(labels) != len(items):
        raise RngtraceError(f"{len(labels)} labels for {len(items)} logs")
    names = list(labels) if labels is not None else [_label(log, i, len(items))
                                                      for i, log in enumerate(items)]
    for name, log in zip(names, items, strict=True):
        if log.level != "op":
            raise RngtraceError(f"{name} was recorded at module level (the light mode): "
                                "check reads op-level logs (record without --level module)")
    digests = {d for d in (cpu_state_digest(log) for log in items) if d is not None}
    if len(digests) > 1:
        raise IncomparableLogsError(
            f"the logs digest CPU generator states in different ways ({', '.join(sorted(digests))})"
            ": record them again with this rngtrace")
    sources = [Source(n, rank_of(log), log) for n, log in zip(names, items, strict=True)]
    seen: dict[int, str] = {}
    for s in sources:
        if s.rank is not None and s.rank in seen:
            raise RngtraceError(f"two logs for rank {s.rank}: {seen[s.rank]} and {s.label}")
        if s.rank is not None:
            seen[s.rank] = s.label
    if len(sources) > 1 and all(s.rank is not None for s in sources):
        sources.sort(key=lambda s: s.rank or 0)
    return sources


def _label(log: Log, i: int, n: int) -> str:
    """The file a window streamed to, else the rank, else the position."""
    path, rank = log.meta.get("path"), rank_of(log)
    if isinstance(path, str) and path:
        return os.path.basename(path)
    if rank is not None:
        return f"rank {rank}"
    return "log" if n == 1 else f"log {i}"


def rank_of(log: Log) -> int | None:
    d = log.meta.get("dist")
    r = d.get("rank") if isinstance(d, dict) else None
    return r if type(r) is int else None


# -- events ------------------------------------------------------------------------------
EventRole = Literal["seed", "entropy", "restore", "other"]


def role(e: Event) -> EventRole:
    """What a ``reseed`` or ``gap`` event did to its generator: ``seed`` (a seed
    given: ``torch.manual_seed(0)``, ``random.seed(0)``), ``entropy`` (seeded from the
    OS: ``torch.seed()``, ``random.seed()``), ``restore`` (a state set back:
    ``set_rng_state``, ``setstate``, ``set_state``, and gaps, whose cause is unseen) or
    ``other``."""
    if e.kind == "gap":
        return "restore"
    if e.kind != "reseed":
        return "other"
    m = _CALL.match(e.detail.removesuffix(UNCHANGED))
    if m is None:
        return "other"
    name, args = m.group(1).rsplit(".", 1)[-1], m.group(2).strip()
    if name in ("manual_seed", "manual_seed_all"):
        return "seed"
    if name in ("seed", "seed_all"):
        # torch.seed() takes a seed from the OS; random.seed(x) and np.random.seed(x) seed
        # with x, and from the OS with None (the log shows positional arguments only:
        # "random.seed()" may have had a keyword seed, so it is not called either)
        if not m.group(1).startswith(("random.", "numpy.")):
            return "entropy"
        return "other" if not args else "entropy" if args == "None" else "seed"
    if name in ("set_rng_state", "set_rng_state_all", "setstate", "set_state"):
        return "restore"
    return "other"


def call(e: Event) -> str:
    """The call an event records (``torch.manual_seed(0)``), with its site when known."""
    text = e.detail.removesuffix(UNCHANGED) or e.kind
    return f"{text} at {e.site}" if e.site else text


def changed(e: Event) -> bool:
    """Whether the event moved its generator (a reseed to the state it had did not)."""
    return not e.detail.endswith(UNCHANGED)


def restored(log: Log) -> set[int]:
    """Indices of draws whose consumption a later restore undid: a state set back (or a
    gap) after which the generator continues from the state an earlier draw started
    from. Those draws ran in an isolated stretch (``fork_rng``, ``isolate_rng``, a
    pipeline's shape inference, a checkpoint's forward before its recompute)."""
    by_gen: dict[str, list[Draw]] = {}
    for d in log.draws:
        if d.worker is None and d.state_before is not None:
            by_gen.setdefault(d.generator, []).append(d)
    # per generator: the positions (in its own draws) each state started a draw at
    starts: dict[str, dict[str | None, list[int]]] = {}
    for gen, draws in by_gen.items():
        at = starts[gen] = {}
        for i, d in enumerate(draws):
            at.setdefault(d.state_before, []).append(i)
    out: set[int] = set()
    for e in log.events:
        mine = by_gen.get(e.generator)
        if not mine or role(e) != "restore" or not changed(e):
            continue
        pos = _first_at(mine, e.before)
        if pos == len(mine):
            continue
        earlier = starts[e.generator][mine[pos].state_before]
        k = bisect.bisect_left(earlier, pos) - 1
        if k >= 0:
            out.update(d.index for d in mine[earlier[k]:pos])
    return out


def _first_at(draws: list[Draw], index: int) -> int:
    """Position of the first of ``draws`` (in index order) at or after ``index``."""
    lo, hi = 0, len(draws)
    while lo < hi:
        mid = (lo + hi) // 2
        if draws[mid].index < index:
            lo = mid + 1
        else:
            hi = mid
    return lo


# -- draws -------------------------------------------------------------------------------
def loader_draw(d: Draw) -> bool:
    """A draw of torch's data pipeline (``DataLoader.__iter__``, a sampler)."""
    return d.api is not None and d.api.startswith(_LOADER_API)


def drawn(d: Draw) -> bool:
    """A draw that produced values from a known state (not on meta, not a no-op)."""
    return d.consumed and d.state_before is not None and bool(d.op)


def inductor(d: Draw) -> bool:
    """A draw inside an Inductor graph: its values come from the graph's seed draw and
    the node's own seed index, which the log keeps as the node's place in the call."""
    return d.graph is not None and d.graph != "fx" and not d.graph.startswith("inductor:")


def positions(draws: Sequence[Draw]) -> dict[int, int]:
    """For Inductor draws: their place among the draws of one graph call (the draws of
    a call are written together, all with the state of its one seed draw)."""
    out: dict[int, int] = {}
    prev: Draw | None = None
    for d in draws:
        if not inductor(d):
            prev = None
            continue
        same = (prev is not None and prev.index + 1 == d.index and prev.graph == d.graph
                and prev.state_before == d.state_before and prev.step == d.step)
        out[d.index] = out[prev.index] + 1 if same and prev is not None else 0
        prev = d
    return out


def value_key(d: Draw, place: dict[int, int]) -> tuple[Any, ...]:
    """Equal keys, equal values: what fixes a draw's values (op, arguments, local
    shape, dtype, the state it starts from; for an Inductor draw its graph and place)."""
    if inductor(d):
        return ("graph", d.graph, place.get(d.index, 0), d.op, d.shape, d.state_before)
    return signature(d)


def describe(d: Draw, model: bool = False) -> str:
    """A draw's owner in words: ``module.1 (Dropout)``, ``0.weight``, ``outside modules``;
    with ``model``, its model first (``Linear#2:weight``) where the log names one."""
    if d.target is not None:
        text = d.target
    elif d.module is not None:
        text = f"{d.where} ({d.module_type})" if d.module_type else d.where
    else:
        return "outside modules"
    return f"{d.model}:{text}" if model and d.model is not None else text


def names(items: Sequence[str], limit: int = 4) -> str:
    """``a, b, c`` or ``a, b, c, d and 3 more``."""
    unique = list(dict.fromkeys(items))
    if len(unique) <= limit:
        return ", ".join(unique)
    return f"{', '.join(unique[:limit])} and {len(unique) - limit} more"
