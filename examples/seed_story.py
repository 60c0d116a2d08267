"""The seed story, end to end: why the tidy copy of a project never reproduces.

Two copies of a small vision transformer, same seed, same data. The tidy copy defines
one extra ``nn.Linear`` in its attention block that it never uses. Run with
``make demo`` (or ``python examples/seed_story.py``).
"""

from __future__ import annotations

import os
import sys

import story_models as sm  # next to this file: python puts its folder on sys.path
import torch

import rngtrace

OUT = os.environ.get("RNGTRACE_DEMO_OUT") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "out")


def run(variant: str) -> tuple[list[float], rngtrace.Log]:
    """Build and train for two steps from seed 0, recording the random draws."""
    torch.manual_seed(0)
    with rngtrace.record(steps=2) as log:
        model = sm.TinyViT(variant=variant)
        losses = sm.train(model, steps=2)
    return losses, log


def fmt(losses: list[float]) -> str:
    return ", ".join(f"{x:.6f}" for x in losses)


def main() -> int:
    original_losses, original = run("original")
    tidy_losses, tidy = run("unused_linear")
    print("1. Same seed, same data, two copies of the project:")
    print(f"   original   first losses {fmt(original_losses)}")
    print(f"   tidy copy  first losses {fmt(tidy_losses)}")
    print()
    print("2. What the tidy copy drew, module by module (rngtrace.record):")
    print()
    print("   " + tidy.summary().replace("\n", "\n   "))
    print()
    print("3. Where the two streams part (rngtrace.diff):")
    print()
    diff = rngtrace.diff(original, tidy, labels=("original", "tidy"))
    print("   " + diff.report().replace("\n", "\n   "))
    print()
    print("4. The remedy (rngtrace.stable_init): initialisation keyed by parameter name.")
    losses, logs, models = [], [], []
    for variant in ("original", "unused_linear"):
        torch.manual_seed(0)  # stable_init leaves the global generator alone: same shuffling
        with rngtrace.record(steps=2) as log:
            model = rngtrace.stable_init(lambda v=variant: sm.TinyViT(variant=v), seed=0)
            losses.append(sm.train(model, steps=2))
        logs.append(log)
        models.append(model.state_dict())
    sa, sb = models
    shared = [k for k in sa if k in sb]
    same = sum(torch.equal(sa[k], sb[k]) for k in shared)
    print(f"   {same} of {len(shared)} shared parameters are bit-identical between the copies;")
    print(f"   the tidy copy's extra ones: {', '.join(k for k in sb if k not in sa)}")
    print(f"   original   first losses {fmt(losses[0])}")
    print(f"   tidy copy  first losses {fmt(losses[1])}")
    print("   Recorded, each parameter draws from a stream of its own (stable:<name>@<seed>);")
    print("   rngtrace.diff pairs the streams by name:")
    print()
    remedy = rngtrace.diff(logs[0], logs[1], labels=("original", "tidy"))
    head = remedy.report(width=97).split("\n\nUnused consumers")[0]
    print("\n".join(("   " + line).rstrip() for line in head.splitlines()))
    print()
    os.makedirs(OUT, exist_ok=True)
    paths = [os.path.join(OUT, f"{name}.rngtrace.jsonl") for name in ("original", "tidy")]
    rngtrace.save(original, paths[0])
    rngtrace.save(tidy, paths[1])
    rel = [os.path.relpath(p) for p in paths]
    print("5. The two logs are saved; try the command line on them:")
    print(f"   {_activate()}rngtrace show {rel[1]} --phase init")
    print(f"   rngtrace diff {rel[0]} {rel[1]}")
    print(f"   rngtrace dot {rel[0]} {rel[1]} -o out/story_diff.svg")
    return 0 if losses[0] == losses[1] and remedy.agrees else 1


def _activate() -> str:
    """How to put ``rngtrace`` on the PATH, when it is not there yet: the first command
    line, then the others are plain ``rngtrace ...``."""
    import shutil

    bindir = os.path.dirname(sys.executable)
    if (shutil.which("rngtrace") == os.path.join(bindir, "rngtrace")
            or not os.path.exists(os.path.join(bindir, "activate"))):
        return ""
    return f"source {os.path.relpath(bindir)}/activate   # puts rngtrace on your PATH\n   "


if __name__ == "__main__":
    sys.exit(main())
