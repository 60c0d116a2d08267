"""Parallel expectations: what the ranks of one job must draw alike, and what apart.

Read from the logs' rank information and the draws' DTensor fields:

- ranks holding the same part of a parameter (replicas: plain tensors, or DTensor
  shards at the same offset, as HSDP's replicas hold them) must draw it alike; plain
  tensors are only judged when nothing in the logs broadcasts or shards them (no DDP
  ``module.`` prefix, no DTensor parameter), and ranks only compared with ranks that
  hold the same parameters (pipeline stages may reuse local names: two ``0.weight``);
- ranks holding different shards of one parameter must not draw them from the same
  state (the shards would be copies);
- under data parallelism (DDP, or FSDP: every DTensor placement shards dim 0) the ranks
  process different batches, so masks drawn in forward, and noise drawn at every step,
  must differ across ranks;
- different parameters or modules on different ranks (pipeline stages) must not be
  drawn from the same states.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..log import Draw
from ..ranks.compare import groups_of, seed_at, signature
from ..text import plural
from .common import Source, describe, drawn, loader_draw, names, positions, restored, value_key
from .model import Evidence, Finding
from .streams import candidate

_DDP = "module"  # DistributedDataParallel's attribute holding the model


@dataclass(frozen=True, slots=True)
class Layout:
    """What the logs show of the job's parallelism."""

    ddp: bool  # module paths under DDP's "module."
    sharded: bool  # some parameter is a DTensor shard
    data_parallel: bool  # DDP, or only FSDP-style placements (dim 0 sharded, replicated)

    def text(self) -> str:
        return " and ".join(w for w, on in (("DDP", self.ddp), ("sharded parameters",
                                                                 self.sharded)) if on)


def layout(sources: Sequence[Source]) -> Layout:
    ddp = any(d.module is not None and (d.module == _DDP or d.module.startswith(_DDP + "."))
              for s in sources for d in s.log.draws)
    places = {d.placement for s in sources for d in s.log.draws if d.placement is not None}
    sharded = any("S(" in p for p in places)
    fsdp = sharded and all(_fsdp_style(p) for p in places)
    return Layout(ddp, sharded, (ddp and not sharded) or fsdp)


def _fsdp_style(placement: str) -> bool:
    """FSDP shards dim 0 (``S(0)``); HSDP adds a replicated dim first (``R, S(0)``)."""
    *rest, last = [p.strip() for p in placement.split(",")]
    return last == "S(0)" and all(p == "R" for p in rest)


def parallel(sources: Sequence[Source]) -> list[Finding]:
    lay = layout(sources)
    out = _parameters(sources, lay)
    if lay.data_parallel:
        out += _alike(sources, lay)
    out += _stages(sources)
    return out


# -- parameters: replicas alike, shards apart --------------------------------------------
def _param_draws(src: Source) -> dict[tuple, list[Draw]]:
    """A rank's initial draws per parameter; unnamed DTensor draws by site and order."""
    out: dict[tuple, list[Draw]] = {}
    seen: dict[tuple, int] = {}
    for d in src.log.draws:
        if not drawn(d) or d.worker is not None or d.replay:
            continue
        if d.target is not None and d.phase == "init" and not d.discarded:
            key: tuple = ("param", d.model, d.target)
        elif d.placement is not None and d.target is None:
            at = (d.site, d.shape, d.placement)
            seen[at] = seen.get(at, 0) + 1
            key = ("dtensor", *at, seen[at])
        else:
            continue
        out.setdefault(key, []).append(d)
    return out


def _name(key: tuple, d: Draw) -> str:
    if key[0] == "param":
        return str(key[2])
    return f"a {'x'.join(map(str, d.shape))} DTensor at {d.site or '?'}"


Members = list[tuple[Source, list[Draw]]]  # the ranks holding a parameter, with its draws


def _parameters(sources: Sequence[Source], lay: Layout) -> list[Finding]:
    keyed = {s.label: _param_draws(s) for s in sources}
    # Ranks are replicas (or shards) of one model only where they hold the same
    # parameters: pipeline stages that reuse local names (two "0.weight") are not judged.
    model = {label: frozenset((k, ds[0].shape) for k, ds in v.items())
             for label, v in keyed.items()}
    differ: list[tuple[str, Members]] = []
    equal: list[tuple[str, Members]] = []
    for key in dict.fromkeys(k for v in keyed.values() for k in v):
        same_model: dict[frozenset, Members] = {}
        for s in sources:
            if key in keyed[s.label]:
                same_model.setdefault(model[s.label], []).append((s, keyed[s.label][key]))
        for present in same_model.values():
            if len(present) > 1:
                _judge(_name(key, present[0][1][0]), present, lay, differ, equal)
    out = []
    if differ:
        out.append(_differ(differ, lay))
    if equal:
        out.append(_equal(equal))
    return out


