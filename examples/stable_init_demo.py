"""The seed story's remedy: the same parameters whatever the tidy-up did.

Builds the story's four TinyViT variants twice, with the global stream and with
``rngtrace.stable_init``, and counts the shared parameters that differ from the original.

    python examples/stable_init_demo.py
"""

from __future__ import annotations

import torch
from story_models import VARIANTS, TinyViT

import rngtrace


def differing(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> int:
    return sum(not torch.equal(a[k], b[k]) for k in a if k in b)


def main() -> None:
    plain, stable = {}, {}
    for v in VARIANTS:
        torch.manual_seed(0)
        plain[v] = TinyViT(variant=v).state_dict()
        stable[v] = rngtrace.stable_init(lambda v=v: TinyViT(variant=v), seed=0).state_dict()
    n = len(plain["original"])
    print(f"shared parameters that differ from the original's ({n} in all):")
    print(f"  {'variant':<14} {'torch.manual_seed':>18} {'stable_init':>12}")
    for v in VARIANTS[1:]:
        print(f"  {v:<14} {differing(plain['original'], plain[v]):>18} "
              f"{differing(stable['original'], stable[v]):>12}")


if __name__ == "__main__":
    main()
