"""Naming what drew: module paths and state_dict keys, also during construction.

While a model is being built its children have no names yet: ``self.attn = Attention()``
names the child only after its ``__init__`` has drawn. The recorder therefore keeps the
module *objects* and the *storages* drawn into, listens to PyTorch's global registration
hooks (module, parameter and buffer) while the window is open, and resolves names from
the final models when the window closes:

- the models ("tops") are the outermost modules seen on the stack, followed upwards
  through the registrations made in the window (a block built first and put into a
  ``Sequential`` later belongs to the ``Sequential``);
- a module's path is its first ``named_modules()`` path in its model;
- a draw's target is the parameter or buffer whose storage it filled, found when the
  draw happens (in-place init of a registered tensor), when the tensor is registered
  (``Parameter(torch.randn(...))``), or, for tensors registered before the window, at
  the end; its key is the first ``named_parameters()``/``named_buffers()`` key;
- a draw into a tensor that its module later dropped (a weight replaced by tying) keeps
  the name it was registered under and is marked ``discarded``;
- a draw into a module that was deep-copied into a model and is in none itself
  (``nn.TransformerEncoder`` copies the layer it is given into ``layers.N``) is named by
  its first copy (same class, same parameter values) and marked ``copied``.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..basics.hooks import Hooks
from ..basics.identity import model_label, storage_of


@dataclass(slots=True)
class TargetRef:
    """A parameter or buffer, as registered: its tensor and where it was put."""

    tensor: torch.Tensor
    owner: nn.Module
    name: str


@dataclass(slots=True)
class Pending:
    """What a draw's final names will be computed from."""

    module: nn.Module | None
    target: TargetRef | None = None
    storage: Any = None  # weakref to the storage drawn into, until a tensor claims it
    index: int = -1
    draw: Any = None  # the draw as first written, patched at the end


@dataclass(frozen=True, slots=True)
class Resolved:
    model: str | None
    module: str | None
    module_type: str | None
    target: str | None
    discarded: bool
    copied: bool = False


OUTSIDE = Resolved(None, None, None, None, False)  # a draw made outside any module


@dataclass(slots=True)
class _TopMap:
    label: str
    paths: dict[int, str] = field(default_factory=dict)  # id(module) -> path
    modules: dict[int, nn.Module] = field(default_factory=dict)  # keeps ids valid
    keys: dict[int, tuple[str, nn.Module]] = field(default_factory=dict)  # id(tensor) -> key
    storages: dict[int, TargetRef] = field(default_factory=dict)  # id(storage) -> tensor


