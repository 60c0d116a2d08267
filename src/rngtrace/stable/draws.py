"""One keyed draw of :func:`rngtrace.stable_init`: big element-wise draws in blocks, and
the shard of a DTensor drawn as its part of the whole tensor.

The values of draw ``n`` into ``key`` are defined on the tensor's *logical* elements, in
row-major order, whatever its layout or sharding:

- an **element-wise** draw (every element drawn alike and independently: ``uniform_``,
  ``normal_``, ``bernoulli_(p)``, ``random_``, ``exponential_`` ..., and the factories
  ``rand``, ``randn``, ``randint``, ``normal(mean, std, size)`` and their ``_like``
  forms) into ``N`` elements is cut into blocks of :data:`BLOCK` elements (the last one
  shorter); block ``j`` holds what the op's in-place form writes into ``min(BLOCK, N - j
  * BLOCK)`` contiguous elements from the generator of ``(seed, key, n, j)``. A draw of
  one block is the op itself on the generator of ``(seed, key, n)``, as before blocks
  existed. A rank that holds a shard of the tensor draws only the blocks its shard
  touches, and keeps the part it holds.
- any other draw (``randperm``, ``multinomial``, a tensor of means) is the op itself on
  the generator of ``(seed, key, n)``; into a DTensor it is refused.

Each generator is named for the op level's log while it draws (``stable:<key>@<seed>``,
see :func:`.streams.stream_name`), so that a recorded run shows a stream per key.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch

from ..errors import StableInitError
from ..recording.basics.generators import default_generator, given_name
from ..recording.oplevel import ops
from . import streams

BLOCK = 1 << 18  # elements per block of a big element-wise draw (1 MiB of float32)

_A = torch.ops.aten
# in place, element-wise: (self, scalars..., generator)
ELEMENTWISE = frozenset({
    _A.uniform_.default, _A.normal_.default, _A.log_normal_.default,
    _A.exponential_.default, _A.cauchy_.default, _A.geometric_.default,
    _A.random_.default, getattr(_A.random_, "from"), _A.random_.to, _A.bernoulli_.float,
})


def _factory_forms() -> dict[Any, tuple[Any, Callable[[tuple, dict], tuple]]]:
    """Factories and the in-place op (with its scalars) that each amounts to: ``randn``
    is ``empty(size).normal_(0, 1)`` in ATen itself, and so on."""
    def const(*scalars: Any) -> Callable[[tuple, dict], tuple]:
        return lambda args, kwargs: scalars

    def low_high(args: tuple, kwargs: dict) -> tuple:
        return (args[0], args[1])

    forms: dict[Any, tuple[Any, Callable[[tuple, dict], tuple]]] = {}
    for packet, op, scalars in (
            (_A.rand, _A.uniform_.default, const(0.0, 1.0)),
            (_A.randn, _A.normal_.default, const(0.0, 1.0)),
            (_A.rand_like, _A.uniform_.default, const(0.0, 1.0)),
            (_A.randn_like, _A.normal_.default, const(0.0, 1.0))):
        for name in ("default", "generator"):
            if hasattr(packet, name):
                forms[getattr(packet, name)] = (op, scalars)
    rand_from = getattr(_A.random_, "from")
    for packet, name, op, scalars in (
            (_A.randint, "default", rand_from, lambda a, k: (0, a[0])),
            (_A.randint, "generator", rand_from, lambda a, k: (0, a[0])),
            (_A.randint, "low", rand_from, low_high),
            (_A.randint, "low_generator", rand_from, low_high),
            (_A.randint_like, "default", rand_from, lambda a, k: (0, a[1])),
            (_A.randint_like, "low_dtype", rand_from, lambda a, k: (a[1], a[2])),
            (_A.normal, "float_float", _A.normal_.default, low_high)):
        if hasattr(packet, name):  # an overload another torch may not have
            forms[getattr(packet, name)] = (op, scalars)
    return forms


FACTORIES = _factory_forms()


class Keyed:
    """The draws of one keyed build: generators from ``seed``, named while they draw.

    A draw's ordinal counts the draws into its key: ``n`` for the ``n``-th draw into the
    tensor itself, ``"n.m"`` for the ``m``-th draw into a temporary that the tensor
    lends its key to, after ``n`` draws into the tensor (``trunc_normal_``'s resamples,
    ``orthogonal_``'s matrix). So a value-dependent number of resamples (which a shard
    may need fewer of than the whole tensor) moves no later draw into the key.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._direct: dict[str, int] = {}  # draws into each key's tensor so far
        self._lent: dict[str, int] = {}  # draws lent since the last one into it

    def ordinal(self, key: str, lent: bool) -> int | str:
        """The ordinal of the next draw into ``key`` (counted: call once per draw)."""
        n = self._direct.get(key, 0)
        if lent:
            m = self._lent.get(key, 0) + 1
            self._lent[key] = m
            return f"{n}.{m}"
        self._direct[key] = n + 1
        self._lent.pop(key, None)
        return n

    def draw(self, func: Any, info: ops.OpInfo, args: tuple, kwargs: dict, key: str,
             lent: bool, device: torch.device) -> Any:
        """Run the random op ``func`` as the next draw into ``key`` (see the module doc);
        ``lent``: it fills a temporary made for the key's tensor."""
        n = self.ordinal(key, lent)
        dest = args[0] if info.inplace and args else None
        if _is_dtensor(dest):
            if func not in ELEMENTWISE:
                raise StableInitError(
                    f"{info.name} draws into the DTensor {key!r}: stable_init keys draws "
                    "into DTensors element by element only (uniform_, normal_, ...); "
                    "initialise it before distributing it, or with an element-wise init")
            return self._into_dtensor(func, info, args, kwargs, key, n)
        if func in ELEMENTWISE:
            assert dest is not None
            whole = dest.shape
            self._blocks(dest, whole, (0,) * len(whole), tuple(whole),
                         self._in_place(func, args[1:], kwargs, key, n))
            return dest
        if any(_is_dtensor(a) for a in args):
            raise StableInitError(
                f"{info.name} draws from the DTensor {key!r}: stable_init keys draws into "
                "DTensors in place and element by element only (uniform_, normal_, ...)")
        form = FACTORIES.get(func)
        if form is not None:
            shape = _factory_shape(func, args)
            if shape is not None and math.prod(shape) > BLOCK:
                op, scalars = form
                out = _empty_for(func, args, kwargs, shape)
                self._blocks(out, shape, (0,) * len(shape), shape,
                             self._in_place(op, scalars(args, kwargs), {}, key, n))
                return out
        g = streams.keyed_generator(self.seed, key, n, device)
        with given_name(g, streams.stream_name(self.seed, key, n)):
            return call_with(func, info, args, kwargs, g, device)

    def _in_place(self, op: Any, scalars: tuple, kwargs: dict, key: str,
                  n: int | str) -> Callable[[int, torch.Tensor], None]:
        """Block ``j`` of the draw: ``op`` into ``view`` from the block's generator."""
        kw = {k: v for k, v in kwargs.items() if k != "generator"}

        def fill(j: int, view: torch.Tensor) -> None:
            g = streams.keyed_generator(self.seed, key, n, view.device, j)
            with given_name(g, streams.stream_name(self.seed, key, n, j)):
                op(view, *scalars, **kw, generator=g)
        return fill

    def _into_dtensor(self, func: Any, info: ops.OpInfo, args: tuple, kwargs: dict,
                      key: str, n: int | str) -> Any:
        """This rank's shard of an element-wise draw into a DTensor: the blocks it
        touches, drawn as for the whole tensor, and the part of them it holds."""
        from torch.distributed.tensor import Replicate, Shard
        from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

        dest = args[0]
        for p in dest.placements:
            if type(p) not in (Shard, Replicate):
                raise StableInitError(
                    f"the DTensor {key!r} is placed as {p}: stable_init draws into shards "
                    "(Shard) and replicas (Replicate) only")
        shape, offset = compute_local_shape_and_global_offset(
            dest.shape, dest.device_mesh, dest.placements)
        with torch.no_grad():
            local = dest.to_local()
            if tuple(local.shape) != tuple(shape):
                raise StableInitError(
                    f"the shard of the DTensor {key!r} holds {list(local.shape)}, where its "
                    f"placements {dest.placements} give {list(shape)}")
            self._blocks(local, tuple(dest.shape), tuple(offset), tuple(shape),
                         self._in_place(func, args[1:], kwargs, key, n))
        return dest

    def _blocks(self, out: torch.Tensor, whole: tuple[int, ...], offset: tuple[int, ...],
                shape: tuple[int, ...], fill: Callable[[int, torch.Tensor], None]) -> None:
        """Write into ``out`` (the region ``offset``/``shape`` of a tensor of shape
        ``whole``) its elements of the blocks of the whole; ``fill(j, view)`` draws block
        ``j`` into a contiguous view of its length. A block that lies whole in ``out``'s
        memory is drawn there; a block cut by the region's edge is drawn into a buffer
        (one block at most, reused while the region's runs stay in it)."""
        total = math.prod(whole)
        if total <= BLOCK and out.is_contiguous() and tuple(out.shape) == whole:
            fill(0, out)  # the op itself, on the tensor itself: shapes in logs as written
            return
        target = out if out.is_contiguous() else torch.empty(
            shape, dtype=out.dtype, device=out.device)
        flat = target.view(-1)
        buf, held = None, -1
        for g0, p0, length in runs(whole, offset, shape):
            g = g0
            while g < g0 + length:
                j = g // BLOCK
                start, stop = j * BLOCK, min(total, (j + 1) * BLOCK)
                end = min(g0 + length, stop)
                here = flat[p0 + g - g0:p0 + end - g0]
                if g == start and end == stop:
                    fill(j, here)
                else:
                    if held != j:
                        buf, held = torch.empty(stop - start, dtype=out.dtype,
                                                device=out.device), j
                        fill(j, buf)
                    assert buf is not None
                    here.copy_(buf[g - start:end - start])
                g = end
        if target is not out:
            out.copy_(target)


