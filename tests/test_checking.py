"""``rngtrace.check`` and ``rngtrace check`` on small real reproductions of the threads
each finding comes from (docs/check.md), in one process (DataLoader workers and
``rngtrace run`` aside); the ranks of a job are in test_checking_ranks.py, a compiled
recompute at the end (slow).
"""

from __future__ import annotations

import inspect
import os
import shutil
import textwrap
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from torch.utils.data import DataLoader, Dataset, DistributedSampler, TensorDataset

import helpers
import rngtrace
from rngtrace import Event, Log
from rngtrace.checking.common import restored, role
from rngtrace.cli import DIFFERENT


def _line(fn: Any, text: str) -> str:
    """The site the recorder names for the line of ``fn`` containing ``text``
    (``tests/test_checking.py:N``, relative to the working directory)."""
    lines, first = inspect.getsourcelines(fn)
    n = next(i for i, s in enumerate(lines) if text in s)
    return f"{os.path.relpath(__file__)}:{first + n}"


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.drop = nn.Dropout(0.5)
        self.out = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.lin(x)))

    def log_samples(self, x: torch.Tensor) -> torch.Tensor:
        """A logging hook of the model (a LightningModule's): a few samples to show."""
        return x[torch.randint(0, len(x), (2,))]


DATA = TensorDataset(torch.arange(16.0).reshape(4, 4))


def _step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor) -> None:
    model(x).sum().backward()
    opt.step()
    opt.zero_grad()


# -- repeated streams: a generator rewound ----------------------------------------------
def epochs(reseed_each_epoch: bool, set_epoch: bool) -> Log:
    """2 epochs of 2 steps; "reproducible epochs" reseed at each epoch's start, and a
    DistributedSampler left without set_epoch shuffles every epoch alike."""
    sampler = DistributedSampler(DATA, num_replicas=1, rank=0, seed=0)
    with rngtrace.record() as log:
        torch.manual_seed(0)
        model = Net()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(2):
            if reseed_each_epoch:
                torch.manual_seed(0)
            if set_epoch:
                sampler.set_epoch(epoch)
            for (x,) in DataLoader(DATA, batch_size=2, sampler=sampler):
                _step(model, opt, x)
    return log


def test_reseeding_every_epoch_and_a_sampler_without_set_epoch_repeat_streams():
    log = epochs(reseed_each_epoch=True, set_epoch=False)
    # 4 init draws; then per epoch: the loader's base seed (random_), the sampler's
    # randperm(4) on a generator of its own, one dropout mask per step (2 steps)
    assert [d.op.removeprefix("aten::") for d in log.draws] == ["uniform_"] * 4 + [
        "random_", "randperm", "bernoulli_", "bernoulli_"] * 2
    report = rngtrace.check(log)
    # masks repeat: an error; a shuffle repeats (outside modules): a warning
    assert [(f.kind, f.severity) for f in report] == [("repeated-stream", "error"),
                                                      ("repeated-stream", "warning")]
    masks, perms = report.findings
    # epoch 1's two masks start where epoch 0's did (draws 6 and 10, 7 and 11)
    assert [(e.index, e.state) for e in masks.evidence] == [
        (6, log.draws[6].state_before), (10, log.draws[6].state_before),
        (7, log.draws[7].state_before), (11, log.draws[7].state_before)]
    assert masks.summary == ("2 draws fill 2x4 tensors from the same default:cpu state "
                             "(draws 6, 10): drop (Dropout) get identical values; 1 more "
                             "such group")
    seed_site = _line(epochs, "            torch.manual_seed(0)")
    assert masks.why.startswith(f"torch.manual_seed(0) at {seed_site} set default:cpu back")
    # the sampler's new generator each epoch, seeded seed + epoch = 0 both times
    assert [(e.index, e.generator) for e in perms.evidence] == [
        (5, "generator:1"), (9, "generator:2")]
    assert perms.why.startswith("generator:1 and generator:2 were in the same state")


def test_a_clean_loop_repeats_nothing():
    assert len(rngtrace.check(epochs(reseed_each_epoch=False, set_epoch=True))) == 0


# -- recompute: activation checkpointing ------------------------------------------------
class Checkpointed(nn.Module):
    def __init__(self, preserve: bool) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([Net(), Net()])
        self.preserve = preserve

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = x + checkpoint(b, x, use_reentrant=False, preserve_rng_state=self.preserve)
        return x


