"""diff(full, resumed, resumed_at=K): a checkpointed run resumed in a new process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import rngtrace
from helpers import cli
from rngtrace.diffing.resume import resume_diff

# 8 samples in batches of 4: 2 optimizer steps per epoch; the checkpoint is saved after
# step K = 2 (the end of epoch 0) and the resumed run does epoch 1 (steps 2 and 3).
SCRIPT = textwrap.dedent('''
    import random, sys, torch, rngtrace
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    K, STEPS = 2, 4

    def build(use_gen):
        torch.manual_seed(0)
        random.seed(0)
        model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        data = TensorDataset(torch.arange(32.0).reshape(8, 4))
        gen = torch.Generator().manual_seed(1) if use_gen else None
        return model, opt, DataLoader(data, batch_size=4, shuffle=True, generator=gen), gen

    def train(model, opt, loader, step, ckpt=None, gen=None):
        while step < STEPS:
            for (x,) in loader:
                scale = 1.0 + random.random()  # a Python-side augmentation
                loss = model(x * scale).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
            if ckpt is not None and step == K:  # at the epoch's end, the loader done
                torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                            "torch": torch.get_rng_state(), "python": random.getstate(),
                            "gen": gen.get_state() if gen is not None else None}, ckpt)

    def resume(ckpt, use_gen, restore):
        model, opt, loader, gen = build(use_gen)
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        if "torch" in restore:
            torch.set_rng_state(state["torch"])
        if "python" in restore:
            random.setstate(state["python"])
        if "gen" in restore:
            gen.set_state(state["gen"])
        if "reseed" in restore:
            torch.manual_seed(0)  # e.g. a seed_everything() after loading
        if "extra" in restore:
            torch.rand(3)  # something draws while loading
        train(model, opt, loader, K)

    what, out, use_gen = sys.argv[1], sys.argv[2], sys.argv[3] == "gen"
    if what == "full":
        with rngtrace.record(path=out + "/full.jsonl"):
            model, opt, loader, gen = build(use_gen)
            train(model, opt, loader, 0, ckpt=out + "/ckpt.pt", gen=gen)
    else:
        for variant in sys.argv[4:]:
            with rngtrace.record(path=f"{out}/{variant}.jsonl"):
                resume(out + "/ckpt.pt", use_gen, variant.split("+"))
''')


def run_script(tmp_path, *args):
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    subprocess.run([sys.executable, str(path), *args], check=True, cwd=tmp_path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The full run, then resumed runs in a new process (one per restore variant)."""
    tmp = tmp_path_factory.mktemp("resume")
    run_script(tmp, "full", str(tmp), "nogen")
    run_script(tmp, "resume", str(tmp), "nogen", "none", "torch", "torch+python",
               "torch+python+reseed", "torch+python+extra")
    return tmp


@pytest.fixture(scope="module")
def gen_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume_gen")
    run_script(tmp, "full", str(tmp), "gen")
    run_script(tmp, "resume", str(tmp), "gen", "torch+python", "torch+python+gen")
    return tmp


def check(tmp, variant):
    full, resumed = rngtrace.load(tmp / "full.jsonl"), rngtrace.load(tmp / f"{variant}.jsonl")
    return rngtrace.diff(full, resumed, resumed_at=2)


@pytest.mark.slow
def test_checkpoint_without_rng_state_names_every_generator_not_restored(runs):
    r = check(runs, "none")
    assert not r.identical
    # step 2 starts with the loader's iter (default:cpu random_ seeding the sampler's new
    # generator, then its randperm), then the forward's dropout and random.random
    assert [(f.kind, f.generator) for f in r.findings] == [
        ("not-restored", "default:cpu"), ("consequence", "generator:1"),
        ("not-restored", "python:random")]
    assert r.findings[0].text == ("default:cpu was not restored: the checkpoint has no RNG "
                                  "state for it, or it was not set")
    # construction: 2 Linear x (weight, bias) = 4 draws, before training
    assert r.preamble == 4 and r.steps == 2


@pytest.mark.slow
def test_restoring_torch_only_leaves_python_random(runs):
    r = check(runs, "torch")
    assert [(f.kind, f.generator) for f in r.findings] == [("not-restored", "python:random")]
    assert [m.split(":")[0] for m in r.mismatches] == ["python"]


@pytest.mark.slow
def test_restoring_every_generator_is_identical_and_the_cli_exits_0(runs):
    r = check(runs, "torch+python")
    assert r.identical and r.findings == [] and r.mismatches == []
    full = str(runs / "full.jsonl")
    ok = cli("diff", full, str(runs / "torch+python.jsonl"), "--resumed-at", "2")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "identical over 2 steps" in ok.stdout
    bad = cli("diff", full, str(runs / "none.jsonl"), "--resumed-at", "2")
    assert bad.returncode == 1 and "default:cpu was not restored" in bad.stdout
    wrong = cli("diff", full, str(runs / "none.jsonl"), "--resumed-at", "9")
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1
    assert "the full run did only 4 optimizer steps" in wrong.stderr


@pytest.mark.slow
def test_reseed_after_restore_and_extra_draws_while_loading_are_named(runs):
    r = check(runs, "torch+python+reseed")
    # the sampler's per-epoch generator is seeded from the reseeded stream: a consequence
    assert [(f.kind, f.generator) for f in r.findings] == [
        ("reseed-after-restore", "default:cpu"), ("consequence", "generator:1")]
    assert "torch.manual_seed(0)" in r.findings[0].text
    assert "overwrites the restored state" in r.findings[0].text
    r = check(runs, "torch+python+extra")
    assert [(f.kind, f.generator) for f in r.findings] == [
        ("loading-draws", "default:cpu"), ("consequence", "generator:1")]
    # train.py:37 is torch.set_rng_state(...), train.py:45 the torch.rand(3) after it
    assert r.findings[0].text == ("default:cpu was restored at train.py:37, then 1 extra "
                                  "draw while loading moved it (aten::rand at train.py:45)")
    assert r.preamble == 4 + 1  # construction, and the draw while loading


@pytest.mark.slow
def test_sampler_generator_must_be_restored_too(gen_runs):
    r = check(gen_runs, "torch+python")
    assert not r.identical
    assert [(f.kind, f.generator) for f in r.findings] == [("not-restored", "generator:1")]
    assert "Generator.set_state is not seen" in r.findings[0].text
    assert check(gen_runs, "torch+python+gen").identical


def test_resumed_at_is_checked():
    with pytest.raises(rngtrace.RngtraceError, match="did only 0 optimizer steps"):
        resume_diff(rngtrace.Log(), rngtrace.Log(), resumed_at=1)
    with pytest.raises(rngtrace.RngtraceError, match="not -1"):
        resume_diff(rngtrace.Log(), rngtrace.Log(), resumed_at=-1)