def runs(whole: tuple[int, ...], offset: tuple[int, ...],
         shape: tuple[int, ...]) -> Iterator[tuple[int, int, int]]:
    """The region ``offset``/``shape`` of a row-major tensor of shape ``whole`` as runs of
    consecutive elements: ``(first element in the whole, first in the region, length)``,
    in increasing order of both.

    >>> list(runs((4, 6), (0, 3), (4, 3)))  # Shard(1) of 2 ranks, rank 1: a run per row
    [(3, 0, 3), (9, 3, 3), (15, 6, 3), (21, 9, 3)]
    >>> list(runs((4, 6), (2, 0), (2, 6)))  # Shard(0): one run
    [(12, 0, 12)]
    """
    if not whole:
        yield 0, 0, 1
        return
    d = len(whole) - 1  # the innermost dimension the region does not span
    while d > 0 and shape[d] == whole[d]:
        d -= 1
    strides = [math.prod(whole[i + 1:]) for i in range(len(whole))]
    length = shape[d] * strides[d]
    p = 0
    for idx in itertools.product(*(range(offset[i], offset[i] + shape[i]) for i in range(d))):
        yield sum(i * s for i, s in zip(idx, strides, strict=False)) + offset[d] * strides[d], \
            p, length
        p += length


def is_default(gen: torch.Generator) -> bool:
    """A default generator passed explicitly is treated like no generator at all."""
    default = default_generator(gen.device)
    return default is not None and getattr(default, "_cdata", 0) == getattr(gen, "_cdata", 1)