class ReentrantCheckpoint(torch.autograd.Function):
    """A hand-written checkpoint, as DeepSpeed's: saves the CPU state in forward, sets it
    again to recompute in backward."""

    @staticmethod
    def forward(ctx: Any, fn: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.fn, ctx.state = fn, torch.get_rng_state()
        ctx.save_for_backward(x)
        with torch.no_grad():
            return fn(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        (x,) = ctx.saved_tensors
        x = x.detach().requires_grad_(True)
        now = torch.get_rng_state()
        torch.set_rng_state(ctx.state)
        with torch.enable_grad():
            y = ctx.fn(x)
        torch.set_rng_state(now)
        torch.autograd.backward(y, grad)
        return None, x.grad


def recompute(model: nn.Module, wrap: Any = None) -> Log:
    with rngtrace.record() as log:
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(2):
            x = torch.ones(2, 4, requires_grad=wrap is not None)
            y = model(x) if wrap is None else wrap(model, x)
            y.sum().backward()
            opt.step()
            opt.zero_grad()
    return log


def test_recompute_without_preserved_state_draws_fresh_masks():
    log = recompute(Checkpointed(preserve=False))
    report = rngtrace.check(log)
    [f] = report.findings
    assert (f.kind, f.severity) == ("recompute-differs", "error")
    # per step: 2 forward masks (blocks.0.drop, blocks.1.drop), then 2 recomputes in
    # backward (blocks.1 first), each from the state the stream had reached
    assert [(d.index, d.module, d.phase, d.replay) for d in log.draws] == [
        (0, "blocks.0.drop", "forward", False), (1, "blocks.1.drop", "forward", False),
        (2, "blocks.1.drop", "backward", True), (3, "blocks.0.drop", "backward", True),
        (4, "blocks.0.drop", "forward", False), (5, "blocks.1.drop", "forward", False),
        (6, "blocks.1.drop", "backward", True), (7, "blocks.0.drop", "backward", True)]
    assert [(e.role, e.index) for e in f.evidence] == [
        ("forward", 1), ("recompute", 2), ("forward", 0), ("recompute", 3),
        ("forward", 5), ("recompute", 6)]
    assert f.evidence[1].state == log.draws[1].state_after  # the stream went on
    assert f.summary.startswith("activation-checkpoint recompute of blocks.1.drop (Dropout), "
                                "blocks.0.drop (Dropout) draws from other states than its "
                                "forward (4 draws): nothing set the generator back")
    assert "preserve_rng_state=True" in f.fix


def test_recompute_that_replays_is_fine_eager_and_hand_written():
    assert len(rngtrace.check(recompute(Checkpointed(preserve=True)))) == 0
    log = recompute(Net(), wrap=ReentrantCheckpoint.apply)
    # forward (no grad) then the recompute in backward, from the state set back: per step
    assert [(d.phase, d.replay) for d in log.draws] == [("forward", False),
                                                        ("backward", False)] * 2
    assert log.draws[1].state_before == log.draws[0].state_before
    assert len(rngtrace.check(log)) == 0


# -- stray consumption: loading, evaluating, logging between seed and training ----------
def load_reference(state: dict) -> nn.Module:
    ref = Net()  # load_from_checkpoint builds the model, then loads the weights
    ref.load_state_dict(state)
    return ref


def evaluate(model: nn.Module, loader: DataLoader) -> None:
    model.eval()
    with torch.no_grad():
        for (x,) in loader:
            model(x)
    model.train()


def seeded_training(stray: bool) -> Log:
    with rngtrace.record() as log:
        torch.manual_seed(0)
        model = Net()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        data = torch.randn(4, 4)  # made here on purpose: data outside modules is not stray
        if stray:
            load_reference(model.state_dict())
            evaluate(model, DataLoader(DATA, batch_size=2))
            model.log_samples(data)
        for (x,) in DataLoader(TensorDataset(data), batch_size=2, shuffle=True):
            _step(model, opt, x)
    return log


def test_loading_evaluating_and_logging_before_training_are_stray():
    report = rngtrace.check(seeded_training(stray=True))
    [f] = report.findings
    assert (f.kind, f.severity) == ("stray-consumption", "warning")
    build = ", ".join(_line(Net.__init__, f"nn.Linear(4, {n})") for n in (4, 1))
    loop, sample = _line(evaluate, "for (x,) in"), _line(Net.log_samples, "randint")
    # draws 0-3 build the trained model; 4 the data; 5-8 the reference (Net#2); 9 the
    # evaluation loader's base seed; 10 the logged sample; 11-13 the training loader
    # (base seed, its sampler's seed, its randperm); 14 the first mask
    assert f.summary == (
        f"6 draws on default:cpu between torch.manual_seed(0) at "
        f"{_line(seeded_training, 'manual_seed')} and the first training step (draw 14 at "
        f"{_line(Net.forward, 'self.drop')}) come from other code: builds Net#2, which gets "
        f"no gradient (4 draws at {build}), iterates a DataLoader that is not the training "
        f"loop's (1 draw at {loop}), torch.randint in (root) (Net) (1 draw at {sample})")
    assert [e.index for e in f.evidence] == [5, 9, 10]


def test_a_training_that_only_builds_and_loads_its_data_is_not_stray():
    assert len(rngtrace.check(seeded_training(stray=False))) == 0


# -- unseeded: the program seeds torch, but not everything ------------------------------
def test_a_generator_never_seeded_while_others_are():
    torch.seed()  # as at a program's start: the default generator seeded by the OS
    with rngtrace.record() as log:
        torch.manual_seed(0)
        np.random.seed(0)
        torch.rand(2)
        np.random.rand(2)
        random_draw = __import__("random").random()  # random never seeded
    assert 0 <= random_draw < 1
    [f] = rngtrace.check(log).findings
    assert (f.kind, f.generators) == ("unseeded", ("python:random",))
    assert f.summary.startswith("python:random drew 1 time and was never seeded, while the "
                                "program seeds default:cpu (torch.manual_seed(0) at ")


def test_seeding_random_before_its_first_draw_is_seen():
    import random

    torch.seed()
    with rngtrace.record() as log:
        random.seed(0)  # before random's first draw in the window: a reseed event
        torch.manual_seed(0)
        random.random()
        torch.rand(2)
    assert [(e.generator, e.detail) for e in log.events] == [
        ("python:random", "random.seed(0)"), ("default:cpu", "torch.manual_seed(0)")]
    assert len(rngtrace.check(log)) == 0


UNSEEDED = textwrap.dedent("""\
    import numpy as np, torch
    from torch import nn
    model = nn.Linear(4, 4)          # built before the seed
    torch.manual_seed(0)
    noise = np.random.normal(size=3) # NumPy's generator is never seeded
    model(torch.randn(2, 4)).sum()
""")


@pytest.mark.slow
def test_rngtrace_run_then_check_finds_unseeded_generators(tmp_path):
    (tmp_path / "train.py").write_text(UNSEEDED)
    r = helpers.cli("run", "train.py", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = helpers.cli("check", "train.rngtrace.jsonl", cwd=tmp_path)
    assert r.returncode == DIFFERENT, r.stderr
    assert r.stdout.startswith("rngtrace check: train.rngtrace.jsonl: 2 findings (2 warnings)")
    text = " ".join(r.stdout.split())  # the report wraps its lines
    assert ("WARNING [unseeded] 2 draws on default:cpu filled parameters (weight, bias) "
            "before its first seeding (torch.manual_seed(0) at train.py:4)") in text
    assert ("WARNING [unseeded] numpy:global drew 1 time and was never seeded, while the "
            "program seeds default:cpu (torch.manual_seed(0) at train.py:4): at train.py:5"
            ) in text


# -- workers: generators copied into DataLoader workers ---------------------------------
class Crops(Dataset):
    """Random crops from a generator the Dataset holds: copied into each worker."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.tensor(self.rng.integers(0, 100, size=3))


class Jitter(Dataset):
    """Noise from NumPy's global generator, which torch seeds in each worker."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.tensor(np.random.rand(3))


def same_seed(worker_id: int) -> None:
    np.random.seed(0)  # a constant worker_init_fn: every worker alike again


def loaders(*made: DataLoader) -> Log:
    with rngtrace.record() as log:
        torch.manual_seed(0)
        for loader in made:
            for _ in loader:
                pass
    return log


@pytest.mark.slow
def test_workers_with_a_copied_generator_or_a_constant_worker_init_fn():
    log = loaders(DataLoader(Crops(), batch_size=2, num_workers=2),
                  DataLoader(Jitter(), batch_size=2, num_workers=2, worker_init_fn=same_seed))
    report = rngtrace.check(log)
    assert [(f.kind, f.generators) for f in report] == [
        ("copied-worker-stream", ("numpy:Generator#1",)),
        ("copied-worker-stream", ("numpy:global",))]
    copied, reseeded = report.findings
    # 4 samples in batches of 2: one fetch (one record of the held generator) per worker
    assert copied.summary == ("DataLoader workers 0, 1 drew identical streams from "
                              "numpy:Generator#1 (Crops.rng) (1 draw each): a generator "
                              "copied into every worker")
    assert [(e.worker, e.state) for e in copied.evidence] == [
        (0, copied.evidence[0].state), (1, copied.evidence[0].state)]
    site = _line(Jitter.__getitem__, "np.random.rand")
    assert reseeded.summary == ("DataLoader workers 0, 1 drew identical streams from "
                                f"numpy:global (2 draws each, at {site}): it was reseeded "
                                "alike in every worker")
    # torch's own per-worker seeding: nothing to report
    assert len(rngtrace.check(loaders(DataLoader(Jitter(), batch_size=2, num_workers=2)))) == 0


# -- events, restores, input ------------------------------------------------------------
@pytest.mark.parametrize(("detail", "expected"), [
    ("torch.manual_seed(0)", "seed"), ("torch.manual_seed(0) (state unchanged)", "seed"),
    ("torch.cuda.manual_seed_all(3)", "seed"), ("random.seed(0)", "seed"),
    ("numpy.random.seed(7)", "seed"), ("torch.seed()", "entropy"),
    ("random.seed(None)", "entropy"), ("random.seed()", "other"),  # a keyword seed is not shown
    ("torch.set_rng_state(<state of 5056 bytes>)", "restore"), ("random.setstate(<state>)",
                                                                 "restore"),
    ("numpy.random.set_state(<state>)", "restore"), ("something else", "other")])
def test_what_a_reseed_event_did(detail, expected):
    assert role(Event("reseed", "default:cpu", 0, None, detail)) == expected


def test_a_restore_undoes_the_draws_since_the_state_it_sets():
    # draws 0..3 on one generator; a restore before draw 3 puts back draw 1's state
    draws = [helpers.make_draw(i, state_before=s, state_after=t) for i, (s, t) in
             enumerate([("a", "b"), ("b", "c"), ("c", "d"), ("b", "c")])]
    log = Log(draws=draws, events=[Event("reseed", "default:cpu", 3, None,
                                         "torch.set_rng_state(<state of 5056 bytes>)")])
    assert restored(log) == {1, 2}  # what ran between the save and the restore


def test_bad_input_is_refused(tmp_path):
    log = epochs(reseed_each_epoch=False, set_epoch=True)
    light = Log(draws=log.draws, level="module")
    with pytest.raises(rngtrace.RngtraceError, match="recorded at module level"):
        rngtrace.check(light)
    a, b = Log(draws=log.draws, meta={"dist": {"rank": 0}}), Log(meta={"dist": {"rank": 0}})
    with pytest.raises(rngtrace.RngtraceError, match="two logs for rank 0: a and b"):
        rngtrace.check([a, b], labels=["a", "b"])
    with pytest.raises(rngtrace.RngtraceError, match="at least one log"):
        rngtrace.check([])


def test_logs_without_ranks_are_checked_one_by_one():
    report = rngtrace.check([seeded_training(False), seeded_training(False)])
    assert len(report) == 0 and report.logs == ("log 0", "log 1")
    assert report.notes == ("the logs have no rank in their headers: checked one by one, "
                            "not as the ranks of one job",)


# -- recompute, compiled: the partitioner recomputing dropout in backward ---------------
needs_cxx = pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                               reason="Inductor on CPU needs a C++ compiler")


@needs_cxx
@pytest.mark.slow
def test_compiled_backward_that_recomputes_dropout_draws_fresh_masks():
    import torch._functorch.config as functorch_config

    torch._dynamo.reset()
    try:
        with functorch_config.patch(activation_memory_budget=0.0), \
                rngtrace.record() as log:
            torch.manual_seed(0)
            model = Net()
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            compiled = torch.compile(model)
            for _ in range(2):
                _step(compiled, opt, torch.ones(2, 4))
    finally:
        torch._dynamo.reset()
    inside = [(d.module, d.phase, d.graph, d.consumed, d.replay) for d in log.draws
              if d.graph is not None]
    # per step: the forward graph's dropout node, and the backward graph's recompute of
    # it from seeds of its own (drawn: consumed, not a replay)
    assert inside == [("drop", "forward", "0/0:forward", True, False),
                      ("drop", "backward", "0/0:backward", True, False)] * 2
    [f] = rngtrace.check(log).findings
    assert (f.kind, f.severity) == ("recompute-differs", "error")
    assert f.summary == ("compiled backward graph 0/0:backward draws fresh random numbers for "
                         "drop (Dropout) (2 draws) instead of replaying the forward's")
    assert [(e.role, e.phase, e.step) for e in f.evidence] == [
        ("forward", "forward", 0), ("recompute", "backward", 0),
        ("forward", "forward", 1), ("recompute", "backward", 1)]