def _judge(name: str, present: Members, lay: Layout, differ: list[tuple[str, Members]],
           equal: list[tuple[str, Members]]) -> None:
    """Replicas (the same offset and shape, or whole) must agree; shards must not."""
    by_pos: dict[object, Members] = {}
    for s, ds in present:
        first = ds[0]
        at = None if first.placement is None else (first.local_offset, first.local_shape)
        by_pos.setdefault(at, []).append((s, ds))
    for pos, members in by_pos.items():
        if len(members) > 1 and not (pos is None and (lay.ddp or lay.sharded)) and len(
                {_sig(ds) for _, ds in members}) > 1:
            differ.append((name, members))
    if len(by_pos) > 1:
        sigs: dict[tuple, Members] = {}
        for members in by_pos.values():
            sigs.setdefault(_sig(members[0][1]), []).append(members[0])
        twins = next((m for m in sigs.values() if len(m) > 1), None)
        if twins is not None:
            equal.append((name, twins))


def _sig(draws: list[Draw]) -> tuple:
    return tuple(signature(d) for d in draws)


def _evidence(members: Members) -> tuple[Evidence, ...]:
    return tuple(Evidence.of(ds[0], s.label, s.rank, f"rank {s.rank}") for s, ds in members)


def _ranks(members: Members) -> str:
    return ", ".join(str(s.rank) for s, _ in members)


def _differ(found: list[tuple[str, Members]], lay: Layout) -> Finding:
    name, members = found[0]
    shard = members[0][1][0].placement is not None
    seeds = {s.rank: seed_at(s.log, ds[0].generator, ds[0].index) for s, ds in members}
    if len({v for v, _ in seeds.values()}) > 1:
        sites = names([site for _, site in seeds.values() if site])
        cause = ("another seed per rank (" + ", ".join(
            f"rank {r}: {v}" for r, (v, _) in seeds.items()) + ")"
            + (f", set at {sites}" if sites else ""))
    else:
        cause = "the ranks' generators were in other states when they drew them"
    held = ("hold the same shard (replicas, as HSDP keeps them)" if shard else
            "hold them whole and nothing in the logs broadcasts them (no DDP wrapper, no "
            "sharding)")
    summary = (f"{plural(len(found), 'parameter')} differ across ranks that {held}, first "
               f"{name} (ranks {_ranks(members)}): {cause}")
    why = ("each replica trains from another initialisation: the replicas disagree from the "
           "first step" + ("" if shard else ", unless the program broadcasts the parameters "
                                            "itself"))
    fix = ("seed every rank alike before the parameters are drawn (offset the seed per rank "
           "only afterwards, for dropout); FSDP2 does not broadcast parameters, DDP does")
    gens = tuple(dict.fromkeys(ds[0].generator for _, ms in found for _, ds in ms))
    return Finding("replicas-differ", "error", summary, gens, tuple(n for n, _ in found),
                   _evidence(members), why, fix, tuple(s.label for s, _ in members))


def _equal(found: list[tuple[str, Members]]) -> Finding:
    name, members = found[0]
    d = members[0][1][0]
    offsets = " and ".join(str(ds[0].local_offset) for _, ds in members)
    summary = (f"{plural(len(found), 'sharded parameter')} drew equal shards on ranks "
               f"{_ranks(members)}, first {name} ({d.placement}, shards at {offsets}) from "
               f"the same {d.generator} state")
    why = ("every rank drew its shard from the same generator state, so the shards are "
           "copies: the full parameter repeats one block instead of being one random tensor "
           "(DTensor offsets shards only on CUDA-like meshes; CPU meshes and CPU-offloaded "
           "shards draw from the plain CPU generator)")
    fix = ("initialise the full tensor alike on every rank and shard it (distribute_tensor), "
           "or seed each rank's shard differently (by its offset or shard rank)")
    gens = tuple(dict.fromkeys(ds[0].generator for _, ms in found for _, ds in ms))
    return Finding("equal-shards", "error", summary, gens, tuple(n for n, _ in found),
                   _evidence(members), why, fix, tuple(s.label for s, _ in members))