def _is_dtensor(t: Any) -> bool:
    """Whether ``t`` is a DTensor (none exists unless torch.distributed.tensor is loaded:
    it is not imported for a program that does not use it)."""
    dt = sys.modules.get("torch.distributed.tensor")
    return dt is not None and isinstance(t, dt.DTensor)


def _factory_shape(func: Any, args: tuple) -> tuple[int, ...] | None:
    """The shape a factory call makes (None for one it cannot read)."""
    for a in args:
        if isinstance(a, torch.Tensor):  # the _like forms
            return tuple(a.shape)
    for a in args:
        if isinstance(a, list | tuple | torch.Size):
            return tuple(int(x) for x in a)
    return None


def _empty_for(func: Any, args: tuple, kwargs: dict, shape: tuple[int, ...]) -> torch.Tensor:
    """The tensor a factory call would return, not yet drawn into."""
    kw = {k: kwargs[k] for k in ("dtype", "layout", "device", "pin_memory") if k in kwargs}
    like = next((a for a in args if isinstance(a, torch.Tensor)), None)
    if like is not None:
        return torch.empty_like(like, **kw).contiguous()
    if "dtype" not in kw and func.overloadpacket is _A.randint:
        kw["dtype"] = torch.int64
    return torch.empty(shape, **kw)


def call_with(func: Any, info: ops.OpInfo, args: tuple, kwargs: dict,
              g: torch.Generator, device: torch.device) -> Any:
    """Run ``func`` drawing from ``g``, whatever its signature."""
    pos = info.generator_pos
    if pos is not None:
        if pos < len(args):
            args = (*args[:pos], g, *args[pos + 1:])
        else:
            kwargs = {**kwargs, func._schema.arguments[pos].name: g}
        return func(*args, **kwargs)
    sibling = streams.with_generator(func)
    if sibling is not None:
        return sibling(*args, **kwargs, generator=g)
    # No generator argument anywhere (dropout, RNN, attention kernels): lend the keyed
    # state to the device's default generator for this one call.
    default = default_generator(device)
    if default is None:
        return func(*args, **kwargs)
    saved = default.get_state()
    default.set_state(g.get_state())
    try:
        return func(*args, **kwargs)
    finally:
        default.set_state(saved)
