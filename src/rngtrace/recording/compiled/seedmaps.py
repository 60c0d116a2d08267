"""Draws inside ``torch.compile``d graphs: Inductor's seed maps, and which graph is running.

An Inductor graph draws no dropout mask through the dispatcher. Its ``replace_random``
pass turns every generator-less ``rand``/``randn``/``randint``/dropout into an
``inductor_random``/``inductor_randint`` node fed by ``inductor_lookup_seed(seeds, i)``,
and ``seeds`` comes from one ``inductor_seeds(count)`` node: one ``randint`` of the
device's default generator per graph call, the only thing a dispatch mode sees. The
masks themselves come from the kernels' own Philox streams.

So, while a window is open, this module

- installs an Inductor post-grad pass (:func:`seed_map_pass`) that reads nothing but
  the graph: for every random node, its seed index, original aten op, shape, module
  (``nn_module_stack``) and user line (``stack_trace``); the generated code is unchanged,
  so a model compiled inside the window computes what it computes without it;
- ties that seed map to the compiled graph object Inductor builds from the same graph;
- wraps the compiled graph's call, so that the seed draw seen by the mode is known to
  belong to that graph, and the user's module holding the compiled ``forward`` is
  known; the recorder then writes (:mod:`.draws` names them, :mod:`.runs` writes them) one
  :class:`~rngtrace.Draw` per random node, each
  carrying the state of the generator before and after the graph's seed draw and
  ``graph="0/0:forward"``.

A backward graph that recomputes a checkpointed region reads its seeds from the forward
graph's: those draws are replays (``Draw.replay``), consuming nothing.

What cannot be seen is said once, as a warning and a ``"compiled"`` event: a graph
compiled before the window has no seed map, so only its seed draw is logged (with
``graph="inductor:?"``). Graphs of other backends (``aot_eager``, ``eager``) run aten
ops, which the mode sees as they are; they are marked ``graph="fx"`` and named from the
fx node's metadata (fx maps each generated line to its node); that is said once as an
event, without a warning, since nothing is missed unless a backend draws in kernels of
its own.

A post-grad pass that is not a ``CustomGraphPass`` makes Inductor bypass its FX graph
cache for graphs compiled inside the window (they are compiled, not loaded), which is
the point: a cached graph would come without its seed map.
"""

from __future__ import annotations

import re
import sys
import threading
import weakref
from dataclasses import dataclass
from types import FrameType
from typing import Any

import torch
from torch import nn

from ..basics.patches import Patches
from ..basics.places import is_site, short_path

_SEEDS = "inductor_seeds"
_RANDOM = ("inductor_random", "inductor_randint")
_FILE_LINE = re.compile(r'File "([^"]+)", line (\d+)')
_ROOT = re.compile(r"^L\['([^']+)'\]")
ORIG = "_orig_mod"  # the attribute torch.compile's OptimizedModule keeps the model in
#: Inductor's module of compiled graphs (CompiledFxGraph); imported before it compiles
OUTPUT_CODE = "torch._inductor.output_code"

@dataclass(frozen=True, slots=True)
class RandomNode:
    """One random node of a compiled graph, as the post-grad pass saw it."""

    seed: int  # index into the graph's seeds tensor
    op: str  # original aten op: "aten::native_dropout"
    shape: tuple[int, ...]
    dtype: str
    root: str | None  # the compiled frame's local holding the root module ("self")
    path: str | None  # module path under that root ("blocks.0.drop"), None outside modules
    module_type: str | None
    site: str | None
    code: str | None
    replay: bool  # seeds read from the forward graph: a checkpoint recompute


@dataclass(frozen=True, slots=True)
class SeedMap:
    """The random nodes of one compiled graph, in seed order."""

    label: str  # "0/0:forward"
    count: int  # seeds drawn per call (0: the graph only replays)
    nodes: tuple[RandomNode, ...]


# Seed maps made by the pass, waiting for the compiled graph built from the same fx graph
# (keyed by id of the fx Graph), then kept per compiled graph for as long as it lives.
_PENDING: dict[int, SeedMap] = {}
_MAPS: dict[int, tuple[Any, SeedMap]] = {}


def _target_name(node: torch.fx.Node) -> str:
    return getattr(node.target, "__name__", str(node.target)).split(".")[0]


def _op_name(node: torch.fx.Node) -> str:
    orig = node.meta.get("original_aten")
    if orig is not None and hasattr(orig, "_schema"):
        return str(orig._schema.name)
    return "prims::" + _target_name(node)


