"""What recording Python's random and NumPy costs: a training step, side by side.

    python benchmarks/bench_pystreams.py [--rounds N] [--steps K]

Cases alternate round by round (``harness.alternate``) on the small transformer of
``make bench`` (2a), in one process:

- ``record(python_rng=False)`` (twice: the second is the noise floor) and ``record()``
  (python_rng on) on the plain step: the cost of the feature when the program draws
  nothing from random or NumPy (the patches, and one check per module call);
- the same two with an augmentation in the step that draws 4 values from ``random`` and
  one array from ``np.random`` per step: the cost per Python/NumPy draw recorded.

Prints medians per step and the ratios; nothing is written.
"""

from __future__ import annotations

import argparse
import os
import random
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402
from bench import SMALL_STEP  # noqa: E402
from models import Trainer  # noqa: E402

import rngtrace  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    clock_name, now = harness.clock("cpu")
    tr = Trainer(SMALL_STEP, "cpu")
    for _ in range(3):
        tr.step()

    def augment() -> None:
        for _ in range(4):
            random.random()
        np.random.normal(size=16)

    def window(python_rng: bool, augmented: bool):
        def run() -> list[float]:
            out = []
            with rngtrace.record(python_rng=python_rng):
                tr.step()  # the first step of a window is not the steady state
                for _ in range(args.steps):
                    t = now()
                    if augmented:
                        augment()
                    tr.step()
                    out.append(now() - t)
            return out
        return run

    cases = {
        "record(python_rng=False)": window(False, False),
        "record(python_rng=False) again (control)": window(False, False),
        "record()": window(True, False),
        "record(python_rng=False), augmented": window(False, True),
        "record(), augmented": window(True, True),
    }
    s = harness.alternate(cases, args.rounds, lambda t: print(f"  {t}", file=sys.stderr))
    med = {k: harness.median(v) for k, v in s.items()}
    print(f"{clock_name} clock, {args.rounds} rounds x {args.steps} steps, torch "
          f"{torch.__version__}, 1 thread")
    for k, v in med.items():
        print(f"  {k:40s} {v * 1e3:8.3f} ms/step")
    off, on = med["record(python_rng=False)"], med["record()"]
    again = med["record(python_rng=False) again (control)"]
    print(f"  unused: record() / record(python_rng=False) = {on / off:.4f} "
          f"(control, the noise floor: {again / off:.4f})")
    aoff, aon = med["record(python_rng=False), augmented"], med["record(), augmented"]
    print(f"  augmented (5 Python/NumPy draws per step): ratio {aon / aoff:.4f}, "
          f"{(aon - aoff) / 5 * 1e6:.1f} us per draw recorded")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
