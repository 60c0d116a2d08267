"""The private dispatch mode: forward everything, hand random calls to the recorder.

:func:`remove` takes the mode off the stack at the window's end wherever it is: a mode
the user entered inside the window and left open stays on the stack, untouched (popping
the top instead, as ``TorchDispatchMode.__exit__`` does, would take the user's mode off
and leave rngtrace's on).
"""

from __future__ import annotations

import os
from typing import Any

import torch.utils._python_dispatch as _pd
from torch._ops import OpOverload
from torch.utils._python_dispatch import TorchDispatchMode

from . import ops

# TorchDispatchMode.__enter__ saves three process-wide flags per mode and __exit__
# restores them; a mode taken from the middle of the stack hands its saved values on.
_FLAGS = ("old_dispatch_mode_flags", "old_non_infra_dispatch_mode_flags",
          "old_without_ignore_compile_internals_dispatch_mode_flags")


class RecordingMode(TorchDispatchMode):
    """Passes every op through; random ops go to ``recorder.on_random``.

    Holds no state of its own. ``active`` turns it into a pure pass-through when the
    window closes in a thread that cannot pop it (the mode stack is per thread).

    ``torch.compile`` compiles under it (``ignore_compile_internals``): dynamo would
    otherwise refuse to compile while the mode is on the stack, for good (see
    docs/compile.md). The compiled code then runs under the mode, which sees the calls it
    makes into aten: Inductor's one seed draw per graph call (:mod:`..compiled.seedmaps`
    names the graph's random nodes from it) and the random ops of graphs other backends
    run. Higher-order ops (the checkpoint's ``run_and_save_rng_state``/
    ``run_with_rng_state`` in an ``aot_eager`` graph) reach ``__torch_dispatch__`` too,
    instead of failing.
    """

    supports_higher_order_operators = True

    def __init__(self, recorder: Any) -> None:
        super().__init__()
        self.recorder = recorder
        self.active = True
        # A forked child (a DataLoader worker) inherits the mode stack and a copy of the
        # recorder, which writes the worker's draws to its part (recording.streams.workers).
        self.pid = os.getpid()
        self.above: list[TorchDispatchMode] = []  # modes to put back over it (remove())

    # Let dynamo compile under the mode (docs/compile.md). A C callable, not a Python method:
    # TorchDispatchMode.__enter__ calls it between its updates of torch's process-wide
    # mode flags, where an interrupt raised in a Python line would leave them half set.
    ignore_compile_internals = staticmethod(True.__bool__)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        # The fast path of every op: one attribute read (ops.classify tags each overload
        # it has seen with its classification, ops.TAG).
        try:
            info = func._rngtrace_info
        except AttributeError:  # an overload not seen yet, or a higher-order op
            if not isinstance(func, OpOverload):  # a higher-order op (never tagged)
                if self.active and os.getpid() == self.pid:
                    return self.recorder.on_higher_order(func, args, kwargs or {})
                return func(*args, **kwargs) if kwargs else func(*args)
            info = ops.classify(func)
        if info is None or not self.active:
            return func(*args, **kwargs) if kwargs else func(*args)
        if os.getpid() != self.pid:  # a forked DataLoader worker (recording.streams.workers)
            return self.recorder.on_worker_random(func, info, args, kwargs or {})
        return self.recorder.on_random(func, info, args, kwargs or {})


def on_stack(mode: TorchDispatchMode) -> bool:
    """Whether ``mode`` is on this thread's dispatch mode stack."""
    return any(m is mode for m in _pd._get_current_dispatch_mode_stack())


def remove(mode: RecordingMode) -> None:
    """Take ``mode`` off this thread's stack, wherever it is; the modes above it stay, in
    their order. Safe to call again after an interruption: it finishes the job."""
    stack = _pd._get_current_dispatch_mode_stack()
    at = next((i for i, m in enumerate(stack) if m is mode), None)
    if at == len(stack) - 1:
        mode.__exit__(None, None, None)
    elif at is not None:
        # first the modes popped by an interrupted earlier call (they were on top)
        mode.above = stack[at + 1:] + [m for m in mode.above if all(m is not s for s in stack)]
        for _ in range(len(stack) - at):
            _pd._pop_mode()
        _hand_on_flags(mode)
    for m in list(mode.above):
        if not on_stack(m):
            _pd._push_mode(m)
    mode.above = []


def _hand_on_flags(mode: RecordingMode) -> None:
    """The modes above ``mode`` saved the flags as they were with ``mode`` entered; make
    them restore what ``mode`` saved instead, as if it had never been entered."""
    try:
        flags = [getattr(mode, name).pop() for name in _FLAGS]
        for m in mode.above:
            saved = [getattr(m, name, None) for name in _FLAGS]
            for deque, value in zip(saved, flags, strict=True):
                if deque:
                    deque[-1] = value
            flags = [True, flags[1] or not m.is_infra_mode(),
                     flags[2] or not m.ignore_compile_internals()]
        _pd._is_in_torch_dispatch_mode = flags[0]
        _pd._is_in_non_infra_torch_dispatch_mode = flags[1]
        _pd._is_in_any_mode_without_ignore_compile_internals = flags[2]
        _pd.set_is_in_mode_without_ignore_compile_internals(flags[2])
    except Exception:  # another torch: the flags only matter to torch.compile's checks
        return

