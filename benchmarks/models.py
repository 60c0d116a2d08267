"""The small transformer whose training step the benchmarks time (nothing downloaded).

A GPT-style decoder with dropout in the embedding, the attention weights, the residual
branches and the MLP, so that every step draws random numbers, trained with AdamW on
a fixed batch drawn from its own generator (the batch never moves the global one).
The GPT-2-small-sized model for the construction benchmarks is ``bench_stable.GPT2LMHead``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class StepConfig:
    vocab: int = 512
    seq: int = 64
    dim: int = 128
    layers: int = 2
    heads: int = 4
    batch: int = 8
    dropout: float = 0.1


QUICK = StepConfig(vocab=64, seq=8, dim=16, layers=1, heads=2, batch=2)


class SelfAttention(nn.Module):
    def __init__(self, c: StepConfig) -> None:
        super().__init__()
        self.heads = c.heads
        self.qkv = nn.Linear(c.dim, 3 * c.dim)
        self.proj = nn.Linear(c.dim, c.dim)
        self.attn_drop = nn.Dropout(c.dropout)
        self.resid_drop = nn.Dropout(c.dropout)
        mask = torch.tril(torch.ones(c.seq, c.seq, dtype=torch.bool))
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(
            2, 0, 3, 1, 4)
        att = (q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5
        att = att.masked_fill(~self.mask[:n, :n], float("-inf")).softmax(dim=-1)
        y = (self.attn_drop(att) @ v).transpose(1, 2).reshape(b, n, d)
        return self.resid_drop(self.proj(y))


class Block(nn.Module):
    def __init__(self, c: StepConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(c.dim)
        self.attn = SelfAttention(c)
        self.ln_2 = nn.LayerNorm(c.dim)
        self.mlp = nn.Sequential(nn.Linear(c.dim, 4 * c.dim), nn.GELU(),
                                 nn.Linear(4 * c.dim, c.dim), nn.Dropout(c.dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class SmallGPT(nn.Module):
    def __init__(self, c: StepConfig) -> None:
        super().__init__()
        self.wte = nn.Embedding(c.vocab, c.dim)
        self.wpe = nn.Embedding(c.seq, c.dim)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.ln_f = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, c.vocab, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln_f(x))


class Trainer:
    """A model, its optimizer and a fixed batch; ``step()`` is one training step."""

    def __init__(self, c: StepConfig, device: str = "cpu") -> None:
        self.model = SmallGPT(c).to(device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(1234)
        data = torch.randint(0, c.vocab, (c.batch, c.seq + 1), generator=g).to(device)
        self.x, self.y = data[:, :-1], data[:, 1:]
        self.vocab = c.vocab

    def step(self) -> None:
        logits = self.model(self.x)
        loss = nn.functional.cross_entropy(logits.reshape(-1, self.vocab),
                                           self.y.reshape(-1))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


@dataclass(frozen=True)
class EncoderConfig:
    """``nn.TransformerEncoder`` as PyTorch ships it: a step of about 2-3 ms on one core,
    where a recorder's fixed costs per draw and per module call show most."""

    dim: int = 64
    heads: int = 4
    ff: int = 128
    layers: int = 2
    batch: int = 8
    seq: int = 16
    dropout: float = 0.1


class EncoderTrainer:
    """A 2-layer ``nn.TransformerEncoder`` (batch_first, dropout), SGD on a fixed batch
    drawn from its own generator; ``step()`` is one training step."""

    def __init__(self, c: EncoderConfig, device: str = "cpu") -> None:
        layer = nn.TransformerEncoderLayer(c.dim, c.heads, dim_feedforward=c.ff,
                                           dropout=c.dropout, batch_first=True)
        self.model = nn.TransformerEncoder(layer, c.layers,
                                           enable_nested_tensor=False).to(device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(1234)
        self.x = torch.randn(c.batch, c.seq, c.dim, generator=g).to(device)

    def step(self) -> None:
        loss = self.model(self.x).pow(2).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
