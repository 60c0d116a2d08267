"""Build the pictures the README shows, from the story's example (``make figures``).

docs/story_diff.svg: TinyViT "original" against "unused_linear" (one unused
``nn.Linear`` per attention block), each built and trained for two steps under
``rngtrace.record()`` from ``torch.manual_seed(0)``; the picture of their diff.
Needs Graphviz's ``dot`` program.

    python examples/make_figures.py [OUT_DIR]
"""

from __future__ import annotations

import os
import sys

import story_models
import torch

import rngtrace
from rngtrace.graph import save

HERE = os.path.dirname(os.path.abspath(__file__))


def record(variant: str, steps: int = 2) -> rngtrace.Log:
    torch.manual_seed(0)
    with rngtrace.record() as log:
        story_models.train(story_models.TinyViT(variant=variant), steps)
    return log


def main(out_dir: str) -> int:
    os.makedirs(out_dir, exist_ok=True)
    diff = rngtrace.diff(record("original"), record("unused_linear"),
                         labels=("original", "unused_linear"))
    try:
        path = save(diff, os.path.join(out_dir, "story_diff.svg"))
    except rngtrace.RngtraceError as e:
        print(f"make_figures: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "docs")))
