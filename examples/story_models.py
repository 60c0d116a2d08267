"""The models of the seed story (see seed_story.py), shared by the demo and the tests.

A small vision-transformer-like network, in the variants a tidy-up produces: each
variant computes the same function as the original but draws from the global
generator a different number of times or in a different order while it is built.
"""

from __future__ import annotations

import torch
from torch import nn

VARIANTS = ("original", "unused_linear", "unused_gamma", "reordered")


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, variant: str = "original") -> None:
        super().__init__()
        self.num_heads = num_heads
        if variant == "reordered":  # the same layers, defined in another order
            self.proj = nn.Linear(dim, dim)
            self.qkv = nn.Linear(dim, 3 * dim)
        else:
            self.qkv = nn.Linear(dim, 3 * dim)
            self.proj = nn.Linear(dim, dim)
        if variant == "unused_linear":  # defined, never called in forward
            self.linear = nn.Linear(dim, dim)
        if variant == "unused_gamma":  # an unused parameter, as in the story
            self.gamma = nn.Parameter(torch.randn((1, self.num_heads, 1, 1)))
        self.attn_drop = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        h = self.num_heads
        q, k, v = self.qkv(x).reshape(b, n, 3, h, c // h).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) * (c // h) ** -0.5
        attn = self.attn_drop(attn.softmax(dim=-1))
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, variant: str = "original") -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads, variant)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    def __init__(self, dim: int = 16, depth: int = 2, num_heads: int = 2,
                 num_classes: int = 3, variant: str = "original") -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}")
        self.embed = nn.Linear(8, dim)
        self.pos = nn.Parameter(torch.zeros(1, 4, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(Block(dim, num_heads, variant) for _ in range(depth))
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x) + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.head(x.mean(dim=1))


def dataset(n: int = 32) -> torch.utils.data.TensorDataset:
    """Synthetic data, drawn from its own generator so that it never moves the global one."""
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(n, 4, 8, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    return torch.utils.data.TensorDataset(x, y)


def train(model: nn.Module, steps: int = 2, batch_size: int = 8) -> list[float]:
    """A few steps of SGD with a shuffled DataLoader; returns the losses."""
    loader = torch.utils.data.DataLoader(dataset(), batch_size=batch_size, shuffle=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for x, y in loader:
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if len(losses) == steps:
            break
    return losses
