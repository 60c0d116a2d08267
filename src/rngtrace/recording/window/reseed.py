"""Seeing reseeds: ``torch.manual_seed`` and friends never reach a dispatch mode.

While a window is open the public seeding functions are wrapped; each wrapper calls
the original unchanged and then tells the recorder, which compares the generators'
states and records ``"reseed"`` events with the caller's site. The originals are put
back when the window closes (through :mod:`rngtrace.recording.basics.patches`). Code that kept
its own reference to a function before the window (``from torch import manual_seed``) is
not wrapped: its effect still shows, as a ``"gap"`` event. ``Generator.manual_seed`` on
an explicit generator cannot be wrapped (the type is immutable): the op level tells it
from a gap at the generator's next draw (:func:`~..basics.generators.reseeded_to`).

Two calls change nothing and say so: a call for CUDA while CUDA has not started (on a
CPU-only machine ``torch.cuda.manual_seed_all`` and ``set_rng_state_all`` are queued or do
nothing) is no event at all, not one of the CPU's; and ``set_rng_state`` given a state the
program read in this window (``fork_rng``, Lightning's ``isolate_rng``, an activation
checkpoint's recompute: the state object itself, returned by ``get_rng_state``) is marked
:data:`~rngtrace.log.SET_BACK`: a state set back, not one restored from a checkpoint.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

import torch

from ...log import SET_BACK, UNCHANGED, Event
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
# the functions whose results a set_rng_state may set back (see _Read)
_READERS = (("torch", "get_rng_state"), ("torch.random", "get_rng_state"),
            ("torch.cuda", "get_rng_state"), ("torch.cuda", "get_rng_state_all"),
            ("torch.cuda.random", "get_rng_state"), ("torch.cuda.random", "get_rng_state_all"))
_SETTERS = ("set_rng_state", "set_rng_state_all")


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
    read = _Read()
    for modname, fname, scope in _TARGETS:
        try:
            mod = importlib.import_module(modname)
        except ImportError:
            continue
        orig = getattr(mod, fname, None)
        if orig is not None:
            patches.replace(mod, fname, _wrap(orig, f"{modname}.{fname}", scope, notify,
                                              local, read if fname in _SETTERS else None))
    for modname, fname in _READERS:
        owner = sys.modules.get(modname)
        orig = getattr(owner, fname, None) if owner is not None else None
        if orig is not None:
            patches.replace(owner, fname, _reader(orig, read))


def _wrap(orig: Callable, label: str, scope: str, notify: Callable,
          local: threading.local, read: _Read | None = None) -> Callable:
    @functools.wraps(orig)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        depth = getattr(local, "depth", 0)
        if depth:
            return orig(*args, **kwargs)
        local.depth = 1
        outer = _unwrapped_caller(sys._getframe(1)) if scope == "cuda" else None
        back = read is not None and read.holds(args[0] if args else next(
            iter(kwargs.values()), None))
        try:
            return orig(*args, **kwargs)
        finally:
            local.depth = 0
            note = ("" if outer is None else f" {outer}") + (SET_BACK if back else "")
            notify(label, scope, args, kwargs, note)

    return wrapper


class _Read:
    """The generator states the program read in this window (``get_rng_state``), by
    identity and without keeping them alive: ``fork_rng``, Lightning's ``isolate_rng``
    and an activation checkpoint hand the very object back to ``set_rng_state``; a state
    restored from a checkpoint file is another object."""

    def __init__(self) -> None:
        self._refs: dict[int, weakref.ref] = {}

    def note(self, state: Any) -> None:
        if len(self._refs) > 1024:  # forget the states freed since, or the oldest half
            alive = {k: r for k, r in self._refs.items() if r() is not None}
            self._refs = alive if len(alive) <= 512 else dict(list(alive.items())[-512:])
        for s in state if isinstance(state, list) else (state,):
            with contextlib.suppress(TypeError):
                self._refs[id(s)] = weakref.ref(s)

    def holds(self, state: Any) -> bool:
        items = state if isinstance(state, list | tuple) else (state,)
        return bool(items) and all(
            (r := self._refs.get(id(s))) is not None and r() is s for s in items)


def _reader(orig: Callable, read: _Read) -> Callable:
    compiling = torch.compiler.is_compiling

    @functools.wraps(orig)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = orig(*args, **kwargs)
        if not compiling():
            read.note(out)
        return out

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


def unchanged_event(scope: str, before: int, site: str | None, detail: str,
                    note: str = "") -> Event | None:
    """The event for a seeding call that left every generator as it was (a seed equal
    to the current one), on the generator the call is about: the current CUDA device's
    for a CUDA call, else the CPU's. None for a CUDA call while CUDA has not started (no
    CUDA on the machine, or not yet): it changed no generator and is no event of the
    CPU's, unless ``note`` says that it is the inner call of an unwrapped
    ``torch.manual_seed`` (its CPU reseed follows, as a gap)."""
    if scope != "cuda":
        name = "default:cpu"
    elif torch.cuda.is_initialized():
        name = f"default:cuda:{torch.cuda.current_device()}"
    elif "inner call" in note:
        name = "default:cpu"
    else:
        return None
    return Event("reseed", name, before, site, detail + UNCHANGED)
