"""One keyed draw of stable_init: big element-wise draws in blocks, ordinals, stream names."""

from __future__ import annotations

import torch
from torch import nn

import rngtrace
from rngtrace import stable_init
from rngtrace.stable.draws import BLOCK
from rngtrace.stable.streams import keyed_generator, stream_name

CPU = torch.device("cpu")


def _normal_blocks(key: str, n: int | str, total: int, seed: int = 0) -> torch.Tensor:
    """What the contract says a ``normal_(0, 1)`` of ``total`` elements into ``key``
    holds: block j is ``normal_`` into ``min(BLOCK, rest)`` fresh elements from the
    generator of (seed, key, n, j)."""
    parts = []
    for j, start in enumerate(range(0, total, BLOCK)):
        g = keyed_generator(seed, key, n, CPU, j)
        parts.append(torch.empty(min(BLOCK, total - start)).normal_(generator=g))
    return torch.cat(parts)


class Big(nn.Module):
    """Three big draws: in place into a parameter, a factory, and a transposed view."""

    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.empty(BLOCK // 64 + 1, 64))  # BLOCK + 64 values
        nn.init.normal_(self.table)
        self.noise = nn.Parameter(torch.randn(BLOCK + 3))
        self.cols = nn.Parameter(torch.empty(3, 5))
        nn.init.normal_(self.cols.t())  # not contiguous: drawn in the view's order


def test_a_big_draw_is_made_in_blocks_each_from_its_own_stream():
    m = stable_init(Big, seed=0)
    # BLOCK + 64 values: one block of BLOCK (262,144) and one of 64
    assert torch.equal(m.table.detach().view(-1), _normal_blocks("table", 0, BLOCK + 64))
    # randn is normal_(0, 1) on a fresh tensor, so a big one is drawn the same way
    assert torch.equal(m.noise.detach(), _normal_blocks("noise", 0, BLOCK + 3))
    # one block, but a view that is not contiguous: its elements in row-major order
    assert torch.equal(m.cols.detach().t().reshape(-1), _normal_blocks("cols", 0, 15))


def test_one_block_is_the_op_itself_on_the_draws_stream():
    """A draw of one block keeps the values it had before blocks existed."""
    m = stable_init(lambda: nn.Linear(3, 2), seed=4)
    g = keyed_generator(4, "bias", 0, CPU)
    bound = 1 / 3 ** 0.5
    assert torch.equal(m.bias.detach(), torch.empty(2).uniform_(-bound, bound, generator=g))


def test_recorded_blocks_and_lent_draws_are_named_by_key_ordinal_and_block():
    class Resampled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.empty(64, 64))
            torch.manual_seed(0)  # restored by stable_init: only its own streams draw
            nn.init.trunc_normal_(self.w, std=1.0, a=-0.5, b=0.5)  # resamples
            nn.init.normal_(self.w)  # the key's second draw into the tensor itself

    with rngtrace.record() as log:
        m = stable_init(Resampled, seed=0)
    names = [d.generator for d in log.draws]
    # the first draw into w (ordinal 0); the resamples lent by w after it (1.1, 1.2 ...);
    # the second draw into w (ordinal 1) whatever the number of resamples
    rounds = len(names) - 2
    assert rounds > 0
    assert names == ["stable:w@0", *(f"stable:w@0#1.{m}" for m in range(1, rounds + 1)),
                     "stable:w@0#1"]
    assert torch.equal(m.w.detach(), torch.empty(64, 64).normal_(
        generator=keyed_generator(0, "w", 1, CPU)))
    with rngtrace.record() as log:
        stable_init(Big, seed=0)
    table = [(d.generator, d.target, d.numel) for d in log.draws if d.target == "table"]
    assert table == [("stable:table@0", "table", BLOCK), ("stable:table@0/1", "table", 64)]


def test_stream_names():
    assert stream_name(0, "h.0.attn.c_attn.weight", 0) == "stable:h.0.attn.c_attn.weight@0"
    assert stream_name(3, "wte.weight", 1, 2) == "stable:wte.weight@3#1/2"
    assert stream_name(0, "lm_head.weight~0", "0.1") == "stable:lm_head.weight~0@0#0.1"


def test_the_same_name_given_twice_in_a_window_is_told_apart():
    """Two models built with the same seed in one window: the second's streams get (2)."""
    with rngtrace.record() as log:
        stable_init(lambda: nn.Linear(2, 2), seed=0)
        stable_init(lambda: nn.Linear(2, 2), seed=0)
    assert [d.generator for d in log.draws] == [
        "stable:weight@0", "stable:bias@0", "stable:weight@0(2)", "stable:bias@0(2)"]