class Names:
    """Module and tensor naming for one recording window."""

    def __init__(self, on_claim: Callable[[Pending], None] | None = None) -> None:
        self._on_claim = on_claim
        self._parent: dict[int, tuple[nn.Module, str]] = {}
        self._keep: dict[int, nn.Module] = {}  # modules referenced by id
        self._registered: dict[int, TargetRef] = {}  # id(storage) -> latest registration
        self._storage_refs: dict[int, Any] = {}  # id(storage) -> weakref, to check ids
        self._waiting: dict[int, list[Pending]] = {}  # id(storage) -> drawn, unclaimed
        self._tops: dict[int, _TopMap] = {}
        # id(module) -> names, for draws without a target; valid until the structure
        # changes (cleared with _tops). Also tells the stack walk it may stop early.
        self.known: dict[int, Resolved] = {}
        self._labels: dict[str, int] = {}
        self._top_order: list[nn.Module] = []
        self._hooks = Hooks()
        self._roots: list[nn.Module] = []
        self._root_ids: dict[int, nn.Module] = {}
        self._copies: dict[str, tuple[str, str]] | None = None  # label -> first copy

    # -- hooks ---------------------------------------------------------------------
    def install(self) -> None:
        self._hooks.registration(self._on_module, self._on_tensor)

    def uninstall(self) -> None:
        self._hooks.remove()

    def _on_module(self, parent: nn.Module, name: str, child: nn.Module | None) -> None:
        if child is not None:
            self._parent[id(child)] = (parent, name)
            self._keep[id(child)] = child
            self._keep[id(parent)] = parent
        self._tops.clear()  # structure changed: cached paths may be stale
        self.known.clear()

    def _on_tensor(self, owner: nn.Module, name: str, tensor: torch.Tensor | None) -> None:
        if tensor is None:
            return
        storage = storage_of(tensor)
        if storage is None:
            return
        ref = TargetRef(tensor, owner, name)
        sid = id(storage)
        self._registered[sid] = ref
        self._storage_refs[sid] = weakref.ref(storage)
        self._keep[id(owner)] = owner
        for p in self._waiting.pop(sid, ()):
            if p.storage is not None and p.storage() is storage:
                p.target, p.storage = ref, None
                if self._on_claim is not None:
                    self._on_claim(p)
        self._tops.clear()
        self.known.clear()

    # -- during the window ------------------------------------------------------------
    def claim(self, tensor: torch.Tensor | None, pending: Pending, may_wait: bool) -> None:
        """Attach the parameter/buffer that ``tensor`` belongs to, now or when registered."""
        if tensor is None:
            return
        storage = storage_of(tensor)
        if storage is None:
            return
        sid = id(storage)
        ref = self._registered.get(sid)
        if ref is not None and self._storage_refs[sid]() is storage:
            pending.target = ref
            return
        for top in self._tops.values():
            ref = top.storages.get(sid)
            if ref is not None:
                pending.target = ref
                return
        ref = self._by_identity(tensor, pending.module)
        if ref is not None:
            pending.target = ref
            return
        if may_wait:
            # The callback forgets temporaries as soon as they are freed, so that a long
            # window does not accumulate them.
            pending.storage = weakref.ref(storage, functools.partial(self._freed, sid))
            self._waiting.setdefault(sid, []).append(pending)

    @staticmethod
    def _by_identity(tensor: torch.Tensor, module: Any) -> TargetRef | None:
        """A parameter of the drawing module whose storage changed under the same Python
        object (``torch.utils.swap_tensors``: FSDP2's ``to_empty`` after a meta build)."""
        if not isinstance(module, nn.Module):
            return None
        for kind in (module._parameters, module._buffers):
            for name, t in kind.items():
                if t is tensor:
                    return TargetRef(tensor, module, name)
        return None

    def _freed(self, sid: int, ref: Any) -> None:
        waiting = self._waiting.get(sid)
        if waiting is None:
            return
        waiting[:] = [p for p in waiting if p.storage is not ref]
        if not waiting:
            del self._waiting[sid]

    def top_of(self, module: nn.Module) -> nn.Module:
        seen = set()
        while id(module) in self._parent and id(module) not in seen:
            seen.add(id(module))
            module = self._parent[id(module)][0]
        return module

    def _map(self, top: nn.Module) -> _TopMap:
        m = self._tops.get(id(top))
        if m is None:
            if all(t is not top for t in self._top_order):
                self._top_order.append(top)
            m = self._tops[id(top)] = _TopMap(model_label(top, self._top_order))
            for path, mod in top.named_modules(remove_duplicate=False):
                if id(mod) not in m.paths:
                    m.paths[id(mod)] = path
                    m.modules[id(mod)] = mod
                    for kind in (mod._parameters, mod._buffers):
                        for name, t in kind.items():
                            if t is None or id(t) in m.keys:
                                continue
                            m.keys[id(t)] = (f"{path}.{name}" if path else name, mod)
                            s = storage_of(t)
                            if s is not None:
                                m.storages.setdefault(id(s), TargetRef(t, mod, name))
        return m

    def now(self, module: nn.Module | None, pending: Pending) -> Resolved | None:
        """Final names for a draw if they can be known now (the model is built)."""
        if pending.target is None and module is None:
            # Outside any module. If the tensor becomes a parameter later (a script-level
            # ``Parameter(torch.randn(...))``), on_claim reports it.
            return OUTSIDE
        if pending.target is None and pending.storage is not None:
            # a view of a parameter of a model built before the window (the first draw
            # into it found no map to look in; the model's is made below if not yet)
            self._target_from_maps(pending)
        if pending.target is not None:
            return self._resolve(pending.target.owner, pending, final=False)
        assert module is not None
        hit = self.known.get(id(module))
        if hit is None:
            hit = self._resolve(module, pending, final=False)
            if hit is not None:
                self.known[id(module)] = hit
        return hit

    # -- at the end ------------------------------------------------------------------
    def finish(self, pending: Pending) -> Resolved:
        if pending.storage is not None:  # a tensor nobody registered during the window
            self._target_from_maps(pending)
            pending.storage = None
        if pending.module is None and pending.target is None:
            return OUTSIDE
        module = pending.target.owner if pending.target is not None else pending.module
        assert module is not None
        r = self._resolve(module, pending, final=True)
        assert r is not None
        return self._as_copy(r)

    def _target_from_maps(self, pending: Pending) -> None:
        """The parameter or buffer of a model of the window whose storage a waiting
        draw filled, if any."""
        storage = pending.storage() if pending.storage is not None else None
        if storage is None:
            return
        for top in self._all_tops():
            ref = self._map(top).storages.get(id(storage))
            if ref is not None:
                pending.target = ref
                return

    def _as_copy(self, r: Resolved) -> Resolved:
        """``r`` named by the first copy of its model, if that model was deep-copied
        into another one (see the module documentation)."""
        if self._copies is None:
            self._copies = _find_copies([self._map(t) for t in self._all_tops()])
        hit = self._copies.get(r.model) if r.model is not None else None
        if hit is None or r.module is None:
            return r
        label, prefix = hit

        def under(path: str) -> str:
            return f"{prefix}.{path}" if prefix and path else prefix or path

        return Resolved(label, under(r.module), r.module_type,
                        under(r.target) if r.target is not None else None, r.discarded, True)

    def _all_tops(self) -> list[nn.Module]:
        """The models of the window, in the order they first drew."""
        if self._roots:
            for r in self._roots:
                self._map(self.top_of(r))
            self._roots.clear()
        # A model noted alone and put into a container later is no longer a top.
        return [t for t in self._top_order if self.top_of(t) is t]

    def note_root(self, module: nn.Module) -> None:
        """Remember a model seen on the stack, so that the end can search it."""
        if id(module) not in self._root_ids:
            self._root_ids[id(module)] = module
            self._roots.append(module)

    def _locate(self, module: nn.Module) -> tuple[_TopMap, str] | None:
        """The model containing ``module`` and its path there. Models seen on the stack
        come first: a model built before the window is known only from there, and its
        submodules would otherwise look like models of their own."""
        own = self.top_of(module)
        for top in [*(t for t in self._all_tops() if t is not module), own]:
            m = self._map(top)
            path = m.paths.get(id(module))
            if path is not None:
                return m, path
        return None

    def _locate_tensor(self, tensor: torch.Tensor, owner: nn.Module
                       ) -> tuple[_TopMap, str, nn.Module] | None:
        own = self.top_of(owner)
        for top in [*(t for t in self._all_tops() if t is not owner), own]:
            m = self._map(top)
            hit = m.keys.get(id(tensor))
            if hit is not None:
                return m, hit[0], hit[1]
        return None

    def _resolve(self, module: nn.Module, pending: Pending, final: bool) -> Resolved | None:
        target = pending.target
        if target is not None:
            found_t = self._locate_tensor(target.tensor, target.owner)
            if found_t is not None:
                top, key, owner = found_t
                path = key.rpartition(".")[0]
                return Resolved(top.label, path, type(owner).__name__, key, False)
            if not final:
                return None
            path, label, _ = self._detached_path(target.owner)
            key = f"{path}.{target.name}" if path else target.name
            return Resolved(label, path, type(target.owner).__name__, key, True)
        found = self._locate(module)
        if found is not None:
            return Resolved(found[0].label, found[1], type(module).__name__, None, False)
        if not final:
            return None
        path, label, discarded = self._detached_path(module)
        return Resolved(label, path, type(module).__name__, None, discarded)

    def module_names(self, modules: Any) -> list[tuple[str | None, str]]:
        """(model, path) of each module, in the order given."""
        out: list[tuple[str | None, str]] = []
        for mod in modules:
            found = self._locate(mod)
            if found is not None:
                out.append((found[0].label, found[1]))
        return out

    def graded_parameters(self) -> dict[int, torch.Tensor]:
        """Parameters of the window's models that hold a gradient now and, once any
        does, the frozen ones (``requires_grad=False``): a backward ran, and they take
        part in it without a gradient by design, so they are not unused."""
        found: dict[int, torch.Tensor] = {}
        frozen: dict[int, torch.Tensor] = {}
        for top in self._all_tops():
            for p in top.parameters():
                if p.grad is not None:
                    found[id(p)] = p
                elif not p.requires_grad:
                    frozen[id(p)] = p
        if found:
            found.update(frozen)
        return found

    def tensor_names(self, tensors: Any) -> list[tuple[str | None, str]]:
        """(model, state_dict key) of each parameter found in the window's models."""
        maps = [self._map(t) for t in self._all_tops()]
        out: list[tuple[str | None, str]] = []
        for t in tensors:
            for m in maps:
                hit = m.keys.get(id(t))
                if hit is not None:
                    out.append((m.label, hit[0]))
                    break
        return out

    def _detached_path(self, module: nn.Module) -> tuple[str, str, bool]:
        """Path of a module by the names it was registered under, for modules that are
        no longer in their model (replaced) or never were in one."""
        parts = []
        m = module
        seen = set()
        while id(m) in self._parent and id(m) not in seen:
            seen.add(id(m))
            parent, name = self._parent[id(m)]
            parts.append(name)
            found = self._locate(parent)
            if found is not None:
                if found[1]:
                    parts.append(found[1])
                return ".".join(reversed(parts)), found[0].label, True
            m = parent
        return ".".join(reversed(parts)), type(module).__name__, bool(parts)

    def clear(self) -> None:
        """Drop every reference to the user's modules and tensors."""
        self._parent.clear()
        self._keep.clear()
        self._registered.clear()
        self._storage_refs.clear()
        self._waiting.clear()
        self._tops.clear()
        self.known.clear()
        self._top_order.clear()
        self._roots.clear()
        self._root_ids.clear()
        self._copies = None


