"""The pieces of :func:`rngtrace.stable_init`: where a draw goes, its key, its stream.

A draw's *destination* is named in a way that does not depend on the random values, so
that the two builds of :func:`~rngtrace.stable_init` name it alike:

- ``Reg(owner, name, serial)``: a parameter or buffer, as registered: the owner's
  sighting number (modules are numbered in the order they are first seen: drawing,
  registering or being registered), the attribute name, and how many times that name
  was registered on that owner before (a weight replaced by tying is another ``serial``);
- ``Fresh(module, serial)``: a tensor drawn into before it was registered
  (``Parameter(torch.randn(...))``), or never registered (a temporary): numbered in
  order within the innermost module on the stack.

A draw into a tensor that is neither (the random matrix of ``orthogonal_``, the
resamples of ``trunc_normal_``) belongs to the innermost function on the stack whose
first argument is a tensor with a destination: ``orthogonal_(tensor)`` and
``_no_grad_trunc_normal_(tensor, ...)`` lend it their ``tensor``. The search stops at
the first frame whose first argument is a module.

After the first build, :func:`plan` turns destinations into keys: the state_dict key of
the tensor in the final model (first key, so a tied weight has one), else the name it
was registered under with ``~serial`` (a tensor the model dropped), else
``module.path:tmpN`` for temporaries. A tensor computed from a fresh one by any op
(``torch.randn(...) * 0.02``) shares its destination, and a fresh tensor copied into a
parameter (``w.copy_(torch.randn(...))``) takes the parameter's key.
:mod:`.streams` derives the stream of one draw from ``(seed, key, ordinal)``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

import torch
from torch import nn

from ..errors import StableInitError
from ..recording.basics import frames
from ..recording.basics.hooks import Hooks
from ..recording.basics.identity import storage_of


@dataclass(frozen=True, slots=True)
class Reg:
    owner: int  # sighting number of the module it was registered on
    name: str
    serial: int  # registrations of this name on this owner before this one


@dataclass(frozen=True, slots=True)
class Fresh:
    module: int  # sighting number of the innermost module on the stack, -1 for none
    serial: int  # fresh tensors drawn into within that module before this one


Ident = Reg | Fresh


@dataclass(frozen=True, slots=True)
class Plan:
    """What the first build tells the second: keys, and the structure to expect."""

    keys: dict[Ident, str]
    paths: list[str]  # module path by sighting number
    types: list[str]  # module type by sighting number
    state: list[tuple[str, tuple[int, ...], str]]  # (key, shape, dtype) of the model

    def key(self, ident: Ident) -> str:
        k = self.keys.get(ident)
        if k is not None:
            return k
        if isinstance(ident, Fresh):  # a temporary the first build did not make
            return temp_key(self.paths[ident.module] if ident.module >= 0 else None,
                            ident.serial)
        raise StableInitError(
            f"the factory did not build the same model twice: the second build drew into "
            f"{ident.name!r} of module {self.where(ident.owner)}, which the first build "
            "never registered")

    def where(self, ordinal: int) -> str:
        path = self.paths[ordinal]
        return f"{path!r} ({self.types[ordinal]})" if path else f"<root> ({self.types[ordinal]})"


def temp_key(path: str | None, serial: int) -> str:
    return f"{'<outside modules>' if path is None else path}:tmp{serial}"


class Book:
    """What one build saw: modules in order of sighting, registrations, destinations.

    With ``expect`` (the first build's plan) every sighting and registration is checked
    against it, and the first difference raises :class:`StableInitError`.
    """

    def __init__(self, expect: Plan | None = None) -> None:
        self.expect = expect
        self.thread = threading.get_ident()
        self.modules: list[nn.Module] = []
        self._ordinal: dict[int, int] = {}
        self.parent: dict[int, tuple[int, str]] = {}  # child -> (parent, name), latest
        self.kinds: list[str] = []  # type name when first seen
        self.builder: list[tuple[int, int]] = []  # (builder or -1, number of its kind)
        self._built: dict[tuple[int, str], int] = {}
        self.regs: dict[Reg, Any] = {}  # -> weakref to the registered tensor
        self.fresh: dict[Fresh, list[Any]] = {}  # -> weakrefs to its storages
        self.claims: dict[Fresh, Reg] = {}  # fresh tensor -> its first registration
        self._serials: dict[tuple[int, str], int] = {}
        self._fresh_next: dict[int, int] = {}
        self._storage: dict[int, tuple[Any, Ident]] = {}  # id(storage) -> (weakref, ident)
        self._hooks = Hooks()
        self.stop: FrameType | None = None  # the frame search ends here

    # -- modules -----------------------------------------------------------------------
    def sight(self, m: nn.Module) -> int:
        o = self._ordinal.get(id(m))
        if o is not None:
            return o
        # The module whose __init__ built this one names it if the model never takes
        # it in (a prototype that nn.TransformerEncoder deep-copies).
        b = _builder(frames.describe_stack(0).building, m)
        bo = self.sight(b) if b is not None else -1
        o = len(self.modules)
        self._ordinal[id(m)] = o
        self.modules.append(m)
        kind = type(m).__qualname__  # when seen: parametrizations change it later
        self.kinds.append(kind)
        n = self._built.get((bo, kind), 0)
        self._built[(bo, kind)] = n + 1
        self.builder.append((bo, n))
        if self.expect is not None:
            self._check_sight(o, m)
        return o

    def ordinal(self, m: nn.Module) -> int | None:
        return self._ordinal.get(id(m))

    def _check_sight(self, o: int, m: nn.Module) -> None:
        exp = self.expect
        assert exp is not None
        kind = type(m).__qualname__
        if o >= len(exp.types):
            raise StableInitError(
                f"the factory did not build the same model twice: the second build made "
                f"a {kind} (module #{o + 1} seen) that the first build did not")
        if exp.types[o] != kind:
            raise StableInitError(
                f"the factory did not build the same model twice: module #{o + 1} seen was "
                f"{exp.where(o)} in the first build and a {kind} in the second")

    # -- registration hooks -----------------------------------------------------------------
    def install(self) -> None:
        self._hooks.registration(self._on_module, self._on_tensor)

    def uninstall(self) -> None:
        self._hooks.remove()

    def _on_module(self, parent: nn.Module, name: str, child: nn.Module | None) -> None:
        if child is None or threading.get_ident() != self.thread:
            return
        p = self.sight(parent)
        self.parent[self.sight(child)] = (p, name)

    def _on_tensor(self, owner: nn.Module, name: str, tensor: torch.Tensor | None) -> None:
        if tensor is None or threading.get_ident() != self.thread:
            return
        o = self.sight(owner)
        serial = self._serials.get((o, name), 0)
        self._serials[(o, name)] = serial + 1
        reg = Reg(o, name, serial)
        if self.expect is not None and reg not in self.expect.keys:
            raise StableInitError(
                f"the factory did not build the same model twice: the second build "
                f"registered {name!r} on module {self.expect.where(o)}, the first did not")
        self.regs[reg] = weakref.ref(tensor)
        storage = storage_of(tensor)
        if storage is None:
            return
        prev = self.lookup(tensor)
        if isinstance(prev, Fresh):
            self._claim(prev, reg)
        self._storage[id(storage)] = (weakref.ref(storage), reg)

    def _claim(self, fresh: Fresh, reg: Reg) -> None:
        if fresh in self.claims:
            return
        self.claims[fresh] = reg
        if self.expect is not None:
            self._check_claim(fresh, reg)

    def _check_claim(self, fresh: Fresh, reg: Reg) -> None:
        exp = self.expect
        assert exp is not None
        drawn = exp.keys.get(fresh)
        if drawn != exp.keys[reg]:
            what = f"drawn as {drawn!r}" if drawn is not None else "not drawn in the first build"
            raise StableInitError(
                f"the factory did not build the same model twice: a tensor {what} became "
                f"{exp.keys[reg]!r} in the second build (is the number of draws into new "
                "tensors value-dependent?)")

    # -- destinations ---------------------------------------------------------------------
    def lookup(self, t: torch.Tensor) -> Ident | None:
        storage = storage_of(t)
        if storage is None:
            return None
        hit = self._storage.get(id(storage))
        if hit is not None and hit[0]() is storage:
            return hit[1]
        return None

    def from_frames(self, frame: FrameType | None) -> Ident | None:
        """The destination lent by the innermost function whose first argument is a
        tensor with one (see the module docstring); None at the first module frame."""
        f = frame
        while f is not None and f is not self.stop:
            code = f.f_code
            if code.co_argcount:
                obj = f.f_locals.get(code.co_varnames[0])
                if isinstance(obj, nn.Module):
                    return None
                if isinstance(obj, torch.Tensor):
                    ident = self.lookup(obj)
                    if ident is not None:
                        return ident
            f = f.f_back
        return None

    def new_fresh(self, module: int) -> Fresh:
        n = self._fresh_next.get(module, 0)
        self._fresh_next[module] = n + 1
        return Fresh(module, n)

    def bind(self, t: Any, ident: Fresh) -> None:
        storage = storage_of(t) if isinstance(t, torch.Tensor) else None
        if storage is None:
            return
        ref = weakref.ref(storage)
        self._storage[id(storage)] = (ref, ident)
        self.fresh.setdefault(ident, []).append(ref)

    def propagate(self, args: tuple, out: Any) -> None:
        """A tensor computed from a fresh one (``torch.randn(...) * 0.02``) takes its
        destination, so that the parameter it becomes names the draw."""
        src = None
        for a in args:
            if isinstance(a, torch.Tensor):
                ident = self.lookup(a)
                if isinstance(ident, Fresh):
                    src = ident
                    break
        if src is None:
            return
        for t in out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor):
                ident = self.lookup(t)
                if ident is None:
                    self.bind(t, src)
                elif isinstance(ident, Reg):  # param.copy_(torch.randn(...) * 0.02)
                    self._claim(src, ident)


def _builder(building: tuple[nn.Module, ...], m: nn.Module) -> nn.Module | None:
    """The innermost module being built around ``m`` (outside ``m``'s own __init__)."""
    for i, x in enumerate(building):
        if x is m:
            building = building[i + 1:]
            break
    return next((x for x in building if x is not m), None)


def _tensors(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    yield from model.named_parameters()
    yield from model.named_buffers()


def plan(book: Book, model: nn.Module) -> Plan:
    """Keys for every destination the first build saw, from the model it returned."""
    paths: dict[int, str] = {}
    for path, m in model.named_modules():
        o = book.ordinal(m)
        if o is not None:
            paths.setdefault(o, path)

    def path_of(o: int) -> str:
        """The model's path; else the names it was registered under; else, for a module
        never attached, ``<Type:n>`` (the n-th of its type built by its builder)."""
        parts: list[str] = []
        seen: set[int] = set()
        while o >= 0 and o not in paths and o not in seen:
            seen.add(o)
            if o in book.parent:
                o, name = book.parent[o]
                parts.append(name)
            else:
                bo, n = book.builder[o]
                parts.append(f"<{book.kinds[o]}:{n}>")
                o = bo
        if paths.get(o):
            parts.append(paths[o])
        return ".".join(reversed(parts))

    by_tensor: dict[int, str] = {}
    by_storage: dict[int, str] = {}
    storages = []  # keeps the ids valid
    for key, t in _tensors(model):
        by_tensor.setdefault(id(t), key)
        s = storage_of(t)
        if s is not None:
            storages.append(s)
            by_storage.setdefault(id(s), key)

    keys: dict[Ident, str] = {}
    for reg, ref in book.regs.items():
        t = ref()
        k = by_tensor.get(id(t)) if t is not None else None
        if k is None and t is not None:
            s = storage_of(t)
            k = by_storage.get(id(s)) if s is not None else None
        if k is None:  # dropped by the model (e.g. replaced by a tied weight)
            owner = path_of(reg.owner)
            k = f"{owner}.{reg.name}~{reg.serial}" if owner else f"{reg.name}~{reg.serial}"
        keys[reg] = k
    for fresh, refs in book.fresh.items():
        k = keys[book.claims[fresh]] if fresh in book.claims else None
        for ref in refs if k is None else ():  # put in place without a registration hook
            s = ref()
            k = by_storage.get(id(s)) if s is not None else None
            if k is not None:
                break
        if k is None:
            k = temp_key(path_of(fresh.module) if fresh.module >= 0 else None, fresh.serial)
        keys[fresh] = k
    all_paths = [path_of(o) for o in range(len(book.modules))]
    return Plan(keys, all_paths, list(book.kinds), summary(model))


def summary(model: nn.Module) -> list[tuple[str, tuple[int, ...], str]]:
    return [(k, tuple(v.shape), str(v.dtype)) for k, v in model.state_dict().items()]