def _module_of(node: torch.fx.Node) -> tuple[str | None, str | None, str | None]:
    """(root local, path under it, class name) from the node's ``nn_module_stack``."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return None, None, None
    fqn, kind = list(stack.values())[-1]
    kind = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    kind = kind.rsplit(".", 1)[-1].strip("'>")
    return (*split_fqn(fqn), kind)


def split_fqn(fqn: str) -> tuple[str | None, str]:
    """Dynamo's module name -> (the frame local it starts from, a state_dict-style path).

    >>> split_fqn("L['self'].blocks.0.drop")
    ('self', 'blocks.0.drop')
    >>> split_fqn("L['self']._modules['blocks']._modules['0']")
    ('self', 'blocks.0')
    >>> split_fqn("L['self'].layers[1]")
    ('self', 'layers.1')
    """
    m = _ROOT.match(fqn)
    if m is None:
        return None, fqn
    rest = fqn[m.end():].replace("._modules[", "[")
    rest = re.sub(r"\[['\"]?([^'\]\"]+)['\"]?\]", r".\1", rest)
    return m.group(1), rest.lstrip(".")


def _site_of(node: torch.fx.Node) -> tuple[str | None, str | None]:
    """The innermost user line of the node's stack trace, and its source text."""
    trace = node.meta.get("stack_trace") or ""
    lines = trace.splitlines()
    best = None
    for i, line in enumerate(lines):
        m = _FILE_LINE.search(line)
        if m and is_site(m.group(1)):
            text = lines[i + 1].strip() if i + 1 < len(lines) else None
            best = (m.group(1), int(m.group(2)), text)
    if best is None:
        return None, None
    return f"{short_path(best[0])}:{best[1]}", best[2] or None


def _shape_dtype(node: torch.fx.Node) -> tuple[tuple[int, ...], str]:
    val = node.meta.get("val")
    if isinstance(val, torch.Tensor):
        shape = tuple(int(s) if isinstance(s, int) else -1 for s in val.shape)
        return shape, str(val.dtype).removeprefix("torch.")
    return (), ""


def random_node(n: torch.fx.Node, seed: int, replay: bool) -> RandomNode:
    shape, dtype = _shape_dtype(n)
    root, path, kind = _module_of(n)
    site, code = _site_of(n)
    return RandomNode(seed, _op_name(n), shape, dtype, root, path, kind, site, code, replay)


def read_seed_map(graph: torch.fx.Graph) -> SeedMap | None:
    """The seed map of a post-grad graph, None when it has no Inductor random node."""
    count = 0
    nodes = []
    backward = False
    for n in graph.nodes:
        if n.op == "placeholder" and n.name.startswith("tangents"):
            backward = True
        if n.op != "call_function":
            continue
        name = _target_name(n)
        if name == _SEEDS:
            count += int(n.args[0])
        elif name in _RANDOM:
            lookup = n.args[1] if name == "inductor_random" else n.args[3]
            seed, replay = 0, False
            if isinstance(lookup, torch.fx.Node) and lookup.args:
                seeds = lookup.args[0]
                seed = int(lookup.args[1]) if len(lookup.args) > 1 else 0  # type: ignore[arg-type]
                replay = isinstance(seeds, torch.fx.Node) and seeds.op == "placeholder"
            nodes.append(random_node(n, seed, replay))
    if not nodes and not count:
        return None
    cid = torch._guards.CompileContext.current_compile_id()
    label = f"{cid if cid is not None else '?'}:{'backward' if backward else 'forward'}"
    nodes.sort(key=lambda r: r.seed)
    return SeedMap(label, count, tuple(nodes))


@dataclass(slots=True)
class GraphCall:
    """A compiled graph running now: its seed map and the module holding its root."""

    graph: Any
    seed_map: SeedMap | None
    roots: dict[str, Any]  # frame locals the nodes' paths start from ("self": the model)
    inputs: Any = ()
    seeded: bool = False  # its seed draw was seen


