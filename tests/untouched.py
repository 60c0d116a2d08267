"""What "torch exactly as before" means for the window tests: a snapshot of every global
a recording window touches, and a check that a new window opens and records.

Import it as ``import untouched`` (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import importlib
import random
import sys
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.optim import optimizer as optim_mod
from torch.utils._python_dispatch import _get_current_dispatch_mode_stack
from torch.utils.data._utils import fetch as _fetch

import rngtrace
from rngtrace.recording.streams import pypatches
from rngtrace.recording.window import claims, reseed


def _hook_counts() -> tuple[int, ...]:
    m = nn.modules.module
    return tuple(len(d) for d in (
        optim_mod._global_optimizer_post_hooks, optim_mod._global_optimizer_pre_hooks,
        m._global_module_registration_hooks, m._global_parameter_registration_hooks,
        m._global_buffer_registration_hooks, m._global_forward_hooks,
        m._global_forward_pre_hooks, m._global_backward_hooks))


def _seeding() -> dict[str, Any]:
    """Every public seeding function the windows wrap, by its dotted name."""
    out = {}
    for modname, fname, _ in reseed._TARGETS:
        mod = importlib.import_module(modname)
        out[f"{modname}.{fname}"] = getattr(mod, fname)
    return out


def _others() -> dict[str, Any]:
    """The other functions a window wraps: ``random``'s and NumPy's drawing and seeding
    functions, the DataLoader's fetchers, ``torch.distributed.destroy_process_group``."""
    out = {}
    for name in pypatches._PY_DRAW + pypatches._PY_SEED:
        out[f"random.Random.{name}"] = vars(random.Random).get(name)
        out[f"random.{name}"] = getattr(random, name, None)
    np = sys.modules.get("numpy")
    if np is not None:
        for name in (*np.random.mtrand.__all__, "default_rng"):
            out[f"numpy.random.{name}"] = getattr(np.random, name, None)
    for cls in (_fetch._MapDatasetFetcher, _fetch._IterableDatasetFetcher):
        out[f"{cls.__name__}.fetch"] = vars(cls).get("fetch")
    if torch.distributed.is_available():
        out["torch.distributed.destroy_process_group"] = \
            torch.distributed.destroy_process_group
    return out


@dataclass
class Snapshot:
    call: Any
    seeding: dict[str, Any]
    hooks: tuple[int, ...]
    modes: list[Any]
    rng: torch.Tensor
    finders: list[Any]  # sys.meta_path (a window watches imports of the compiler stack)

    @classmethod
    def take(cls) -> Snapshot:
        return cls(nn.Module.__call__, _seeding() | _others(), _hook_counts(),
                   _get_current_dispatch_mode_stack(), torch.get_rng_state(),
                   list(sys.meta_path))

    def problems(self, rng: bool = True) -> list[str]:
        """What differs from now (empty when torch is as it was); ``rng=False`` leaves
        the generator's state out (the program itself may have drawn)."""
        now = Snapshot.take()
        out = []
        if now.call is not self.call:
            out.append("nn.Module.__call__ replaced")
        out += [f"{k} replaced" for k, f in self.seeding.items() if now.seeding[k] is not f]
        if now.hooks != self.hooks:
            out.append(f"global hooks {self.hooks} -> {now.hooks}")
        if len(now.modes) != len(self.modes) or any(
                a is not b for a, b in zip(now.modes, self.modes, strict=False)):
            out.append(f"dispatch modes {self.modes} -> {now.modes}")
        if len(now.finders) != len(self.finders) or any(
                a is not b for a, b in zip(now.finders, self.finders, strict=False)):
            out.append(f"sys.meta_path {self.finders} -> {now.finders}")
        if rng and not torch.equal(now.rng, self.rng):
            out.append("default generator moved")
        if claims.active_window() is not None:
            out.append("a window is still claimed")
        return out


def records_again(level: str = "op") -> None:
    """A new window opens, records one draw (op level) and closes."""
    with rngtrace.record(level=level) as log:
        torch.rand(1)
    assert log.complete
    if level == "op":
        assert [d.op for d in log.draws] == ["aten::rand"]
