"""The floors every recorder is measured against (dispatch modes that do nothing), and
what a benchmark line says of its model (module calls per step, parameters).

A bare ``TorchDispatchMode`` costs what any dispatch-level tracer must pay before it does
any work; the benchmarks give recording's cost as a ratio to it (see docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class BareMode(TorchDispatchMode):
    """The floor for any dispatch-level tracer: forwards every op, does nothing else."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


class CompileBareMode(BareMode):
    """The floor under torch.compile: a bare mode that lets dynamo compile."""

    @classmethod
    def ignore_compile_internals(cls) -> bool:
        return True


def module_calls(step: Any) -> int:
    """Module calls that ``step()`` makes (forward hooks fire once per call)."""
    n = 0

    def count(module: Any, args: Any) -> None:
        nonlocal n
        n += 1

    h = torch.nn.modules.module.register_module_forward_pre_hook(count)
    try:
        step()
    finally:
        h.remove()
    return n


def param_count(model: torch.nn.Module) -> int:
    """How many numbers the model's parameters hold."""
    return sum(p.numel() for p in model.parameters())
