"""Building a :class:`RankReport`: the relations, what they mean, and the problems."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..log import Log
from ..text import noun, plural
from .compare import (
    Aligner,
    by_key,
    forward_key,
    init_key,
    key_name,
    order_logs,
    parallelism,
    rank_info,
    sampler_key,
)
from .model import RankReport, Relation

_SHARD_SAME = ("every rank drew its shard from the same generator state: the shards are "
               "copies, not parts of one random tensor")
_SHARD_DIFFER = "each rank drew its shard from its own state, as parts of one tensor should"
_REPL_SAME = "every rank starts from the same values, as replicas should"
_REPL_DDP = ("harmless: DDP broadcasts rank 0's parameters and buffers when it wraps the "
             "model")
_REPL_BUG = "each rank trains another initialisation: seed every rank alike before building"
_FWD_SAME = ("same masks on every rank: tensor-parallel replicas need exactly this; with "
             "data parallelism (DDP, FSDP) the ranks' dropout is correlated (rngtrace check "
             "reports it)")
_FWD_DIFFER = ("masks differ across ranks: expected with data parallelism; with tensor "
               "parallelism a replicated activation's masks must agree")


def build(logs: Sequence[Log], labels: Sequence[str] | None) -> RankReport:
    ranked = order_logs(logs, labels)
    align = Aligner(ranked)
    seen = parallelism([log for _, _, log in ranked])
    ddp = "DDP" in seen
    params = _parameters(align, ranked, ddp)
    forward = _streams(align, ranked, "forward", forward_key)
    samplers = _streams(align, ranked, "sampler", sampler_key)
    return RankReport(tuple(rank_info(r, n, log) for r, n, log in ranked), seen,
                      tuple(params), tuple(forward), tuple(samplers),
                      _problems(params, samplers))


def _parameters(align: Aligner, ranked: list[tuple[int, str, Log]], ddp: bool
                ) -> list[Relation]:
    keyed = {r: by_key(log.draws, init_key) for r, _, log in ranked}
    keys: dict[Any, None] = {}
    for k in keyed.values():
        keys.update(dict.fromkeys(k))
    models = {m for m, _ in keys}
    out = []
    for key in keys:
        relation, groups, first = align.relation(keyed, key)
        placement = first[0].placement or "replicated"
        sharded = "S(" in placement
        why = ""
        if relation == "same":
            verdict, meaning = ("bug", _SHARD_SAME) if sharded else ("ok", _REPL_SAME)
        elif relation == "differ":
            why = align.why(groups, keyed, key, key[1])
            if sharded:
                verdict, meaning = "ok", _SHARD_DIFFER
            else:
                verdict, meaning = ("harmless", _REPL_DDP) if ddp else ("bug", _REPL_BUG)
        else:
            present = sorted(r for g in groups for r in g)
            verdict = "ok"
            meaning = (f"only {noun(len(present), 'rank')} "
                       f"{', '.join(map(str, present))} drew it (a pipeline stage, or "
                       "another model on the other ranks)")
        out.append(Relation("parameter", key_name(key, models), relation, groups,
                            len(first), placement, verdict, why, meaning))
    return out


def _streams(align: Aligner, ranked: list[tuple[int, str, Log]], kind: str, pick: Any
             ) -> list[Relation]:
    keyed = {r: by_key(log.draws, pick) for r, _, log in ranked}
    keys: dict[Any, None] = {}
    for k in keyed.values():
        keys.update(dict.fromkeys(k))
    out = []
    for key in keys:
        relation, groups, first = align.relation(keyed, key)
        d = first[0]
        why, verdict = "", "ok"
        if kind == "forward":
            name = d.where + (f" ({d.module_type})" if d.module_type else "")
            meaning = _FWD_SAME if relation == "same" else _FWD_DIFFER
        else:
            name = f"randperm({d.shape[0] if d.shape else '?'}) on {key[0]} at {d.site}"
            meaning, verdict = _sampler_meaning(key[0] == "explicit", relation)
        if relation == "differ":
            why = align.why(groups, keyed, key, None)
        out.append(Relation(kind, name, relation, groups, len(first), "", verdict, why,
                            meaning))
    return out


def _sampler_meaning(explicit: bool, relation: str) -> tuple[str, str]:
    if explicit and relation == "same":
        return ("the same permutation on every rank, by design for a DistributedSampler "
                "(seeded with seed + epoch): each rank takes its own slice"), "ok"
    if explicit:
        return ("the ranks shuffled differently: a DistributedSampler's slices then "
                "overlap and miss samples (give every rank the same sampler seed)"), "bug"
    if relation == "same":
        return ("the same permutation on every rank from the default generator: unless a "
                "DistributedSampler splits the data, every rank trains on the same "
                "batches"), "ok"
    return "each rank shuffles with its own default generator state", "ok"


def _problems(params: list[Relation], samplers: list[Relation]) -> tuple[str, ...]:
    out = []
    bad = [p for p in params if p.verdict == "bug" and p.relation == "differ"]
    if bad:
        out.append(f"{plural(len(bad), 'replicated parameter')} differ "
                   f"across ranks, first {bad[0].name}: {bad[0].why}; {_REPL_BUG}")
    equal = [p for p in params if p.verdict == "bug" and p.relation == "same"]
    if equal:
        out.append(f"{plural(len(equal), 'sharded parameter')} drew "
                   f"equal shards on every rank, first {equal[0].name} ({equal[0].placement})"
                   f": {_SHARD_SAME} (DTensor's random ops offset the generator per shard "
                   "only on CUDA-like meshes; on a CPU mesh they only warn)")
    for s in samplers:
        if s.verdict == "bug":
            out.append(f"sampler {s.name}: {s.meaning}")
    return tuple(out)
