"""Cost of ``rngtrace.stable_init`` against plain construction, GPT-2-small sized.

The model is defined here (nothing is downloaded) and initialised the way Hugging Face
``GPT2LMHeadModel`` is: each layer draws in its constructor, ``post_init`` draws every
weight again through ``apply(_init_weights)`` (with the scaled residual projections),
and the LM head's own weight is drawn, then replaced by the tied embedding. 124,439,808
parameters (12 layers, d=768, vocabulary 50257, 1024 positions).

Run ``python benchmarks/bench_stable.py``; :func:`stable_rows` gives the benchmark
table's rows: the factory's build (:func:`bench_stable_init`), a model built on the meta
device and initialised in place (:func:`bench_inplace`), and the same on two ranks
sharded with FSDP2 (:func:`bench_sharded`, a torchrun job on CPU).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import torch
from harness import timed  # benchmarks/ is on sys.path: run as a script or from bench.py
from torch import nn


@dataclass(frozen=True)
class GPT2Config:
    vocab: int = 50257
    positions: int = 1024
    dim: int = 768
    layers: int = 12
    heads: int = 12
    std: float = 0.02


class Attention(nn.Module):
    def __init__(self, c: GPT2Config) -> None:
        super().__init__()
        self.c_attn = nn.Linear(c.dim, 3 * c.dim)
        self.c_proj = nn.Linear(c.dim, c.dim)
        self.attn_dropout = nn.Dropout(0.1)
        self.resid_dropout = nn.Dropout(0.1)


class MLP(nn.Module):
    def __init__(self, c: GPT2Config) -> None:
        super().__init__()
        self.c_fc = nn.Linear(c.dim, 4 * c.dim)
        self.c_proj = nn.Linear(4 * c.dim, c.dim)
        self.act = nn.GELU()
        self.dropout = nn.Dropout(0.1)


class Block(nn.Module):
    def __init__(self, c: GPT2Config) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(c.dim)
        self.attn = Attention(c)
        self.ln_2 = nn.LayerNorm(c.dim)
        self.mlp = MLP(c)


class PreTrained(nn.Module):
    """The Hugging Face pattern: ``post_init`` re-draws every weight through ``apply``,
    where ``self`` is the model and the module being initialised is an argument."""

    config: GPT2Config

    def post_init(self) -> None:
        self.apply(self._init_weights)
        self.tie_weights()

    def tie_weights(self) -> None:
        pass

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.std
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=std)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)
        # GPT-2's scaled init of the residual projections, as Hugging Face writes it.
        for name, p in module.named_parameters():
            if name == "c_proj.weight":
                p.data.normal_(mean=0.0, std=std / math.sqrt(2 * self.config.layers))


class GPT2Model(PreTrained):
    def __init__(self, c: GPT2Config) -> None:
        super().__init__()
        self.config = c
        self.wte = nn.Embedding(c.vocab, c.dim)
        self.wpe = nn.Embedding(c.positions, c.dim)
        self.drop = nn.Dropout(0.1)
        self.h = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.ln_f = nn.LayerNorm(c.dim)
        self.post_init()


class GPT2LMHead(PreTrained):
    def __init__(self, c: GPT2Config | None = None) -> None:
        super().__init__()
        c = c or GPT2Config()
        self.config = c
        self.transformer = GPT2Model(c)
        self.lm_head = nn.Linear(c.dim, c.vocab, bias=False)
        self.post_init()

    def tie_weights(self) -> None:
        self.lm_head.weight = self.transformer.wte.weight


def bench_stable_init(repeats: int = 3, config: GPT2Config | None = None) -> tuple[float, float]:
    """Median seconds of (plain construction, ``stable_init``) of :class:`GPT2LMHead`.

    The two are interleaved so that both see the same machine load; the first of each
    is a warm-up and is not counted.
    """
    from rngtrace import stable_init

    c = config or GPT2Config()
    plain, stable = [], []
    for i in range(repeats + 1):
        p = timed(lambda: GPT2LMHead(c), time.perf_counter)
        s = timed(lambda: stable_init(lambda: GPT2LMHead(c), seed=0), time.perf_counter)
        if i:
            plain.append(p)
            stable.append(s)
    return statistics.median(plain), statistics.median(stable)


def _init_weights(m: GPT2LMHead) -> None:
    m.apply(m._init_weights)


def bench_inplace(repeats: int = 3, config: GPT2Config | None = None) -> tuple[float, float]:
    """Median seconds of initialising a meta-built :class:`GPT2LMHead` given memory
    (``to_empty``) with its ``_init_weights``: plain, and with ``stable_init(model)``."""
    from rngtrace import stable_init

    with torch.device("meta"):
        model = GPT2LMHead(config or GPT2Config())
    model.to_empty(device="cpu")
    plain, stable = [], []
    for i in range(repeats + 1):
        p = timed(lambda: _init_weights(model), time.perf_counter)
        s = timed(lambda: stable_init(model, seed=0, init=_init_weights), time.perf_counter)
        if i:
            plain.append(p)
            stable.append(s)
    return statistics.median(plain), statistics.median(stable)


def bench_sharded(repeats: int = 3, quick: bool = False, ranks: int = 2) -> dict[str, float]:
    """Median seconds (of the slowest rank) of the same initialisation on ``ranks``
    gloo processes, the model sharded with FSDP2: ``{"plain": ..., "stable_init": ...}``."""
    here = os.path.dirname(os.path.abspath(__file__))
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()),
           "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc-per-node", str(ranks), os.path.join(here, "stable_ranks.py"),
                        str(repeats), "1" if quick else "0"],
                       capture_output=True, text=True, env=env, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"the sharded job failed: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def stable_rows(quick: bool) -> list[tuple[str, float | None, float | None, int]]:
    """The benchmark table's rows: (what, median seconds, ratio to the plain row above
    it or None, samples). ``quick``: tiny sizes, and no sharded job (its row is None)."""
    c = GPT2Config(vocab=100, positions=16, dim=16, layers=1, heads=2) if quick else None
    n = 1 if quick else 3
    plain, stable = bench_stable_init(repeats=n, config=c)
    meta, meta_stable = bench_inplace(repeats=n, config=c)
    sharded = {"plain": None, "stable_init": None} if quick else bench_sharded(repeats=n)
    ranks = sharded["stable_init"], sharded["plain"]
    return [("plain construction", plain, None, n),
            ("stable_init", stable, stable / plain, n),
            ("meta build, to_empty, then _init_weights", meta, None, n),
            ("the same, stable_init(model, init=...)", meta_stable, meta_stable / meta, n),
            ("the same on 2 ranks, FSDP2: _init_weights", ranks[1], None, n),
            ("the same on 2 ranks, FSDP2: stable_init", ranks[0],
             ranks[0] / ranks[1] if ranks[0] and ranks[1] else None, n)]


if __name__ == "__main__":
    torch.manual_seed(0)
    count = sum(p.numel() for p in GPT2LMHead().parameters())
    print(f"GPT-2-small-sized model ({count:,} parameters), CPU, torch {torch.__version__}")
    for what, seconds, ratio, _ in stable_rows(quick="--quick" in sys.argv):
        print(f"{what:<46} " + ("not run with --quick" if seconds is None else
                                f"{seconds:8.3f} s (median)")
              + (f", {ratio:.2f}x the line above" if ratio is not None else ""))
