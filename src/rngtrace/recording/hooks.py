"""PyTorch's global hooks as the recorders use them: installed for a window, then removed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn


class Hooks:
    """A set of global hook handles, removed together."""

    def __init__(self) -> None:
        self._handles: list[Any] = []

    def registration(self, on_module: Callable[..., None],
                     on_tensor: Callable[..., None]) -> None:
        """Call ``on_module(parent, name, child)`` and ``on_tensor(owner, name, tensor)``
        whenever a submodule, parameter or buffer is registered anywhere."""
        reg = nn.modules.module
        self._handles += [
            reg.register_module_module_registration_hook(on_module),
            reg.register_module_parameter_registration_hook(on_tensor),
            reg.register_module_buffer_registration_hook(on_tensor),
        ]

    def add(self, handle: Any) -> None:
        self._handles.append(handle)

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


def note_gradients(optimizer: torch.optim.Optimizer, into: dict[int, torch.Tensor]) -> None:
    """Add the optimizer's parameters that hold a gradient to ``into`` (by id); those
    already in it are not looked at again (this runs at every step of a window)."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            if id(p) not in into and p.grad is not None:
                into[id(p)] = p