# -- data parallelism: masks and noise apart ---------------------------------------------
def _stream_draws(src: Source) -> dict[tuple, list[Draw]]:
    out: dict[tuple, list[Draw]] = {}
    for d in src.log.draws:
        if (drawn(d) and d.worker is None and not d.replay and d.phase in ("forward", "other")
                and d.target is None and d.placement is None and not loader_draw(d)):
            key = (d.model, d.module, d.op, d.site if d.phase != "forward" else None)
            out.setdefault(key, []).append(d)
    return out


def _alike(sources: Sequence[Source], lay: Layout) -> list[Finding]:
    keyed = {s.label: _stream_draws(s) for s in sources}
    alike = []
    for key in dict.fromkeys(k for v in keyed.values() for k in v):
        present = {s.rank or 0: (s, keyed[s.label][key]) for s in sources
                   if key in keyed[s.label]}  # every source has a rank here
        first = next(iter(present.values()))[1]
        # outside forward, only what every step draws (noise); a dataset made alike on
        # purpose before training is not a stream of the training
        if len(present) < 2 or (first[0].phase != "forward"
                                and len({d.step for d in first}) < 2):
            continue
        groups = groups_of({r: _sig(ds) for r, (_, ds) in present.items()})
        for g in groups:
            if len(g) > 1:
                alike.append((key, [present[r] for r in g]))
    if not alike:
        return []
    what = [(f"masks of {describe(ms[0][1][0])}" if key[3] is None else f"noise at {key[3]}")
            + f" ({plural(len(ms[0][1]), 'draw')})" for key, ms in alike]
    _, members = alike[0]
    summary = (f"data-parallel ranks {_ranks(members)} ({lay.text()}) drew the same random "
               f"numbers: {names(what, 3)}")
    why = ("the ranks train on different batches but apply identical masks and noise, so "
           "their random perturbations are perfectly correlated instead of independent "
           "(reported as huge gradient norms and slower convergence)")
    fix = ("after the parameters are drawn (or broadcast), seed each rank differently: "
           "torch.manual_seed(seed + rank); draw per-sample noise from a per-rank generator")
    evidence = tuple(Evidence.of(ds[0], s.label, s.rank, f"rank {s.rank}")
                     for _, ms in alike[:2] for s, ds in ms)
    gens = tuple(dict.fromkeys(ds[0].generator for _, ms in alike for _, ds in ms))
    return [Finding("alike-across-ranks", "error", summary, gens,
                    tuple(dict.fromkeys(w.rsplit(" (", 1)[0] for w in what)), evidence, why,
                    fix, tuple(s.label for s, _ in members))]


# -- stages: different things, different states ------------------------------------------
def _ident(d: Draw) -> tuple:
    if d.target is not None:
        return ("param", d.model, d.target)
    return (d.model, d.module, d.op, d.site if d.module is None else None)


def _stages(sources: Sequence[Source]) -> list[Finding]:
    by_value: dict[tuple, list[tuple[Source, Draw, bool]]] = {}
    for s in sources:
        undone, place = restored(s.log), positions(s.log.draws)
        for d in s.log.draws:
            if candidate(d) and d.placement is None:
                by_value.setdefault(value_key(d, place), []).append((s, d, d.index in undone))
    pairs = []
    for group in by_value.values():
        kept = [m for m in group if not m[2]] or group
        pair = next(((a, b) for a in kept for b in kept if a[0].rank is not None
                     and b[0].rank is not None and a[0].rank < b[0].rank
                     and _ident(a[1]) != _ident(b[1])), None)
        if pair is not None:
            pairs.append(pair)
    if not pairs:
        return []
    (sa, _, _), (sb, _, _) = pairs[0]
    shown = [f"rank {a[0].rank} {describe(a[1])} = rank {b[0].rank} {describe(b[1])}"
             for a, b in pairs]
    summary = (f"different parameters or modules on different ranks drew the same values "
               f"({plural(len(pairs), 'pair')} of draws): {names(shown, 3)}")
    why = ("ranks that build different parts of the model (pipeline stages) with one seed "
           "draw them from one stream: same-shaped layers of different stages start alike and "
           "their dropout masks repeat stage to stage")
    fix = ("offset the seed by the pipeline stage (torchtitan seeds seed + pp_rank), keeping "
           "it equal across the ranks of one stage")
    evidence = tuple(Evidence.of(d, s.label, s.rank, f"rank {s.rank}")
                     for a, b in pairs[:2] for s, d, _ in (a, b))
    gens = tuple(dict.fromkeys(a[1].generator for a, _ in pairs))
    where = tuple(dict.fromkeys(describe(m[1]) for p in pairs for m in p))
    return [Finding("stages-share-stream", "error", summary, gens, where, evidence, why, fix,
                    (sa.label, sb.label))]
