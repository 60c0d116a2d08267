"""The private dispatch mode: forward everything, hand random calls to the recorder."""

from __future__ import annotations

import os
from typing import Any

from torch.utils._python_dispatch import TorchDispatchMode

from . import ops


class RecordingMode(TorchDispatchMode):
    """Passes every op through; random ops go to ``recorder.on_random``.

    Holds no state of its own. ``active`` turns it into a pure pass-through when the
    window closes in a thread that cannot pop it (the mode stack is per thread).
    """

    def __init__(self, recorder: Any) -> None:
        super().__init__()
        self.recorder = recorder
        self.active = True
        # A forked child (a DataLoader worker) inherits the mode stack and a copy of the
        # recorder, which writes the worker's draws to its part (recording.workers).
        self.pid = os.getpid()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        try:
            info = ops.CACHE[func]
        except KeyError:
            info = ops.classify(func)
        if info is None or not self.active:
            return func(*args, **kwargs) if kwargs else func(*args)
        if os.getpid() != self.pid:  # a forked DataLoader worker (recording.workers)
            return self.recorder.on_worker_random(func, info, args, kwargs or {})
        return self.recorder.on_random(func, info, args, kwargs or {})
