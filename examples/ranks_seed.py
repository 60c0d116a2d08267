"""Two ranks seeded with `seed + rank` before the model is built: each trains another
initialisation. Run under torchrun (CPU, gloo), then compare the ranks' logs:

    torchrun --standalone --nproc-per-node 2 -m rngtrace run examples/ranks_seed.py
    rngtrace ranks ranks_seed.rank0.rngtrace.jsonl ranks_seed.rank1.rngtrace.jsonl
"""
import torch
import torch.distributed as dist
from torch import nn

dist.init_process_group("gloo")
torch.manual_seed(0 + dist.get_rank())  # the bug: seed the model alike on every rank
model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 2))
model(torch.ones(3, 4)).sum().backward()
dist.destroy_process_group()