def _find_copies(maps: list[_TopMap]) -> dict[str, tuple[str, str]]:
    """For each model that another model holds deep copies of (same class, same
    parameter names and values), the label and path of the first copy."""
    out: dict[str, tuple[str, str]] = {}
    tops = [(m, m.modules[next(iter(m.paths))]) for m in maps if m.paths]
    for src_map, src in tops:
        params: dict[str, torch.Tensor] = dict(src.named_parameters())
        if not params:
            continue
        for dst_map, _ in tops:
            if dst_map is src_map:
                continue
            hit = next((path for i, path in dst_map.paths.items()
                        if type(dst_map.modules[i]) is type(src)
                        and _same_values(params, dst_map.modules[i])), None)
            if hit is not None:
                out[src_map.label] = (dst_map.label, hit)
                break
    return out


def _same_values(params: dict[str, torch.Tensor], module: nn.Module) -> bool:
    other: dict[str, torch.Tensor] = dict(module.named_parameters())
    if other.keys() != params.keys():
        return False
    with torch.no_grad():
        return all(p.shape == other[k].shape and p is not other[k]
                   and torch.equal(p, other[k]) for k, p in params.items())


def provisional(p: Pending) -> Resolved:
    """Best names before the model is complete, used if the run dies before the end."""
    m = p.target.owner if p.target is not None else p.module
    if m is None:
        return OUTSIDE
    kind = type(m).__name__
    target = f"<{kind}>.{p.target.name}" if p.target is not None else None
    return Resolved(None, f"<{kind}>", kind, target, False)
