"""Seeing reseeds: ``torch.manual_seed`` and friends never reach a dispatch mode.

While a window is open the public seeding functions are wrapped; each wrapper calls
the original unchanged and then tells the recorder, which compares the generators'
states and records ``"reseed"`` events with the caller's site. The originals are put
back when the window closes (through :mod:`rngtrace.recording.basics.patches`). Code that kept
its own reference to a function before the window (``from torch import manual_seed``),
and ``Generator.manual_seed`` on an explicit generator, are not wrapped: their effect
still shows, as a ``"gap"`` event.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import torch

from ...log import UNCHANGED, Event
from ..basics.patches import Patches

# (module, function, generators the call is about: "cpu", "cuda" or "all")
_TARGETS = (
    ("torch", "manual_seed", "all"),
    ("torch.random", "manual_seed", "all"),
    ("torch", "seed", "all"),
    ("torch.random", "seed", "all"),
    ("torch", "set_rng_state", "cpu"),
    ("torch.random", "set_rng_state", "cpu"),
    ("torch.cuda", "manual_seed", "cuda"),
    ("torch.cuda", "manual_seed_all", "cuda"),
    ("torch.cuda", "seed", "cuda"),
    ("torch.cuda", "seed_all", "cuda"),
    ("torch.cuda", "set_rng_state", "cuda"),
    ("torch.cuda", "set_rng_state_all", "cuda"),
    ("torch.cuda.random", "manual_seed", "cuda"),
    ("torch.cuda.random", "manual_seed_all", "cuda"),
    ("torch.cuda.random", "seed", "cuda"),
    ("torch.cuda.random", "seed_all", "cuda"),
    ("torch.cuda.random", "set_rng_state", "cuda"),
    ("torch.cuda.random", "set_rng_state_all", "cuda"),
)


def describe_call(label: str, args: tuple, kwargs: dict) -> str:
    def show(v: Any) -> str:
        if isinstance(v, torch.Tensor):
            return f"<state of {v.numel()} bytes>"
        if isinstance(v, list | tuple):
            return f"<{len(v)} states>"
        return repr(v)

    parts = [show(a) for a in args] + [f"{k}={show(v)}" for k, v in kwargs.items()]
    return f"{label}({', '.join(parts)})"


def watch_reseeds(patches: Patches,
                  notify: Callable[[str, str, tuple, dict, str], None]) -> None:
    """Wrap the public seeding functions through ``patches``: each wrapper calls the
    original unchanged, then ``notify(label, scope, args, kwargs, note)`` (``note``: what
    a person needs to read the call, or "").

    A seeding function that calls another (``torch.manual_seed`` calls
    ``torch.cuda.manual_seed_all``) notifies once, for the outer call; the depth that
    tells is per thread, so that two threads seeding at once both notify.
    """
    local = threading.local()
    for modname, fname, scope in _TARGETS:
        try:
            mod = importlib.import_module(modname)
        except ImportError:
            continue
        orig = getattr(mod, fname, None)
        if orig is not None:
            patches.replace(mod, fname, _wrap(orig, f"{modname}.{fname}", scope, notify,
                                              local))


def _wrap(orig: Callable, label: str, scope: str, notify: Callable,
          local: threading.local) -> Callable:
    @functools.wraps(orig)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        depth = getattr(local, "depth", 0)
        if depth:
            return orig(*args, **kwargs)
        local.depth = 1
        outer = _unwrapped_caller(sys._getframe(1)) if scope == "cuda" else None
        try:
            return orig(*args, **kwargs)
        finally:
            local.depth = 0
            notify(label, scope, args, kwargs, "" if outer is None else f" {outer}")

    return wrapper


def _unwrapped_caller(frame: Any) -> str | None:
    """How to name a CUDA seeding call made by torch's own ``manual_seed``/``seed``
    running unwrapped (a reference taken before the window: ``from torch import
    manual_seed``): only the inner CUDA call reaches a wrapper, and the CPU reseed that
    follows it shows as a gap. None for a call from anywhere else."""
    code = frame.f_code
    if code.co_name in ("manual_seed", "_manual_seed_impl", "seed") and \
            code.co_filename.endswith(os.path.join("torch", "random.py")):
        name = "seed" if code.co_name == "seed" else "manual_seed"
        return (f"(the inner call of torch.{name}, imported before the window and "
                "so not wrapped: its CPU reseed shows as the gap that follows)")
    return None


def unchanged_event(scope: str, cuda: bool, before: int, site: str | None,
                    detail: str) -> Event:
    """The event for a seeding call that left every generator as it was (a seed equal
    to the current one), on the generator the call is about: the current CUDA device's
    when the call is CUDA's and CUDA generators are known (``cuda``), else the CPU's."""
    name = "default:cpu"
    if scope == "cuda" and cuda:
        name = f"default:cuda:{torch.cuda.current_device()}"
    return Event("reseed", name, before, site, detail + UNCHANGED)
