"""Run by ``bench_stable.bench_sharded`` under torchrun (gloo, CPU): the GPT-2-small-sized
model built on the meta device, sharded with FSDP2 (each block, then the root), given
memory, and initialised by its ``_init_weights``: plain (each rank draws its shard from
its own default generator, DTensor's way on CPU) and with ``stable_init`` (each rank
draws the blocks its shards touch). Rank 0 prints the slowest rank's times as JSON.

    torchrun --standalone --nproc-per-node 2 benchmarks/stable_ranks.py REPEATS QUICK
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import warnings

import torch
import torch.distributed as dist
from bench_stable import GPT2Config, GPT2LMHead
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard

import rngtrace


def main() -> None:
    repeats, quick = int(sys.argv[1]), sys.argv[2] == "1"
    c = GPT2Config(vocab=100, positions=16, dim=16, layers=1, heads=2) if quick else GPT2Config()
    warnings.filterwarnings("ignore")  # DTensor's CPU random ops warn at every call
    dist.init_process_group("gloo")
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    with torch.device("meta"):
        model = GPT2LMHead(c)
    for block in model.transformer.h:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    model.to_empty(device="cpu")

    def init(m: GPT2LMHead) -> None:
        m.apply(m._init_weights)

    times: dict[str, list[float]] = {"plain": [], "stable_init": []}
    for i in range(repeats + 1):  # the first round warms up
        for name, run in (("plain", lambda: init(model)),
                          ("stable_init", lambda: rngtrace.stable_init(model, 0, init=init))):
            dist.barrier()
            t = time.perf_counter()
            run()
            took = torch.tensor([time.perf_counter() - t])
            dist.all_reduce(took, op=dist.ReduceOp.MAX)  # the job waits for its slowest rank
            if i:
                times[name].append(float(took))
    if dist.get_rank() == 0:
        print(json.dumps({k: statistics.median(v) for k, v in times.items()}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
