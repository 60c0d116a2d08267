"""What one op-level draw costs the recorder, part by part, on bench 2c's step.

    python benchmarks/draw_cost.py [WINDOWS]

Wraps the recorder's functions (stack walk, state reads, digests, ``Draw``, sink, names)
with timers on the thread's CPU clock and runs WINDOWS windows (default 10) of 20
training steps of the 2-layer ``nn.TransformerEncoder`` of ``make bench`` 2c; prints
microseconds per draw. The wrappers add their own cost: compare versions with it, not
with the step's figures. docs/benchmarks.md has a before/after table made with it.
"""

from __future__ import annotations

import collections
import os
import sys
import time
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from models import EncoderConfig, EncoderTrainer

import rngtrace
from rngtrace.recording.basics import generators
from rngtrace.recording.oplevel import naming
from rngtrace.recording.oplevel import recorder as oplevel
from rngtrace.recording.window import sinks

PARTS = ("stack walk", "state reads", "digest", "Draw", "sink", "names")


def main(argv: list[str]) -> int:
    torch.set_num_threads(1)
    windows = int(argv[0]) if argv else 10
    spent: collections.Counter[str] = collections.Counter()
    clock = time.thread_time_ns

    def wrap(owner: Any, name: str, label: str) -> None:
        f = getattr(owner, name)

        def timed(*a: Any, **k: Any) -> Any:
            t = clock()
            try:
                return f(*a, **k)
            finally:
                spent[label] += clock() - t

        setattr(owner, name, timed)

    on_random = oplevel.Recorder.on_random

    def counted(self: Any, func: Any, info: Any, args: tuple, kwargs: dict) -> Any:
        def kernel(*a: Any, **k: Any) -> Any:
            t = clock()
            try:
                return func(*a, **k)
            finally:
                spent["kernel"] += clock() - t

        t = clock()
        try:
            return on_random(self, kernel, info, args, kwargs)
        finally:
            spent["dispatch"] += clock() - t
            spent["draws"] += 1

    oplevel.Recorder.on_random = counted  # type: ignore[method-assign]
    wrap(oplevel.frames, "describe_stack", "stack walk")
    wrap(generators.Slot, "raw", "state reads")
    wrap(generators, "state_text", "digest")
    wrap(oplevel, "Draw", "Draw")
    wrap(sinks.MemorySink, "draw", "sink")
    wrap(sinks.MemorySink, "draws", "sink")
    wrap(naming.Names, "claim", "names")
    wrap(naming.Names, "now", "names")
    if hasattr(oplevel.Recorder, "_write"):  # draws described at the optimizer step
        wrap(oplevel.Recorder, "_write", "at the step")
    tr = EncoderTrainer(EncoderConfig())
    for _ in range(3):
        tr.step()
    total: collections.Counter[str] = collections.Counter()
    for _ in range(windows):
        with rngtrace.record():
            tr.step()  # the first step of a window is not the steady state
            spent.clear()
            for _ in range(20):
                tr.step()
            total.update(spent)  # the window's end not counted
    _report(total, windows)
    return 0


def _report(total: collections.Counter[str], windows: int) -> None:
    n = total["draws"]
    print(f"{n} draws, {windows} windows of 20 steps; us per draw (thread CPU time)")
    for part in PARTS:
        print(f"  {part:12s} {total[part] / n / 1e3:6.1f}")
    inside = (total["dispatch"] - total["kernel"]) / n / 1e3
    later = total["at the step"] / n / 1e3
    print(f"  recorder time inside the dispatch (kernel excluded) {inside:6.1f}")
    print(f"  described at the optimizer step                     {later:6.1f}")
    print(f"  total                                               {inside + later:6.1f}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
