"""``stable_init(model, seed)``: re-initialise a model already built, in place, keyed by
the names its parameters and buffers have in it.

A built model knows its names, so one pass does: the model's own init code runs under a
dispatch mode that gives each draw the generator of ``(seed, key, n)`` (see
:mod:`.draws`), ``key`` being the state_dict key of the tensor the draw fills. By
default that code is every module's ``reset_parameters()``, children before parents (the
order in which their constructors ran it); ``init`` replaces it (a model's
``init_weights``). This is the route for a model built on the meta device and sharded
(FSDP2's ``fully_shard``, DTensor parameters) before it holds memory: each rank draws the
part of each draw its shards hold, and the full parameters are those of one process.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ..errors import StableInitError
from ..recording.basics import frames
from ..recording.basics.identity import storage_of
from ..recording.oplevel import ops
from ..recording.oplevel.ops import call_device, result_tensor
from . import draws
from .keys import temp_key


class _Names:
    """The keys of a built model's tensors, found by identity or by the memory they
    fill (``.data``, a view, a DTensor's local shard), and the modules' paths."""

    def __init__(self, model: nn.Module) -> None:
        self._by_id: dict[int, str] = {}
        self._ranges: dict[int, list[tuple[int, int, str]]] = {}
        self._keep: list[Any] = []  # the storages and tensors whose ids are the keys
        for key, t in [*model.named_parameters(), *model.named_buffers()]:
            self._by_id.setdefault(id(t), key)
            self._keep.append(t)
            where = _span(t)
            if where is not None:
                storage, start, stop = where
                self._keep.append(storage)
                self._ranges.setdefault(id(storage), []).append((start, stop, key))
        self.paths = {id(m): path for path, m in model.named_modules()}
        self.stop: Any = None  # the frame where a search for a lender ends

    def key(self, t: Any) -> str | None:
        if not isinstance(t, torch.Tensor):
            return None
        key = self._by_id.get(id(t))
        if key is not None:
            return key
        where = _span(t)
        if where is None:
            return None
        for start, stop, k in self._ranges.get(id(where[0]), ()):
            if start <= where[1] < stop:
                return k
        return None

    def lender(self, frame: Any) -> str | None:
        """The key lent by the innermost function whose first argument is a tensor of
        the model (``orthogonal_(tensor)``'s random matrix); None at a module frame."""
        f = frame
        while f is not None and f is not self.stop:
            code = f.f_code
            if code.co_argcount:
                obj = f.f_locals.get(code.co_varnames[0])
                if isinstance(obj, nn.Module):
                    return None
                key = self.key(obj)
                if key is not None:
                    return key
            f = f.f_back
        return None


def _span(t: torch.Tensor) -> tuple[Any, int, int] | None:
    """The storage ``t`` fills and the bytes it starts at and ends before."""
    storage = storage_of(t)
    if storage is None:
        return None
    local = getattr(t, "_local_tensor", t)
    size = local.element_size()
    start = int(local.storage_offset()) * size
    return storage, start, start + max(int(local.numel()), 1) * size


class _Mode(TorchDispatchMode):
    def __init__(self, names: _Names, seed: int) -> None:
        super().__init__()
        self.names = names
        self.keyed = draws.Keyed(seed)
        self.temps: dict[str | None, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        info = ops.lookup(func)
        if info is None:
            return func(*args, **kwargs)
        gen = ops.generator_arg(info, args, kwargs)
        device = call_device(info, args, kwargs)
        if (gen is not None and not draws.is_default(gen)) or device.type == "meta":
            return func(*args, **kwargs)  # the owner's generator; meta draws nothing
        key = self.names.key(result_tensor(info, args, kwargs, None))
        lent = key is None
        if key is None:
            key = self.names.lender(sys._getframe(1))
        if key is None:
            lent = False
            module = frames.describe_stack(0).module
            path = self.names.paths.get(id(module)) if module is not None else None
            serial = self.temps.get(path, 0)
            self.temps[path] = serial + 1
            key = temp_key(path, serial)
        return self.keyed.draw(func, info, args, kwargs, key, lent, device)


def reinit(model: nn.Module, seed: int, init: Callable[[Any], Any] | None) -> None:
    """Run ``init(model)`` (default: every module's ``reset_parameters()``, children
    first) with every draw keyed by the name of what it fills."""
    run = _resets(model) if init is None else (lambda: init(model))
    names = _Names(model)
    names.stop = sys._getframe(0)
    with _Mode(names, seed):
        run()


def _resets(model: nn.Module) -> Callable[[], None]:
    """The calls of ``reset_parameters()`` that initialise ``model`` as its
    constructors did: children before parents (``Module.apply``'s order, which also
    lets a recording window name what each call fills), each module once. A module
    that holds parameters of its own and has no ``reset_parameters`` is refused by
    name, before anything is drawn."""
    for path, m in model.named_modules():
        own = [name for name, _ in m.named_parameters(recurse=False)]
        if own and _reset(m) is None:
            where = repr(path) if path else "the model itself"
            raise StableInitError(
                f"stable_init(model) re-initialises a model by calling each module's "
                f"reset_parameters(), and {where} ({type(m).__name__}) holds parameters "
                f"({', '.join(own)}) without one: pass init= (a function that initialises "
                f"the model, e.g. init=lambda m: m.init_weights()), or pass a factory "
                f"instead of the model (stable_init(lambda: {type(model).__name__}(...), "
                f"seed=...))")
    done: set[int] = set()

    def reset(m: nn.Module) -> None:
        fn = _reset(m)
        if fn is not None and id(m) not in done:
            done.add(id(m))
            fn()

    def run() -> None:
        model.apply(reset)
    return run


def _reset(m: nn.Module) -> Callable[[], Any] | None:
    """A module's ``reset_parameters``, or the private one of torch.nn's own modules
    that have no public one (``MultiheadAttention``, ``Transformer``)."""
    for name in ("reset_parameters", "_reset_parameters"):
        reset = getattr(m, name, None)
        if callable(reset) and (name == "reset_parameters"
                                or type(m).__module__.startswith("torch.nn.")):
            return reset
    return None
