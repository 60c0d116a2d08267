"""Telling the user's objects apart: a tensor by the storage it fills, a model by a label.

One copy of each, used by both levels and by :func:`rngtrace.stable_init`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def storage_of(t: torch.Tensor) -> Any:
    """The storage ``t`` reads and writes, or None for a tensor without one (some
    subclasses, sparse). Views, ``.data`` and ``Parameter(t)`` share it, which is how a
    draw is tied to the parameter it fills. A DTensor (an FSDP2 or tensor-parallel
    parameter) is a wrapper without storage of its own: its local shard's identifies it,
    so that the recorder and ``stable_init`` agree on a sharded parameter.

    >>> w = torch.nn.Parameter(torch.zeros(2))
    >>> storage_of(w.data) is storage_of(w) is storage_of(w[:1])
    True
    """
    if type(t) is not torch.Tensor:  # a missing attribute costs an exception
        local = getattr(t, "_local_tensor", None)
        if isinstance(local, torch.Tensor):
            t = local
    try:
        return t.untyped_storage()
    except Exception:  # tensors without storage (some subclasses, sparse)
        return None


def model_label(model: nn.Module, seen: list[nn.Module]) -> str:
    """A model's name in logs (``Draw.model``): its class name, ``"Net#2"`` for the
    second model of that class among ``seen`` (the models in the order first seen)."""
    name = type(model).__name__
    same = 0
    for m in seen:
        if m is model:
            break
        if type(m).__name__ == name:
            same += 1
    return name if same == 0 else f"{name}#{same + 1}"
