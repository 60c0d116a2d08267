"""What a Python or NumPy record says: who drew (:class:`Owner`), how many values, which
arguments, which object held the generator; and the generators read at boundaries."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from ..basics.places import place

_SCALARS = (bool, int, float, str)


def count(out: Any, args: tuple) -> tuple[int, tuple[int, ...], str]:
    """Values a call returned (numel), its shape and dtype; in-place shuffles count the
    sequence shuffled."""
    shape = getattr(out, "shape", None)
    if shape is not None and hasattr(out, "size"):
        return int(out.size), tuple(int(s) for s in shape), str(out.dtype)
    if out is None:  # shuffle(x): x was drawn into
        n = len(args[0]) if args and hasattr(args[0], "__len__") else 0
        return n, (n,), ""
    if isinstance(out, list | bytes):
        return len(out), (len(out),), type(out).__name__
    return 1, (), type(out).__name__


def scalar_args(args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    out = {f"a{i}": a for i, a in enumerate(args) if type(a) in _SCALARS}
    out.update((k, v) for k, v in kwargs.items() if type(v) in _SCALARS)
    return out


@dataclass(slots=True)
class Watched:
    """A NumPy Generator read at boundaries."""

    gen: Any
    name: str
    held_by: str | None
    last: dict[str, Any]
    text: str


@dataclass(slots=True)
class Owner:
    """Who a record is charged to: a module (named by the recorder) or a Dataset method."""

    module: nn.Module | None = None
    root: nn.Module | None = None  # the outermost module on the stack, when known
    dataset: Any = None
    method: str = "__getitem__"
    phase: str = "other"


def generator_kind(gen: Any) -> str:
    """``"Generator"`` or ``"RandomState"``: what a stream's name and a record's op say."""
    return "Generator" if hasattr(gen, "bit_generator") else "RandomState"


def generator_state(gen: Any) -> Any:
    """A Generator's ``bit_generator.state``, a RandomState's ``get_state`` (as a dict)."""
    if hasattr(gen, "bit_generator"):
        return gen.bit_generator.state
    return gen.get_state(legacy=False)


def dataset_method(code: Any, obj: Any) -> bool:
    """A map-style ``__getitem__`` of any class, or an ``IterableDataset``'s iteration."""
    if place(code.co_filename) == "stdlib":
        return False
    if code.co_name in ("__getitem__", "__getitems__"):
        return obj is not None and not isinstance(obj, random.Random)
    return code.co_name in ("__iter__", "__next__") and isinstance(obj, Dataset)


def held_by(owner: Owner | None, rng: Any) -> str | None:
    """``"MyDataset.rng"`` when the Dataset (or module) drawing holds ``rng``."""
    if owner is None:
        return None
    obj = owner.dataset if owner.dataset is not None else owner.module
    for attr, value in getattr(obj, "__dict__", {}).items():
        if value is rng:
            return f"{type(obj).__name__}.{attr}"
    return None