class CompileWatch:
    """Installs the pass and the wrappers for one window; tells the recorder which
    compiled graph is running (``current``)."""

    def __init__(self) -> None:
        # Graph calls running now, per thread (CUDA backward graphs run in the autograd
        # engine's device thread, which the dispatch mode follows).
        self._local = threading.local()
        self._roots: dict[str, dict[str, Any]] = {}  # per compile id, from forward calls
        self._config: Any = None  # (inductor config, the user's pass, ours) while installed

    @property
    def current(self) -> GraphCall | None:
        calls = getattr(self._local, "calls", None)
        return calls[-1] if calls else None

    def install(self, patches: Patches) -> None:
        """Install the pass and the wrappers through the window's ``patches`` (undone
        when the window closes) as soon as the program has imported Inductor's
        compiled-graph module (:data:`OUTPUT_CODE`): now, or right after that import,
        before Inductor compiles anything (see :mod:`.loaded`)."""
        patches.after_import(OUTPUT_CODE, lambda module: self._install(patches, module))

    def _install(self, patches: Patches, output_code: Any) -> None:
        try:  # runs inside the program's import of OUTPUT_CODE: never raise there
            self._install_now(patches, output_code)
        except Exception:  # an Inductor this does not know: nothing to see
            return

    def _install_now(self, patches: Patches, output_code: Any) -> None:
        config: Any = sys.modules.get("torch._inductor.config")
        graph_class = getattr(output_code, "CompiledFxGraph", None)
        if config is None or graph_class is None:
            return
        user_pass: Any = config.post_grad_custom_post_pass
        watch = self

        def seed_map_pass(graph: torch.fx.Graph) -> None:
            if user_pass is not None:
                user_pass(graph)
            found = read_seed_map(graph)
            if found is not None:
                _PENDING[id(graph)] = found

        orig_init, orig_call = graph_class.__init__, graph_class.__call__

        def __init__(cfg: Any, current_callable: Any, graph: Any, gm: Any, *a: Any,
                     **k: Any) -> None:
            orig_init(cfg, current_callable, graph, gm, *a, **k)
            found = _PENDING.pop(id(gm.graph), None)
            if found is not None:
                ident = id(cfg)
                _MAPS[ident] = (weakref.ref(cfg, lambda _: _MAPS.pop(ident, None)), found)

        def __call__(cfg: Any, inputs: Any) -> Any:
            return watch.run(cfg, orig_call, inputs)

        _PENDING.clear()
        # Inductor's config is a module object whose settings are not in its __dict__:
        # set and put back here (uninstall), not through patches.
        self._config = (config, user_pass, seed_map_pass)  # first: an interrupt after
        config.post_grad_custom_post_pass = seed_map_pass  # it is undone by uninstall
        patches.replace(graph_class, "__init__", __init__)
        patches.replace(graph_class, "__call__", __call__)

    def uninstall(self) -> None:
        """Put Inductor's post-grad pass back (idempotent; the wrappers go with the
        window's patches)."""
        if self._config is None:
            return
        config, user_pass, ours = self._config
        self._config = None
        if config.post_grad_custom_post_pass is ours:
            config.post_grad_custom_post_pass = user_pass
        _PENDING.clear()

    def run(self, cfg: Any, call: Any, inputs: Any) -> Any:
        """One call of a compiled graph, with ``current`` set while it runs."""
        entry = _MAPS.get(id(cfg))
        seed_map = entry[1] if entry is not None and entry[0]() is cfg else None
        roots: dict[str, Any] = {}
        if seed_map is not None:
            cid = seed_map.label.rpartition(":")[0]
            if seed_map.label.endswith(":forward"):
                roots = self._roots[cid] = frame_locals(sys._getframe(1))
            else:
                roots = self._roots.get(cid, {})
        calls = self._local.__dict__.setdefault("calls", [])
        calls.append(GraphCall(cfg, seed_map, roots, inputs))
        if seed_map is not None and self.on_call is not None:
            self.on_call(calls[-1])
        try:
            if seed_map is not None and self.on_replay is not None and any(
                    n.replay for n in seed_map.nodes):
                self.on_replay(calls[-1])
            return call(cfg, inputs)
        finally:
            calls.pop()

    on_replay: Any = None  # set by the recorder: called for a graph that replays draws
    on_call: Any = None  # set by the light recorder: called for each graph with a seed map


def frame_locals(f: FrameType | None) -> dict[str, Any]:
    """The modules held by the frame dynamo compiled: the first frame out from the graph
    call that holds any (AOTAutograd's wrappers hold none). The graph's
    ``nn_module_stack`` paths start from ``L['self']``: that is the frame's ``self``, or
    the module the frame holds when it is a wrapper of ``Module.__call__``; torch.compile's
    ``OptimizedModule`` stands for the model it wraps."""
    while f is not None:
        found = {k: v for k, v in f.f_locals.items()
                 if isinstance(v, nn.Module) and not isinstance(v, torch.fx.GraphModule)}
        if found:
            for k, v in found.items():
                inner = getattr(v, ORIG, None)
                if isinstance(inner, nn.Module):
                    found[k] = inner
            found.setdefault("self", next(iter(found.values())))
            return found
        f = f.f_back
    return {}
