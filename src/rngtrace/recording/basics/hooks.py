"""PyTorch's global hooks as the recorders use them: installed for a window, then removed.

Registration goes through :class:`~rngtrace.recording.basics.patches.Patches`, so that a hook
registered by a window that was interrupted while it opened is removed all the same.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .patches import Patches


class Hooks:
    """Global registration hooks, removed together."""

    def __init__(self) -> None:
        self._patches = Patches()

    def registration(self, on_module: Callable[..., None],
                     on_tensor: Callable[..., None]) -> None:
        """Call ``on_module(parent, name, child)`` and ``on_tensor(owner, name, tensor)``
        whenever a submodule, parameter or buffer is registered anywhere."""
        reg = nn.modules.module
        self._patches.hook(reg.register_module_module_registration_hook, on_module)
        self._patches.hook(reg.register_module_parameter_registration_hook, on_tensor)
        self._patches.hook(reg.register_module_buffer_registration_hook, on_tensor)

    def remove(self) -> None:
        self._patches.restore()


def note_gradients(optimizer: torch.optim.Optimizer, into: dict[int, torch.Tensor]) -> None:
    """Add the optimizer's parameters that hold a gradient to ``into`` (by id); those
    already in it are not looked at again (this runs at every step of a window)."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            if id(p) not in into and p.grad is not None:
                into[id(p)] = p
