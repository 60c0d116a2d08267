"""Python's random and NumPy in the log: interception, attribution, boundaries, transparency."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
import torch
from torch import nn

import rngtrace
from rngtrace.recording.streams import digests, pypatches, pystreams


class Augment(nn.Module):
    """An augmentation module drawing from Python's random and NumPy's global generator."""

    def forward(self, x):
        if random.random() < 0.5:  # one value from python:random
            x = x.flip(-1)
        noise = np.random.normal(0.0, 0.1, size=x.shape[-1])  # 4 values from numpy:global
        return x + torch.from_numpy(noise).float()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.aug = Augment()
        self.lin = nn.Linear(4, 2)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(self.lin(self.aug(x)))


def seed_all():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def train(steps, record=None):
    """A few steps; returns the log (or None) and everything the run computed."""
    seed_all()
    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    outs = []
    ctx = rngtrace.record(**record) if record is not None else None
    log = ctx.__enter__() if ctx is not None else None
    try:
        for _ in range(steps):
            y = net(torch.ones(3, 4))
            y.sum().backward()
            opt.step()
            outs.append(y.detach().clone())
            outs.append(random.random())  # drawn between steps: outside any module
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)
    state = (random.getstate(), np.random.get_state(legacy=False)["state"]["key"].tolist(),
             torch.get_rng_state(), [p.detach().clone() for p in net.parameters()])
    return log, outs, state


def test_augmentation_draws_are_logged_with_module_generator_and_count():
    log, _, _ = train(2, {})
    py = [d for d in log.draws if d.generator.startswith(("python:", "numpy:"))]
    # per step: random.random + np.random.normal in aug, random.random outside = 3; x2 steps
    assert [(d.op, d.generator, d.module, d.numel, d.step) for d in py] == [
        ("random.random", "python:random", "aug", 1, 0),
        ("numpy.random.normal", "numpy:global", "aug", 4, 0),
        ("random.random", "python:random", None, 1, 1),  # after the step: step 1
        ("random.random", "python:random", "aug", 1, 1),
        ("numpy.random.normal", "numpy:global", "aug", 4, 1),
        ("random.random", "python:random", None, 1, 2),
    ]
    aug = py[1]
    assert aug.module_type == "Augment" and aug.model == "Net" and aug.phase == "forward"
    assert aug.shape == (4,) and aug.dtype == "float64"
    assert aug.args == {"a0": 0.0, "a1": 0.1, "size": 4}
    line = Augment.forward.__code__.co_firstlineno + 3  # the np.random.normal line
    assert aug.site.endswith(f"test_pystreams.py:{line}") and "np.random.normal" in aug.code
    # the states chain: each draw starts where the previous one on its stream ended
    for s in ("python:random", "numpy:global"):
        chain = [d for d in py if d.generator == s]
        assert all(x.state_after == y.state_before for x, y in itertools.pairwise(chain))
        assert all(d.consumed and d.state_before != d.state_after for d in chain)
    # torch's own draws are still there, in between: 1 dropout per step
    assert [d.op for d in log.draws if d.generator == "default:cpu"] == \
        ["aten::bernoulli_"] * 2  # the net is built before the window
    assert {"python:random", "numpy:global"} <= set(log.generators)


def test_recording_is_transparent_and_leaves_no_patch():
    random_attrs = {n: getattr(random, n) for n in ("random", "shuffle", "seed", "gauss")}
    np_attrs = {n: getattr(np.random, n) for n in ("normal", "seed", "default_rng")}
    class_attrs = dict(random.Random.__dict__)
    _, plain, plain_state = train(2)
    _, recorded, recorded_state = train(2, {})
    for a, b in zip(plain, recorded, strict=True):
        assert torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b
    assert plain_state[0] == recorded_state[0] and plain_state[1] == recorded_state[1]
    assert torch.equal(plain_state[2], recorded_state[2])
    assert all(torch.equal(a, b) for a, b in zip(plain_state[3], recorded_state[3], strict=True))
    assert {n: getattr(random, n) for n in random_attrs} == random_attrs
    assert {n: getattr(np.random, n) for n in np_attrs} == np_attrs
    assert dict(random.Random.__dict__) == class_attrs
    assert pystreams.current() is None


def test_python_rng_false_records_no_python_or_numpy_draw():
    log, _, _ = train(1, {"python_rng": False})
    assert {d.generator for d in log.draws} == {"default:cpu"}


def test_random_instances_are_numbered_and_shuffle_counts_its_sequence():
    a, b = random.Random(1), random.Random(2)
    with rngtrace.record() as log:
        b.random()
        a.shuffle(list(range(7)))
        b.sample(range(10), 3)
        random.SystemRandom().random()  # not reproducible: left alone
    assert [(d.op, d.generator, d.numel) for d in log.draws] == [
        ("Random.random", "python:Random#1", 1),
        ("Random.shuffle", "python:Random#2", 7),
        ("Random.sample", "python:Random#1", 3),  # 3 values; its inner draws are one call
    ]


def test_seeding_inside_the_window_is_a_reseed_event():
    with rngtrace.record() as log:
        random.random()
        random.seed(5)
        np.random.seed(7)
        random.random()
    assert [(e.kind, e.generator, e.detail, e.before) for e in log.events] == [
        ("reseed", "python:random", "random.seed(5)", 1),
        ("reseed", "numpy:global", "numpy.random.seed(7)", 1),
    ]


class Jitter(nn.Module):
    def __init__(self):
        super().__init__()
        self.rng = np.random.default_rng(3)  # made before the window: found by the scan

    def forward(self, x):
        return x + float(self.rng.normal())


def test_numpy_generator_is_read_at_module_boundaries_and_counts_words():
    m = nn.Sequential(Jitter(), nn.Linear(2, 2))
    with rngtrace.record() as log:
        m(torch.ones(2))
        g = np.random.default_rng(0)
        g.random(5)  # outside any module: charged at the next boundary, the window's end
    gen = [d for d in log.draws if d.op == "numpy.Generator"]
    # Generator.normal and .random(5) use one 64-bit word per value (PCG64): 1, then 5
    assert [(d.generator, d.module, d.module_type, d.numel, d.args) for d in gen] == [
        ("numpy:Generator#1", "0", "Jitter", 1, {"held_by": "Jitter.rng"}),
        ("numpy:Generator#2", None, None, 5, {}),
    ]
    assert gen[0].state_before == digests.np_digest(np.random.default_rng(3)
                                                      .bit_generator.state)


def test_pcg64_words_is_the_number_of_outputs():
    g = np.random.default_rng(11)
    s0 = g.bit_generator.state
    g.random(1000)
    g.integers(0, 2**40, size=17)  # 64-bit draws: one word each
    assert digests.pcg64_words(s0, g.bit_generator.state) == 1017
    assert digests.pcg64_words(s0, s0) == 0
    other = np.random.Generator(np.random.MT19937(0)).bit_generator.state
    assert digests.pcg64_words(other, other) is None


def test_a_patch_replaced_by_other_code_is_left_in_place_with_a_warning():
    window = rngtrace.record()
    with pytest.warns(RuntimeWarning, match="random.gauss was replaced"), window:
        mine = random.gauss
        random.gauss = lambda *a: 0.0  # other code patches on top of ours
    assert random.gauss is not mine and random.gauss() == 0.0
    random.gauss = random._inst.gauss  # what the module had before both


def test_install_failure_rolls_back(monkeypatch):
    before = dict(random.Random.__dict__), random.random, np.random.normal

    def boom(me, patches, np_module):
        raise RuntimeError("boom")

    monkeypatch.setattr(pypatches, "_install_numpy", boom)
    with pytest.raises(RuntimeError, match="boom"), rngtrace.record():
        pass
    assert (dict(random.Random.__dict__), random.random, np.random.normal) == before
    monkeypatch.undo()
    with rngtrace.record() as log:  # the window was released
        pass
    assert log.complete


def test_python_draws_round_trip_through_a_file(tmp_path):
    with rngtrace.record() as log:
        Augment()(torch.ones(1, 4))
    log.save(tmp_path / "run.jsonl")
    back = rngtrace.load(tmp_path / "run.jsonl")
    assert back.draws == log.draws and len(back.draws) == 2
    with rngtrace.record(path=tmp_path / "streamed.jsonl"):
        Augment()(torch.ones(1, 4))
    streamed = rngtrace.load(tmp_path / "streamed.jsonl")
    assert [(d.op, d.generator, d.numel) for d in streamed.draws] == [
        ("random.random", "python:random", 1), ("numpy.random.normal", "numpy:global", 4)]


def test_light_mode_records_python_and_numpy_draws_too():
    net = Net()
    with rngtrace.record(level="module") as log:
        net(torch.ones(3, 4))
        random.random()
    rows = [(d.op, d.generator, d.module, d.numel) for d in log.draws]
    # the light records (one per module call that moved a torch generator: the dropout)
    # and the Python/NumPy draws, in order: aug's two draws come before drop's record
    assert rows == [("random.random", "python:random", "aug", 1),
                    ("numpy.random.normal", "numpy:global", "aug", 4),
                    ("module", "default:cpu", "drop", 0),
                    ("random.random", "python:random", None, 1)]
    assert [d.index for d in log.draws] == [0, 1, 2, 3]
    with rngtrace.record(level="module", python_rng=False) as log:
        net(torch.ones(3, 4))
    assert [d.generator for d in log.draws] == ["default:cpu"]


def test_draws_of_the_standard_library_and_of_imports_are_not_the_programs(tmp_path):
    import importlib
    import sys
    import tempfile

    pkg = tmp_path / "site-packages"
    pkg.mkdir()
    (pkg / "drawing_at_import.py").write_text(
        "import random\n"
        "class Dummy:\n"  # as sympy's: a class body drawing from an unseeded Random
        "    _prng = random.Random()\n"
        "    INDEX = _prng.randint(1, 9)\n")
    sys.path.insert(0, str(pkg))
    try:
        with rngtrace.record() as log:
            tempfile.mkdtemp(dir=tmp_path)  # names it with tempfile's private Random
            importlib.import_module("drawing_at_import")  # an unseeded Random at import
            random.random()
    finally:
        sys.path.remove(str(pkg))
        sys.modules.pop("drawing_at_import", None)
    assert [(d.op, d.generator) for d in log.draws] == [("random.random", "python:random")]
