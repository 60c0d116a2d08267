"""Naming the draws of compiled code: a graph call's random nodes, fx graphs' ops, replays.

:mod:`.seedmaps` finds what runs (Inductor seed maps, the graph being called); this
module turns it into :class:`~rngtrace.Draw` records named like eager draws (the module
path under the user's model, ``_orig_mod.`` left out), says what cannot be seen, and
tells a checkpoint's recompute (a replay) from a first draw.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Any

import torch
from torch import nn

from ...log import Draw, Phase
from .seedmaps import ORIG, GraphCall, RandomNode, SeedMap, frame_locals, random_node

#: How the level names a compiled frame's module: (model, path) in the user's model, or
#: None while the model is not known yet (the op level's names).
NameRoot = Callable[[nn.Module], "tuple[str | None, str | None] | None"]

#: ``Draw.graph`` of a draw made by an Inductor graph that has no seed map.
UNKNOWN_GRAPH = "inductor:?"
NO_SEED_MAP = (
    "a graph compiled before this window ran inside it: without its seed map only its "
    "seed draw (one randint of the default generator per call) is logged, not the draws "
    "of its random nodes; compile inside the window (or call torch._dynamo.reset() "
    "first) to see them")
OTHER_BACKEND = (
    "a graph compiled by a backend other than Inductor ran inside this window: its draws "
    "are logged as the aten ops it runs (graph='fx'), named from the graph's node "
    "metadata where there is some (a checkpointed region's has none: charged to the "
    "compiled module); a backend drawing in kernels of its own is not seen")


@dataclass(slots=True)
class Inside:
    """Where a draw that no seed map explains was made: ``kind`` ``"inductor"`` (an
    Inductor graph's code) or ``"fx"`` (an fx graph another backend runs, ``node`` the
    graph node making the call, when its line is known)."""

    kind: str
    node: RandomNode | None = None
    roots: dict[str, Any] = dataclasses.field(default_factory=dict)


_FX_NODES: dict[int, tuple[Any, list[torch.fx.Node]]] = {}  # per GraphModule, its nodes


# id(code) -> the kind of compiled graph frames of that code run ("inductor": Inductor's
# output code; "fx": an fx GraphModule's generated forward) or None; the code objects
# are kept alive in the values, so that an id is never reused
_GRAPH_CODES: dict[int, tuple[str | None, CodeType]] = {}


def _graph_kind(code: CodeType) -> str | None:
    hit = _GRAPH_CODES.get(id(code))
    if hit is None:
        kind = ("inductor" if code.co_name == "__call__"
                and code.co_filename.endswith("output_code.py")
                else "fx" if code.co_filename.startswith("<eval_with_key>") else None)
        hit = _GRAPH_CODES[id(code)] = (kind, code)
    return hit[0]


def graph_on_stack() -> bool:
    """Whether a compiled graph's frame is on the stack: :func:`inside_compiled_graph`'s
    test alone, one dict lookup per frame (every draw asks it once anything was compiled
    in the process)."""
    f: FrameType | None = sys._getframe(1)
    while f is not None:
        if _graph_kind(f.f_code) is not None:
            return True
        f = f.f_back
    return False


def inside_compiled_graph() -> Inside | None:
    """Is compiled code on the stack of this draw (a stack walk: call it only when
    dynamo has compiled something, see :func:`maybe_compiled`)?"""
    f: FrameType | None = sys._getframe(1)
    found = None
    while f is not None:
        kind = _graph_kind(f.f_code)
        if kind == "inductor":
            return Inside("inductor")
        if found is None and kind == "fx":
            found = Inside("fx", _fx_node(f), frame_locals(f.f_back))
        f = f.f_back
    return found


def _fx_node(f: FrameType) -> RandomNode | None:
    """The node of an fx GraphModule running at frame ``f`` (fx keeps a map from
    generated lines to nodes), as a :class:`RandomNode`."""
    gm = f.f_locals.get("self")
    lines = getattr(gm, "_lineno_map", None)
    if not isinstance(gm, torch.fx.GraphModule) or not lines:
        return None
    idx = lines.get(f.f_lineno - getattr(gm, "_prologue_start", 0))
    hit = _FX_NODES.get(id(gm))
    if hit is None or hit[0]() is not gm:
        hit = _FX_NODES[id(gm)] = (weakref.ref(gm), list(gm.graph.nodes))
    if idx is None or not 0 <= idx < len(hit[1]):
        return None
    return random_node(hit[1][idx], 0, False)


def fx_draw(draw: Draw, inside: Inside, name_root: NameRoot, replay: bool) -> Draw:
    """A draw made by an fx graph's node, named from the node's metadata (the
    checkpoint's higher-order ops carry none: their draws stay charged to the compiled
    module)."""
    if inside.node is None:
        return dataclasses.replace(draw, graph="fx", replay=replay)
    module, model, kind = _name(inside.node, inside.roots, name_root)
    if module is None:
        module, model, kind = draw.module, draw.model, draw.module_type
    return dataclasses.replace(draw, module=module, module_type=kind, model=model,
                               site=inside.node.site or draw.site,
                               code=inside.node.code if inside.node.site else draw.code,
                               graph="fx", replay=replay)


_CHECKPOINT = ("utils/checkpoint.py", "utils\\checkpoint.py")
_RECOMPUTE = frozenset({"recompute_fn", "unpack_hook", "backward"})


def replaying() -> bool:
    """True when an activation checkpoint is recomputing its forward (in backward)."""
    f: FrameType | None = sys._getframe(1)
    while f is not None:
        c = f.f_code
        if c.co_name in _RECOMPUTE and c.co_filename.endswith(_CHECKPOINT):
            return True
        f = f.f_back
    return False


def graph_draws(seed: Draw, call: GraphCall, name_root: NameRoot, first: int,
                replay: bool) -> list[Draw]:
    """The draws of one compiled graph call, named like eager draws.

    ``seed`` is the graph's seed draw as the recorder saw it (generator, states, step,
    device); each random node of the seed map (the fresh ones, or with ``replay`` the
    ones recomputed from saved seeds) becomes one draw from index ``first`` on.
    """
    assert call.seed_map is not None
    label = call.seed_map.label
    phase: Phase = "backward" if label.endswith(":backward") else "forward"
    out: list[Draw] = []
    for node in call.seed_map.nodes:
        if node.replay != replay:
            continue
        module, model, kind = _name(node, call.roots, name_root)
        shape = tuple(s for s in node.shape)
        out.append(dataclasses.replace(
            seed, index=first + len(out), op=node.op, module=module,
            module_type=kind, target=None,
            phase=phase, shape=shape, dtype=node.dtype or seed.dtype,
            numel=math.prod(shape) if all(s >= 0 for s in shape) else 0, args={},
            consumed=seed.consumed and not replay, site=node.site, code=node.code,
            api=None, model=model,
            discarded=False, graph=label, replay=replay))
    return out


def _name(node: RandomNode, roots: dict[str, Any], name_root: NameRoot
          ) -> tuple[str | None, str | None, str | None]:
    """(module path, model, module type) of a node: its path under the compiled frame's
    module, that module's own path in the user's model (``_orig_mod.`` left out)."""
    kind = node.module_type
    if node.path is None:  # drawn by the compiled frame's own code: its module, if any
        top = roots.get("self")
        if top is None:
            return None, None, None
        node = dataclasses.replace(node, root="self", path="")
        kind = type(top).__name__
    root = roots.get(node.root) if node.root is not None else None
    if root is None:
        return node.path, None, kind
    named = name_root(root)
    base = named[1] if named is not None and named[1] is not None else ""
    parts = [p for p in (*base.split("."), *(node.path or "").split(".")) if p and p != ORIG]
    return ".".join(parts), named[0] if named is not None else None, kind


def called_inside(called: dict[int, Any]) -> None:
    """Count the submodules of every compiled model called in the window as called: their
    calls were traced into the graph, not made (an unused one is not claimed as such)."""
    for m in list(called.values()):
        inner = getattr(m, ORIG, None)
        if isinstance(inner, nn.Module):
            for sub in inner.modules():
                called[id(sub)] = sub


def whole_text(where: str, seed_maps: list[SeedMap]) -> str:
    """What the light mode says once about a compiled module it charges as a whole."""
    text = (f"{where} is compiled: the light mode charges it as a whole (the module calls "
            f"inside its graph are not Python calls)")
    nodes = [(m.label, n) for m in seed_maps for n in m.nodes if not n.replay]
    if not nodes:
        return text + "; its graph names no draw (no seed map: compiled before the " \
                      "window, or by a backend other than Inductor)"
    names = list(dict.fromkeys(f"{n.path or '(root)'} ({n.op})" for _, n in nodes))
    graphs = ", ".join(dict.fromkeys(label for label, _ in nodes))
    return (text + f"; inside it draw, from one seed draw per graph call (Inductor's seed "
            f"map of graph {graphs}; paths relative to it): {', '.join(names)}")
